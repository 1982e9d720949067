"""The speed–quality benchmark's results file (results.json) as aid.bench.run keeps it: started fresh or
resumed, with the cells of other folders folded in, every cell of a method checked to share its
hyperparameters, and written atomically after every cell."""
from __future__ import annotations

import json
import os

from safetensors.torch import load_file

from aid.baselines import defaults
from aid.bench.settings import RULES
from aid.core.checkpoint import atomic_write
from aid.methods import module_key


class BenchmarkError(Exception):
    """A reason to stop before running (the command line reports it as `PROG: error: reason`)."""


def setup_differences(old: dict, new: dict) -> list[str]:
    """What differs between two runs' settings (a trained module may be added, not swapped)."""
    differ = [f"{k} ({old.get(k)!r} there, {v!r} now)" for k, v in new.items() if k != "modules" and old.get(k) != v]
    changed = [k for k, v in new["modules"].items() if old["modules"].get(k, v) != v]
    return differ + [f"the {k} module (another file)" for k in changed]


def forget(res: dict, methods) -> None:
    """Drop the cells of these methods, and the recorded module of every trained module that no cell left uses,
    so that a method can be measured again with another module (--forget: a retrained AID)."""
    if not methods:
        return
    res["cells"] = {k: c for k, c in res["cells"].items() if c["method"] not in methods}
    used = {module_key(c["method"]) for c in res["cells"].values()}
    res["setup"]["modules"] = {k: v for k, v in res["setup"]["modules"].items() if k in used}


def start_results(path: str, setup: dict, resume: bool, forgotten=()) -> dict:
    """A fresh results dict, or with resume the one in path, the forgotten methods' cells dropped (forget), after
    checking it was made the same way."""
    if not os.path.exists(path):
        return dict(benchmark="speed_quality", setup=setup, rules=RULES, runs=[], skipped={}, cells={})
    if not resume:
        raise BenchmarkError(f"{path} exists; pass --resume to continue it, or choose another --out")
    with open(path) as f:
        res = json.load(f)
    forget(res, forgotten)
    differ = setup_differences(res["setup"], setup)
    if differ:
        raise BenchmarkError(f"--resume: {path} was made with other settings: {'; '.join(differ)}; "
                             f"use another --out, or --forget the methods of a module that changed")
    res["setup"]["modules"].update(setup["modules"])
    return res


def add_roles(cell: dict, other: dict) -> None:
    """Give a measured cell the targets and the default flag of another request for the same setting (RePaint's
    nearest cost to both 19 and 35 is 10 steps: one cell serves both targets)."""
    cell["targets"] = sorted(set(cell["targets"]) | set(other["targets"]))
    cell["default"] = cell["default"] or other["default"]


def run_index(runs: list[dict], run: dict) -> int:
    """The index of run in runs, appending it if it is not there: a folder merged back into one it was merged
    from (e.g. one that ran only the missing cells) carries copies of that folder's runs, listed once."""
    if run not in runs:
        runs.append(run)
    return runs.index(run)


def merge_from(res: dict, examples: dict, folder: str, replace: bool = False) -> None:
    """Fold in the cells of another results folder made with the same settings (e.g. part of the grid run
    by another process or machine); cells already in res are kept (with the other's targets added), or with
    replace taken from the other folder (a cell measured again, e.g. for a field it lacked; its roles still joined)."""
    with open(os.path.join(folder, "results.json")) as f:
        other = json.load(f)
    differ = setup_differences(other["setup"], res["setup"]) + setup_differences(res["setup"], other["setup"])
    if differ:
        raise BenchmarkError(f"--merge: {folder} was made with other settings: {'; '.join(differ)}")
    index = [run_index(res["runs"], r) for r in other["runs"]]
    new = {k: dict(c, run=index[c["run"]]) for k, c in other["cells"].items() if replace or k not in res["cells"]}
    for k in other["cells"].keys() & res["cells"].keys():
        kept, dropped = (new[k], res["cells"][k]) if replace else (res["cells"][k], other["cells"][k])
        add_roles(kept, dropped)
    res["cells"].update(new)
    res["setup"]["modules"].update(other["setup"]["modules"])
    res.setdefault("hole_fraction", {}).update(other.get("hole_fraction", {}))
    for k in new:  # a replaced cell's examples are the other folder's, or measured again (Ledger)
        examples.pop(k, None)
    ex_path = os.path.join(folder, "examples.safetensors")
    if os.path.exists(ex_path):
        examples.update({k: v for k, v in load_file(ex_path).items() if k in new})
    print(f"merged {len(new)} cells from {folder}" + (" (replacing those of the same name)" if replace else ""),
          flush=True)


def hyperparameters(fn) -> dict:
    """A sampler's hyperparameters as a cell records them: its defaults other than num_steps, and a variant's
    settings that reach the sampler through **kwargs (aid.methods.VARIANTS: a functools.partial's keywords, also
    under a wrapper such as aid.latent.latent_sampler's)."""
    given = {**defaults(fn), **bound_keywords(fn)}
    return {k: v for k, v in given.items() if k != "num_steps" and isinstance(v, (int, float, str))}


def bound_keywords(fn) -> dict:
    """The keywords functools.partial bound along fn's chain of wrappers (__wrapped__), the outermost winning."""
    bound = {}
    while fn is not None:
        bound = {**getattr(fn, "keywords", {}), **bound}
        fn = getattr(fn, "__wrapped__", None)
    return bound


def check_hyperparameters(cells: dict, methods: dict) -> None:
    """Every cell of a method has the same hyperparameters, and for the methods of this call those of its sampler
    now: a default changed between a run and its --resume or --merge would otherwise mix settings in one curve."""
    want = {name: hyperparameters(fn) for name, fn in methods.items()}
    for k, c in cells.items():
        have = want.setdefault(c["method"], c["hyperparameters"])
        if c["hyperparameters"] != have:
            raise BenchmarkError(f"{k} was measured with {c['method']} hyperparameters {c['hyperparameters']}, "
                                 f"other cells or the sampler now have {have}; use a new --out")


def write_json(path: str, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)  # NaN stays NaN (a diverged method), never 0
    atomic_write(path, write)
