"""Issue 5's proof on the linear-Gaussian oracle (d = 16, a random dense covariance, the left half
known, K = 5 Euler steps): AID's actor–critic with the package's default settings (ACConfig, the
conv GuidanceModule and Critic used on images) reaches a cost close to the Riccati optimum J(u*),
far below the unguided J(0), and its field μ_φ is close to u* along the optimal trajectory.
docs/notes/results-notebook.md has the longer runs and the λ sweep this test is cut from."""
import torch

from aid.eval.oracle import GaussianDenoiser, LQOptimum, random_covariance
from aid.guidance.actor_critic import ACConfig, AIDTrainer
from aid.guidance.networks import Critic, GuidanceModule

RES, K, ITERS = 4, 5, 4000


def _oracle():
    d = RES * RES
    cov = random_covariance(d, seed=0, decay=1.0)
    net = GaussianDenoiser(torch.zeros(d, dtype=torch.float64), cov, (1, RES, RES))
    chol = torch.linalg.cholesky(cov).float()
    draw = lambda n, g: (torch.randn(n, d, generator=g) @ chol.T).reshape(n, 1, RES, RES)  # noqa: E731
    mask = torch.zeros(1, 1, RES, RES)
    mask[..., : RES // 2] = 1
    return net, draw, mask


def _field_error(trainer, opt: LQOptimum, x0, mask) -> float:
    """∫‖μ_φ − u*‖dr / ∫‖u*‖dr along the optimal trajectory X_{k+1} = Step(X_k) + Δr_k·u*_k: the field error
    per unit of sampling time, so each step counts by how far its control moves X (Δr_k·u), not by ‖u‖
    alone (u* is largest on the last, shortest steps, where it barely moves X)."""
    B, y, s = x0.shape[0], mask * x0, trainer.sigmas
    x = s[0] * torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    err = ref = 0.0
    with torch.no_grad():
        for k in range(K):
            sk, dr = s[k].expand(B), (s[k] - s[k + 1]).item()
            D = trainer.backbone(x, sk)
            u_star = opt.control(k, x, y)
            err += dr * (trainer.actor(x, sk, y, mask, D) - u_star).norm().item()
            ref += dr * u_star.norm().item()
            x = x - dr * (x - D) / s[k] + dr * u_star
    return err / ref


def test_default_actor_critic_nears_the_riccati_optimum_and_its_field():
    net, draw, mask1 = _oracle()
    cfg = ACConfig(num_steps=K, lr_decay_iters=ITERS)
    torch.manual_seed(0)
    trainer = AIDTrainer(net, GuidanceModule(1, width=16, depth=1, emb=16), Critic(1, width=16, emb=16), cfg)
    x_eval = draw(512, torch.Generator().manual_seed(10_000))
    m_eval, m_train = mask1.expand(512, -1, -1, -1), mask1.expand(64, -1, -1, -1)
    opt = LQOptimum(net, trainer.sigmas.double(), mask1[0])
    J_star = opt.optimal_cost(x_eval)
    J = lambda: trainer.evaluate(x_eval, m_eval, torch.Generator().manual_seed(7))  # noqa: E731
    J0, err0 = J(), _field_error(trainer, opt, x_eval, m_eval)
    g = torch.Generator().manual_seed(1)
    for _ in range(ITERS):
        trainer.step(draw(64, g), m_train, g)
    J1, err1 = J(), _field_error(trainer, opt, x_eval, m_eval)
    print(f"J(0) = {J0:.4f}, J* = {J_star:.4f}, J(μ) = {J1:.4f} ({J1 / J_star - 1:+.1%}); "
          f"field error {err0:.3f} → {err1:.3f}")
    assert J_star < 0.6 * J0  # guidance has much to gain here
    assert J1 < 1.10 * J_star, (J0, J_star, J1)  # measured +7.0 % (J(0) is +99 %; +6.5 % with critic_updates = 1)
    assert err0 == 1.0 and err1 < 0.55, err1  # measured 0.47 (the zero field: 1; 0.44 with critic_updates = 1)


def test_one_multiscale_step_aware_projecting_module_nears_the_projected_optimum_on_two_grids():
    """Issue 24's regression test: the image recipe's kind of module (multi-scale, step-aware actor and critic,
    the known pixels projected every step) trained on K ∈ {5, 9} at once, on the 8×8 field oracle with a central
    4×4 hole, nears the exact optimum of the projected problem (ProjectedLQOptimum) on both grids."""
    from aid.eval.field_fit import fit_projected_field
    gaps = fit_projected_field(iters=400)
    before, after = gaps[0], gaps[400]
    print(f"gap to J*: {before} → {after}")
    assert min(before.values()) > 0.35  # the zero field (replacement) is far from the optimum
    assert max(after.values()) < 0.22, after  # measured +11.6 % (K = 5), +15.8 % (K = 9); +8.8 %, +11.6 % at 800
