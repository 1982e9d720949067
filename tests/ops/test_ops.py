"""Each fused op against its pure-PyTorch reference: forward in every dtype and layout,
gradients, torch.library.opcheck, and torch.compile of a sampling loop."""
import pytest
import torch

import aid_ext
from aid_ext import reference
from aid_ext.testing import OPS, inputs

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _upcast(args, kwargs):
    up = lambda t: t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
    return [up(a) for a in args], {k: up(v) for k, v in kwargs.items()}


def _assert_matches_reference(name, args, kwargs):
    """fp64/fp32: close to the reference in the same dtype. 16-bit: the kernel's error
    against the float64 reference is no worse than 2x the reference's own error in that
    dtype (flash-attention's rule), plus one unit of rounding at the output's magnitude."""
    got = _outputs(getattr(aid_ext.ops, name)(*args, **kwargs))
    same = _outputs(getattr(reference, name)(*args, **kwargs))
    up_args, up_kwargs = _upcast(args, kwargs)
    exact = _outputs(getattr(reference, name)(*up_args, **up_kwargs))
    for g, s, e in zip(got, same, exact):
        assert g.shape == e.shape and g.dtype == s.dtype
        if g.dtype == torch.float64:
            torch.testing.assert_close(g, s, rtol=1e-12, atol=1e-12)
        elif g.dtype == torch.float32:
            torch.testing.assert_close(g, s, rtol=1.3e-6, atol=1e-5)
        else:
            ulp = torch.finfo(g.dtype).eps * e.abs().max().item()
            err, ref_err = (g.double() - e).abs().max().item(), (s.double() - e).abs().max().item()
            assert err <= 2 * ref_err + ulp, f"{name} {g.dtype}: error {err:.3g} vs reference's {ref_err:.3g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("variant", ["full", "bare"])
@pytest.mark.parametrize("name", OPS)
def test_forward_matches_reference(name, variant, dtype, device):
    args, kwargs = inputs(name, (4, 3, 8, 6), dtype, device, variant=variant, seed=hash((name, variant)) % 1000)
    _assert_matches_reference(name, args, kwargs)


@pytest.mark.parametrize("layout", ["channels_last", "mask_per_channel", "soft_mask", "scalar_sigma", "batch_1"])
@pytest.mark.parametrize("name", OPS)
def test_layouts_and_broadcasts(name, layout, device):
    shape = (1, 3, 7, 5) if layout == "batch_1" else (3, 4, 6, 5)
    args, kwargs = inputs(name, shape, torch.float32, device, channels_last=layout == "channels_last",
                          mask_channels="C" if layout == "mask_per_channel" else 1,
                          soft_mask=layout == "soft_mask", scalar_sigma=layout == "scalar_sigma", seed=7)
    _assert_matches_reference(name, args, kwargs)
    if layout == "channels_last":
        for out in _outputs(getattr(aid_ext.ops, name)(*args, **kwargs)):
            assert out.is_contiguous(memory_format=torch.channels_last)


def test_non_contiguous_input_is_made_contiguous(device):
    args, kwargs = inputs("edm_euler_step", (2, 3, 6, 8), torch.float64, device)
    x_t = args[0].transpose(2, 3).contiguous().transpose(2, 3)  # same values, odd strides
    assert not x_t.is_contiguous()
    got = aid_ext.edm_euler_step(x_t, *args[1:], **kwargs)
    want = reference.edm_euler_step(*args, **kwargs)
    for g, w in zip(got, want):
        assert g.is_contiguous()
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_guidance_zero_equals_unguided_and_euler_equals_ddim_eta0(device):
    x, D, s, sn = inputs("edm_euler_step", (2, 3, 5, 5), torch.float64, device, variant="bare")[0]
    plain, d = aid_ext.edm_euler_step(x, D, s, sn)
    guided, _ = aid_ext.edm_euler_step(x, D, s, sn, u=torch.zeros_like(x))
    assert torch.equal(plain, guided)
    torch.testing.assert_close(d, (x - D) / s.view(-1, 1, 1, 1))
    ddim = aid_ext.edm_ddim_step(x, D, s, sn, torch.zeros_like(s))
    torch.testing.assert_close(ddim, plain, rtol=1e-12, atol=1e-12)


