"""The package reports how it was built and refuses a torch it was not built for."""
import pytest
import torch

import aid_ext


def test_build_info_names_torch_cuda_and_compiler():
    info = aid_ext.build_info()
    assert set(info) >= {"torch_version", "with_cuda", "cuda_version", "cuda_archs", "compiler", "cxx11_abi"}
    assert info["torch_version"] == torch.__version__
    assert isinstance(info["with_cuda"], bool)
    assert info["with_cuda"] == bool(info["cuda_archs"])
    if torch.version.cuda is None:
        assert not info["with_cuda"], "a CPU build of torch cannot have built CUDA kernels"


def test_every_op_is_registered_with_cpu_kernel():
    for name in ["edm_scale_input", "edm_denoise", "edm_euler_step", "edm_heun_correct", "edm_ddim_step",
                 "edm_renoise", "mask_project"]:
        dump = torch._C._dispatch_dump(f"aid_ext::{name}")
        assert "CPU:" in dump and "Meta:" in dump and "Autograd" in dump, dump
        if aid_ext.build_info()["with_cuda"]:
            assert "CUDA:" in dump


def test_torch_mismatch_is_a_readable_import_error():
    aid_ext.check_torch("2.13.0+cpu", "2.13.1")  # same major.minor: fine
    with pytest.raises(ImportError, match=r"built against torch 2\.13\.0\+cpu but torch 2\.11\.0 is running"):
        aid_ext.check_torch("2.13.0+cpu", "2.11.0")
