"""The oracle's optimal guided cost J* (Riccati) against direct minimization, and the optimal
field against the rollout it produces."""
import pytest
import torch

import aid_ext
from aid.data.masks import make_mask
from aid.edm import edm_sigmas
from aid.edm.sampler import guided_step, sample
from aid.eval.oracle import FieldDenoiser, GaussianDenoiser, LQOptimum, ProjectedLQOptimum, random_covariance

SHAPE = (1, 2, 2)


def _problem(beta=1.0):
    cov = random_covariance(4, seed=2, decay=1.0)
    net = GaussianDenoiser(0.1 * torch.ones(4, dtype=torch.float64), cov, SHAPE)
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]])[None]
    sigmas = edm_sigmas(4, dtype=torch.float64)
    return net, mask, sigmas, LQOptimum(net, sigmas, mask, beta=beta, w_hole=2.0)


def _cost(net, sigmas, x0, X0, controls, beta, W, lq):
    """Deterministic guided Euler rollout from X0 and its cost with E[Ψ|y] (x̄ tracking + trace term)."""
    x = X0
    run = 0.0
    for k in range(len(sigmas) - 1):
        s, sn = sigmas[k].expand(1), sigmas[k + 1].expand(1)
        u = controls[k] if isinstance(controls, list) else controls(k, x)
        run = run + 0.5 * beta * u.square().sum() * (sigmas[k] - sigmas[k + 1])
        x = x + (sn - s) * (x - net(x, s)) / s + (s - sn) * u
    e = x.reshape(-1) - lq.posterior_mean(x0)[0]
    return run + e @ W @ e + lq.tr_post