def _differentiable(name, args, kwargs):
    """Names (int positions or keywords) of the image arguments that get gradients: all but the mask."""
    pos = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.dim() == 4
           and not (name == "mask_project" and i == 1)]
    kws = [k for k, v in kwargs.items() if isinstance(v, torch.Tensor) and v.dim() == 4 and k != "mask"]
    return pos + kws


def _call_with(name, args, kwargs, keys, leaves, impl=aid_ext.ops):
    """Call `impl.name` with the arguments named in keys replaced by leaves."""
    args, kwargs = list(args), dict(kwargs)
    for key, t in zip(keys, leaves):
        if isinstance(key, int):
            args[key] = t
        else:
            kwargs[key] = t
    return getattr(impl, name)(*args, **kwargs)


@pytest.mark.parametrize("variant", ["full", "bare"])
@pytest.mark.parametrize("name", OPS)
def test_gradcheck_float64(name, variant):
    args, kwargs = inputs(name, (2, 2, 3, 3), torch.float64, variant=variant, soft_mask=True, seed=3)
    keys = _differentiable(name, args, kwargs)
    leaves = [(args[k] if isinstance(k, int) else kwargs[k]).clone().requires_grad_() for k in keys]
    assert torch.autograd.gradcheck(lambda *t: _call_with(name, args, kwargs, keys, t), leaves)


@pytest.mark.parametrize("name", OPS)
def test_gradients_match_reference_autograd(name, device):
    args, kwargs = inputs(name, (3, 2, 4, 5), torch.float32, device, soft_mask=True, seed=11)
    keys = _differentiable(name, args, kwargs)
    grads = {}
    for impl in (aid_ext.ops, reference):
        leaves = [(args[k] if isinstance(k, int) else kwargs[k]).clone().requires_grad_() for k in keys]
        outs = _outputs(_call_with(name, args, kwargs, keys, leaves, impl))
        gen = torch.Generator().manual_seed(5)
        loss = sum((o * torch.randn(o.shape, generator=gen).to(device)).sum() for o in outs)
        grads[impl] = torch.autograd.grad(loss, leaves)
    for g_op, g_ref in zip(grads[aid_ext.ops], grads[reference]):
        torch.testing.assert_close(g_op, g_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["full", "bare", "channels_last", "grad"])
@pytest.mark.parametrize("name", OPS)
def test_opcheck(name, variant, device):
    args, kwargs = inputs(name, (2, 3, 4, 4), torch.float32, device, variant="bare" if variant == "bare" else "full",
                          channels_last=variant == "channels_last", seed=2)
    if variant == "grad":
        args = [a.requires_grad_() if isinstance(a, torch.Tensor) and a.dim() == 4 and i != 1 else a
                for i, a in enumerate(args)]
    torch.library.opcheck(getattr(torch.ops.aid_ext, name).default, args, kwargs)


def _guided_heun_loop(x, y, mask, u, sigmas, z):
    """A small Heun sampler with a linear 'denoiser', guidance and projection, all fused ops."""
    for i in range(len(sigmas) - 1):
        s, sn = sigmas[i], sigmas[i + 1]
        F = 0.3 * aid_ext.edm_scale_input(x, s)
        D = aid_ext.edm_denoise(x, F, s)
        x_pred, d = aid_ext.edm_euler_step(x, D, s, sn)
        D_pred = aid_ext.edm_denoise(x_pred, 0.3 * aid_ext.edm_scale_input(x_pred, sn), sn)
        x = aid_ext.edm_heun_correct(x, d, x_pred, D_pred, s, sn, u=u, mask=mask, y=y, z=z)
    return aid_ext.mask_project(x, mask, y, torch.zeros_like(sigmas[0]))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_loop_forward_and_backward(backend, device):
    B = 2
    x, y, u, z = (torch.randn(B, 3, 8, 8, device=device) for _ in range(4))
    mask = (torch.rand(B, 1, 8, 8, device=device) > 0.5).float()
    sigmas = [torch.full((B,), v, device=device) for v in (10.0, 3.0, 1.0, 0.3)]
    u.requires_grad_(True)
    eager = _guided_heun_loop(x, y, mask, u, sigmas, z)
    (g_eager,) = torch.autograd.grad(eager.square().sum(), u)
    compiled = torch.compile(_guided_heun_loop, fullgraph=True, backend=backend)
    out = compiled(x, y, mask, u, sigmas, z)
    (g_comp,) = torch.autograd.grad(out.square().sum(), u)
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_comp, g_eager, rtol=1e-5, atol=1e-5)
