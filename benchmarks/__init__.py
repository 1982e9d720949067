"""Scripts that measure the package (each runs as `python benchmarks/NAME.py`); the tests import a few of them."""
