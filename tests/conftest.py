import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # op_cases

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine (the CUDA kernels are compile-checked in test_cuda_compile.py)")
    return request.param
