"""argparse types for the command lines (`aid ...`, python -m aid.guidance.train): a value that does not parse,
or is out of range, is a usage error naming the flag ("argument --steps: ..."), never a bare int() or JSON
error from deep inside a run."""
from __future__ import annotations

import argparse
import json
import math


def count(minimum: int):
    """An integer >= minimum."""
    def parse(text: str) -> int:
        v = int(text)  # a ValueError: argparse says "invalid integer >= N value: 'x'"
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v
    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(minimum: float | None = None):
    """A finite number (>= minimum when given): NaN and inf are refused."""
    def parse(text: str) -> float:
        v = float(text)  # a ValueError: argparse says "invalid finite number value: 'x'"
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}, got {text!r}")
        return v
    parse.__name__ = "finite number"
    return parse


def step_counts(text: str) -> list[int]:
    """A comma-separated list of step counts >= 1, e.g. 5,9,19."""
    try:
        steps = [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected step counts >= 1, comma-separated like 5,9,19; got {text!r}") \
            from None
    if any(k < 1 for k in steps):
        raise argparse.ArgumentTypeError(f"step counts must be >= 1, got {text!r}")
    return steps


def json_object(text: str) -> dict:
    """A JSON object of keyword arguments, e.g. '{"width": 32}'."""
    try:
        v = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}; expected keyword arguments like "
                                         "'{\"width\": 32}'") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of keyword arguments like '{{\"width\": 32}}', "
                                         f"got {text!r}")
    return v