def test_riccati_value_matches_direct_minimization_for_a_fixed_start():
    net, mask, sigmas, lq = _problem()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, *SHAPE, generator=g, dtype=torch.float64) * 0.5
    X0 = sigmas[0] * torch.randn(1, *SHAPE, generator=g, dtype=torch.float64)
    us = [torch.zeros(1, *SHAPE, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    opt = torch.optim.LBFGS(us, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = _cost(net, sigmas, x0, X0, us, 1.0, lq.W, lq)
        loss.backward()
        return loss
    opt.step(closure)
    direct = _cost(net, sigmas, x0, X0, us, 1.0, lq.W, lq).item()
    feedback = _cost(net, sigmas, x0, X0, lambda k, x: lq.control(k, x, x0), 1.0, lq.W, lq).item()
    assert abs(feedback - direct) < 1e-6 * max(1.0, abs(direct))
    assert _cost(net, sigmas, x0, X0, lambda k, x: torch.zeros_like(x), 1.0, lq.W, lq).item() > direct


def test_expected_optimal_cost_matches_monte_carlo_of_the_optimal_field():
    """J* (closed form over X_0) equals the average cost of rolling out u* with the fused guided step."""
    net, mask, sigmas, lq = _problem(beta=0.5)
    g = torch.Generator().manual_seed(1)
    B = 20000
    x0 = (torch.linalg.cholesky(net.cov) @ torch.randn(4, B, generator=g, dtype=torch.float64)).T + net.mu
    x0 = x0.reshape(B, *SHAPE)
    x = sigmas[0] * torch.randn(B, *SHAPE, generator=g, dtype=torch.float64)
    run = torch.zeros(B, dtype=torch.float64)
    for k in range(4):
        s, sn = sigmas[k].expand(B), sigmas[k + 1].expand(B)
        u = lq.control(k, x, x0)
        run += 0.25 * u.flatten(1).square().sum(1) * (sigmas[k] - sigmas[k + 1])
        x, _ = aid_ext.edm_euler_step(x, net(x, s), s, sn, u=u)
    e = (x - x0).flatten(1)
    mc = (run + (e @ lq.W * e).sum(1)).mean().item()
    assert abs(mc - lq.optimal_cost(x0)) < 0.02 * lq.optimal_cost(x0)


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_field_oracle_optimum_matches_monte_carlo_through_the_fft_denoiser(solver):
    """J* from the dense Riccati recursion equals the cost of rolling u* out through the FFT denoiser (so the
    two forms of the image-shaped oracle agree), for a LaMa free-form mask, with the rollouts' solver as in
    training (Heun: unguided predictor, Euler last step); and J* < J(0)."""
    net = FieldDenoiser(8, alpha=1.0)
    mask = torch.from_numpy(make_mask("lama_medium", 8, 0))[None]
    sigmas = edm_sigmas(5, dtype=torch.float64)
    lq = LQOptimum(net, sigmas, mask, solver=solver)
    g = torch.Generator().manual_seed(4)
    B = 8000
    x0 = net.draw(B, g).double()
    costs = {}
    for name, field in (("optimal", lq.control), ("zero", lambda k, x, y: torch.zeros_like(x))):
        x = sigmas[0] * torch.randn(B, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        run = torch.zeros(B, dtype=torch.float64)
        for k in range(5):
            s, sn = sigmas[k].expand(B), sigmas[k + 1].expand(B)
            u = field(k, x, x0)
            run += 0.5 * u.flatten(1).square().sum(1) * (sigmas[k] - sigmas[k + 1])
            x = guided_step(net, x, net(x, s), s, sn, u=u, heun=solver == "heun" and k < 4)
        costs[name] = (run + (x - x0).flatten(1).square().sum(1)).mean().item()
    J_star = lq.optimal_cost(x0)
    assert abs(costs["optimal"] - J_star) < 0.02 * J_star
    assert J_star < 0.7 * costs["zero"]


def _projected_rollout_cost(net, sigmas, x0, mask, policy, beta, w_hole, seed):
    """Monte-Carlo J of a field under the projecting sampler (aid.edm.sample with mask and y): per image,
    Σ_k (β/2)Δr_k‖u_k‖² + w_hole‖X_K − x0‖² on the hole (the known pixels end exactly at y)."""
    energy = torch.zeros(x0.shape[0], dtype=torch.float64)

    def guidance(x, s, D, sn):
        k = int((sigmas - s[0]).abs().argmin())
        u = policy(k, x)
        energy.add_(0.5 * beta * u.double().flatten(1).square().sum(1) * float(s[0] - sn[0]))
        return u

    y = mask * x0
    x = sample(net, range(seed, seed + len(x0)), num_steps=len(sigmas) - 1, solver="euler", guidance=guidance,
               mask=mask.expand_as(x0[:, :1]), y=y, dtype=torch.float64, device="cpu")
    assert torch.equal(x * mask, y)
    return energy + w_hole * ((1 - mask) * (x - x0)).double().flatten(1).square().sum(1)


def test_projected_riccati_optimum_is_the_monte_carlo_cost_of_its_field_and_beats_its_neighbours():
    """ProjectedLQOptimum: J* equals the mean rollout cost of u* under projection (within the Monte-Carlo
    error), and a field scaled by 0.8 or 1.2, or the zero field, costs more."""
    net = FieldDenoiser(4, alpha=1.0)
    mask = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    mask[..., 1:3, 1:4] = 0  # a 2×3 hole touching the border
    sigmas = edm_sigmas(5, dtype=torch.float64)
    lq = ProjectedLQOptimum(net, sigmas, mask[0], beta=1.0, w_hole=2.0)
    x0 = net.draw(4000, torch.Generator().manual_seed(1)).double()
    J_star = lq.optimal_cost(x0)

    def scaled(a):
        return lambda k, x: a * lq.control(k, x, mask * x0)

    costs = {a: _projected_rollout_cost(net, sigmas, x0, mask, scaled(a), 1.0, 2.0, 0) for a in (0.0, 0.8, 1.0, 1.2)}
    mean, err = float(costs[1.0].mean()), float(costs[1.0].std() / len(x0) ** 0.5)
    assert abs(mean - J_star) < 3 * err + 1e-3 * J_star, (mean, J_star, err)
    for a in (0.0, 0.8, 1.2):  # paired (same seeds and images): the difference is far above its noise
        diff = costs[a] - costs[1.0]
        assert float(diff.mean()) > 3 * float(diff.std() / len(x0) ** 0.5), (a, float(diff.mean()))
