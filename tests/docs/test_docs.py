"""The README and docs/: their Python examples run, their links resolve inside the repository, nothing in the
repository points outside it, and .ci/run is exactly the README's test command."""
import glob
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
# Where the design lived before docs/ (outside the repository); none may be cited again. Spelled in two parts so
# that this file does not match itself.
OUTSIDE = [r"\.\./" + "shared", "shared/" + "design", "shared/" + "research", "AID-" + "METHOD",
           "ARCHITECTURE" + r"\.md", "anchors" + r"\.md", "/work/" + "main"]


def _read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("doc", DOCS)
def test_python_blocks_run(doc):
    blocks = re.findall(r"```python\n(.*?)```", _read(doc), re.S)
    if doc == "README.md":
        assert blocks, "the README has no Python example"
    for code in blocks:
        exec(compile(code, doc, "exec"), {})


def _repository_files():
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if os.path.isfile(os.path.join(ROOT, f))]


def test_nothing_points_outside_the_repository():
    pattern = re.compile("|".join(OUTSIDE))
    hits = []
    for rel in _repository_files():
        try:
            text = _read(rel)
        except UnicodeDecodeError:  # binary files (weights, images)
            continue
        hits += [f"{rel}:{n}: {line.strip()[:100]}" for n, line in enumerate(text.splitlines(), 1)
                 if pattern.search(line)]
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def test_markdown_links_resolve_inside_the_repository():
    broken = []
    for rel in [f for f in _repository_files() if f.endswith(".md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _read(rel)):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path = os.path.normpath(os.path.join(ROOT, os.path.dirname(rel), target))
            if not path.startswith(ROOT + os.sep) or not os.path.exists(path):
                broken.append(f"{rel}: {target}")
    assert not broken, "links that do not resolve inside the repository:\n" + "\n".join(broken)


def test_ci_runs_the_readme_test_command():
    commands = [line for line in re.findall(r"```bash\n(.*?)```", _read("README.md"), re.S)[1].splitlines()
                if line and not line.startswith("#")]
    assert len(commands) == 1 and commands[0].endswith("python -m pytest -q")
    assert commands[0] in _read(".ci/run").splitlines()


def test_the_benchmark_doc_states_the_rules_the_benchmark_writes():
    from aid.bench.settings import RULES
    assert RULES.strip() in _read("docs/benchmark.md")
