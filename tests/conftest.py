
import fakes
import numpy as np
import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine (the CUDA kernels are compile-checked in test_cuda_compile.py)")
    return request.param


@pytest.fixture
def fake_fmnist(tmp_path):
    """A folder with Fashion-MNIST's four IDX files, 20 training and 10 test images of noise."""
    rng = np.random.default_rng(0)
    for split, n in [("train", 20), ("t10k", 10)]:
        fakes.write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        fakes.write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    return str(tmp_path)
