"""The README's Python examples run, and .ci/run is exactly the README's test command."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", _readme(), re.S)
    assert blocks, "the README has no Python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command():
    commands = [line for line in re.findall(r"```bash\n(.*?)```", _readme(), re.S)[1].splitlines()
                if line and not line.startswith("#")]
    assert len(commands) == 1 and commands[0].endswith("python -m pytest -q")
    with open(os.path.join(ROOT, ".ci/run")) as f:
        assert commands[0] in f.read().splitlines()
