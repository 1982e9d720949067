"""Bad input gets a clear error naming the argument: never a crash, never a silent broadcast."""
import pytest
import torch

import aid_ext
from aid_ext.testing import inputs


def _euler():
    (x, D, s, sn), kw = inputs("edm_euler_step", (2, 3, 4, 4), torch.float32)
    return x, D, s, sn, kw


@pytest.mark.parametrize("case, error, message", [
    ("shape", ValueError, "argument 'denoised' must have shape [2, 3, 4, 4]"),
    ("dtype", TypeError, "argument 'denoised' must have dtype Float"),
    ("int_x", TypeError, "argument 'x' must be float64, float32, float16 or bfloat16"),
    ("x_3d", ValueError, "argument 'x' must be [B, C, H, W]"),
    ("sigma_shape", ValueError, "argument 'sigma' must have shape [B] = [2]"),
    ("sigma_int", TypeError, "argument 'sigma' must be a floating-point tensor"),
    ("sigma_zero", ValueError, "'sigma' must be > 0"),
    ("sigma_nan", ValueError, "'sigma' must be > 0"),
    ("sigma_inf", ValueError, "'sigma' must be > 0 and finite"),  # issue 20: σ = inf gave NaN
    ("sigma_next_inf", ValueError, "'sigma_next' must be >= 0 and finite"),
    ("sigma_next_negative", ValueError, "'sigma_next' must be >= 0"),
    ("mask_range", ValueError, "'mask' values must lie in [0, 1]"),
    ("mask_nan", ValueError, "'mask' values must lie in [0, 1]"),
    ("mask_shape", ValueError, "argument 'mask' must have shape [B, 1, H, W] or [B, C, H, W]"),
    ("mask_without_y", ValueError, "argument 'y' is required when 'mask' is given"),
    ("y_without_mask", ValueError, "argument 'y' is only meaningful with 'mask'"),
    ("z_without_mask", ValueError, "argument 'z' (projection noise) is only meaningful with 'mask'"),
])
def test_euler_step_bad_input(case, error, message):
    x, D, s, sn, kw = _euler()
    args, kwargs = [x, D, s, sn], dict(kw)
    if case == "shape":
        args[1] = D[:, :2]
    elif case == "dtype":
        args[1] = D.double()
    elif case == "int_x":
        args[0], args[1] = x.int(), D.int()
    elif case == "x_3d":
        args[0], args[1] = x[0], D[0]
    elif case == "sigma_shape":
        args[2] = torch.ones(3)
    elif case == "sigma_int":
        args[2] = torch.ones(2, dtype=torch.int64)
    elif case == "sigma_zero":
        args[2] = torch.tensor([1.0, 0.0])
    elif case == "sigma_nan":
        args[2] = torch.tensor([1.0, float("nan")])
    elif case == "sigma_inf":
        args[2] = torch.tensor([1.0, float("inf")])
    elif case == "sigma_next_inf":
        args[3] = torch.tensor([float("inf"), 0.5])
    elif case == "sigma_next_negative":
        args[3] = torch.tensor([-0.1, 0.5])
    elif case == "mask_range":
        kwargs["mask"] = kwargs["mask"] * 2
    elif case == "mask_nan":
        kwargs["mask"] = kwargs["mask"].clone().fill_(float("nan"))
    elif case == "mask_shape":
        kwargs["mask"] = kwargs["mask"].expand(2, 2, 4, 4)
    elif case == "mask_without_y":
        del kwargs["y"], kwargs["z"]
    elif case == "y_without_mask":
        del kwargs["mask"], kwargs["z"]
    elif case == "z_without_mask":
        del kwargs["mask"], kwargs["y"]
    with pytest.raises(error) as info:
        aid_ext.edm_euler_step(*args, **kwargs)
    assert message in str(info.value), str(info.value)
    assert "edm_euler_step" in str(info.value) or case in ("int_x",)


def inf_at(i: int):
    """A change of the inputs: positional argument i (a σ) set to +inf."""
    return lambda a, k: a.__setitem__(i, torch.full_like(a[i], float("inf")))


@pytest.mark.parametrize("name, change, message", [
    ("edm_heun_correct", lambda a, k: a.__setitem__(5, torch.zeros_like(a[5])), "'sigma_next' must be > 0"),
    ("edm_ddim_step", lambda a, k: a.__setitem__(4, torch.full_like(a[4], 1.5)), "'eta' must lie in [0, 1]"),
    ("edm_ddim_step", lambda a, k: k.pop("z"), "'z' is required where 'eta' > 0"),
    ("edm_ddim_step", lambda a, k: k.pop("g"), "'g_scale' is only meaningful with 'g'"),
    ("edm_renoise", lambda a, k: a.__setitem__(2, a[1] * 0.5), "'sigma_next' must be >= 'sigma'"),
    ("mask_project", lambda a, k: a.__setitem__(3, -a[3]), "'sigma' must be >= 0"),
    ("edm_denoise", lambda a, k: k.__setitem__("u", k["u"][:, :1]), "argument 'u' must have shape"),
    ("edm_scale_input", lambda a, k: a.__setitem__(1, -a[1]), "'sigma' must be >= 0"),
    # issue 20: an infinite σ is refused by every op, not turned into NaN or a silent 0
    ("edm_heun_correct", inf_at(4), "'sigma' must be >= 0 and finite"),
    ("edm_ddim_step", inf_at(2), "'sigma' must be > 0 and finite"),
    ("edm_ddim_step", inf_at(3), "'sigma_next' must be >= 0 and finite"),
    ("edm_renoise", inf_at(2), "finite"),
    ("mask_project", inf_at(3), "'sigma' must be >= 0 and finite"),
    ("edm_denoise", inf_at(2), "'sigma' must be >= 0 and finite"),
    ("edm_scale_input", inf_at(1), "'sigma' must be >= 0 and finite"),
])
def test_other_ops_bad_input(name, change, message):
    args, kwargs = inputs(name, (2, 3, 4, 4), torch.float32)
    args = list(args)
    change(args, kwargs)
    with pytest.raises(ValueError) as info:
        getattr(aid_ext.ops, name)(*args, **kwargs)
    assert message in str(info.value) and name in str(info.value), str(info.value)


def test_mixed_devices_are_refused_under_fake_tensors():
    """CPU-only machines cannot mix real devices; the fake kernel (used by torch.compile) must still refuse
    a tensor from another device rather than broadcast. The CUDA test below covers the C++ check."""
    x, D, s, sn, _ = _euler()
    with pytest.raises(ValueError, match="argument is on cpu but x is on meta"):
        aid_ext.edm_euler_step(x.to("meta"), D, s.to("meta"), sn.to("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to mix devices")
def test_mixed_devices_cuda():
    x, D, s, sn, _ = _euler()
    with pytest.raises(ValueError, match="argument 'denoised' is on cpu but x is on cuda"):
        aid_ext.edm_euler_step(x.cuda(), D, s.cuda(), sn.cuda())
