"""Mechanics of the AID actor–critic (docs/method.md) on the linear-Gaussian oracle."""
import pytest
import torch

import aid_ext
from aid.eval.oracle import GaussianDenoiser, random_covariance
from aid.guidance.actor_critic import ACConfig, AIDTrainer, control_cost, rollout, sigma_lambda, terminal_cost
from aid.guidance.networks import Critic, GuidanceModule

SHAPE = (1, 4, 4)


def _setup(**cfg):
    net = GaussianDenoiser(torch.zeros(16, dtype=torch.float64), random_covariance(16, 0, decay=1.0), SHAPE)
    torch.manual_seed(0)
    trainer = AIDTrainer(net, GuidanceModule(1, width=8, depth=1, emb=8), Critic(1, width=8, emb=8),
                         ACConfig(num_steps=5, **cfg))
    g = torch.Generator().manual_seed(1)
    x0 = 0.5 * torch.randn(8, *SHAPE, generator=g)
    mask = torch.zeros(8, 1, 4, 4)
    mask[..., :2] = 1
    return trainer, x0, mask


def test_exploration_scale_and_costs():
    cfg = ACConfig(beta=2.0, lam=0.5)
    assert sigma_lambda(cfg, 100) == pytest.approx((2 * 0.5 / (2.0 * 100)) ** 0.5)
    x0, x = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 2).expand(2, 1, 2, 2)
    assert torch.equal(terminal_cost(x, x0, mask, w_hole=3.0), torch.full((2,), 1 + 3 * 3.0))
    sig = torch.tensor([4.0, 1.0, 0.0])
    A = torch.ones(2, 3, 1, 2, 2)
    torch.testing.assert_close(control_cost(A, sig, beta=2.0), torch.tensor([[12.0] * 3, [4.0] * 3]))


def test_rollout_without_exploration_and_zero_actor_is_the_unguided_ode():
    trainer, x0, mask = _setup()
    X, Ds, As, x_final = rollout(trainer.backbone, trainer.actor, x0, mask, trainer.sigmas, trainer.cfg,
                                 torch.Generator().manual_seed(2), explore=False)
    assert torch.equal(As, torch.zeros_like(As))
    x = X[0]
    for k in range(trainer.cfg.num_steps):
        s, sn = trainer.sigmas[k].expand(8), trainer.sigmas[k + 1].expand(8)
        torch.testing.assert_close(x, X[k])
        x, _ = aid_ext.edm_euler_step(x, trainer.backbone(x, s), s, sn)
    torch.testing.assert_close(x, x_final)


def test_one_iteration_updates_critic_then_actor_and_never_the_backbone():
    trainer, x0, mask = _setup(critic_warmup=1, lr_actor=1e-2, lr_critic=1e-2)
    actor0 = [p.clone() for p in trainer.actor.parameters()]
    critic0 = [p.clone() for p in trainer.critic.parameters()]
    g = torch.Generator().manual_seed(3)
    log = trainer.step(x0, mask, g)  # warm-up: critic only
    assert all(torch.equal(a, b) for a, b in zip(actor0, trainer.actor.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(critic0, trainer.critic.parameters()))
    log = trainer.step(x0, mask, g)
    assert any(not torch.equal(a, b) for a, b in zip(actor0, trainer.actor.parameters()))
    assert all(p.grad is None for p in trainer.backbone.parameters())
    assert all(torch.isfinite(torch.tensor(v)) for v in log.values())
    assert log["iter"] == 2 and log["actor_loss"] != 0


def test_heun_rollouts_and_bad_solver():
    trainer, x0, mask = _setup(solver="heun")
    assert torch.isfinite(torch.tensor(trainer.step(x0, mask, torch.Generator().manual_seed(0))["cost"]))
    with pytest.raises(ValueError, match="solver must be 'euler' or 'heun'"):
        _setup(solver="rk4")


def test_lookahead_actor_step_reads_the_rollout_and_moves_only_the_actor():
    """With a zero actor and no exploration, Step_D(X_k) = X_{k+1}, so the lookahead objective is
    Σ_{k<K−1} NN_θ(σ_{k+1}, X_{k+1}) + Ψ(X_K); the actor step changes the actor, never the critic or backbone."""
    torch.manual_seed(0)
    net = GaussianDenoiser(torch.zeros(16, dtype=torch.float64), random_covariance(16, 0, decay=1.0), SHAPE)
    critic = Critic(1, width=8, emb=8, head="pixel_sum", sees_x0=True)
    trainer = AIDTrainer(net, GuidanceModule(1, width=8, depth=1, emb=8), critic,
                         ACConfig(num_steps=4, actor_update="lookahead", lr_actor=1e-2, lr_critic=0.0,
                                                   critic_warmup=0))
    g = torch.Generator().manual_seed(1)
    x0, mask = 0.5 * torch.randn(8, *SHAPE, generator=g), torch.zeros(8, 1, 4, 4)
    mask[..., :2] = 1
    X, Ds, As, x_final = rollout(net, trainer.actor, x0, mask, trainer.sigmas, trainer.cfg, g, explore=False)
    want = terminal_cost(x_final, x0, mask)
    for k in range(3):
        want = want + critic(X[k + 1], trainer.sigmas[k + 1].expand(8), mask * x0, mask, x0)
    torch.testing.assert_close(trainer.lookahead_cost(X, Ds, As, x_final, x0, mask).sum(0).mean(), want.mean())
    actor0 = [p.clone() for p in trainer.actor.parameters()]
    critic0 = [p.clone() for p in critic.parameters()]
    trainer.step(x0, mask, g)
    assert any(not torch.equal(a, b) for a, b in zip(actor0, trainer.actor.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(critic0, critic.parameters()))  # lr_critic = 0
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="actor_update"):
        AIDTrainer(net, trainer.actor, critic, ACConfig(actor_update="reinforce"))


def test_pixel_sum_critic_is_a_sum_over_pixels_and_x0_is_required_when_configured():
    torch.manual_seed(0)
    critic = Critic(1, width=8, emb=8, head="pixel_sum", sees_x0=False)
    x, y, mask = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8), torch.ones(2, 1, 8, 8)
    sigma = torch.tensor([1.0, 2.0])
    with torch.no_grad():
        critic.head.bias.copy_(torch.tensor([0.0, 0.25]))  # b_p = 0.25 + (linear in features)
        critic.head.weight.zero_()
    torch.testing.assert_close(critic(x, sigma, y, mask), torch.full((2,), 0.25 * 64))
    with pytest.raises(ValueError, match="sees_x0"):
        Critic(1, width=8, emb=8, sees_x0=True)(x, sigma, y, mask)
    with pytest.raises(ValueError, match="head must be"):
        Critic(1, head="attention")


def test_lambda_returns_span_td0_to_monte_carlo():
    v = torch.tensor([[1.0], [2.0], [3.0], [10.0]])  # V̂_0..V̂_2 and the anchored terminal V̂_3
    c = torch.tensor([[0.5], [0.25], [0.125]])       # running costs
    for ell, want in ((0.0, v[1:] + c), (1.0, torch.tensor([[10.875], [10.375], [10.125]]))):
        trainer, _, _ = _setup(critic_trace=ell)
        torch.testing.assert_close(trainer.lambda_returns(v, c), want)
    trainer, x0, mask = _setup(critic_trace=0.5)
    assert torch.isfinite(torch.tensor(trainer.step(x0, mask, torch.Generator().manual_seed(0))["critic_loss"]))


@pytest.mark.parametrize("actor_updates", [1, 2])
def test_updates_reuse_one_rollout_for_several_critic_and_actor_steps(actor_updates):
    """critic_updates = 3: three critic steps on one rollout (one backbone rollout per iteration), then
    actor_updates actor steps."""
    trainer, x0, mask = _setup(critic_updates=3, critic_warmup=0, actor_updates=actor_updates)
    rollouts = []
    backbone = trainer.backbone
    trainer.backbone = lambda x, s: rollouts.append(1) or backbone(x, s)
    trainer.step(x0, mask, torch.Generator().manual_seed(3))
    steps = lambda opt: {int(s["step"]) for s in opt.state.values()}  # noqa: E731
    assert steps(trainer.opt_critic) == {3} and steps(trainer.opt_actor) == {actor_updates}
    assert len(rollouts) == trainer.cfg.num_steps  # one backbone call per step of the single rollout


@pytest.mark.parametrize("project", [False, True])
def test_critic_that_sees_D_gets_the_denoiser_at_the_lookahead_states(project):
    """For white data of variance σ_data² the denoiser is c_skip(σ)·x exactly, so the first-order D that the
    lookahead feeds the critic at the moved states X_{k+1} + Δr_k(μ_k − A_k) must equal the backbone there;
    in the critic's own step it is the rollout's D_k."""
    torch.manual_seed(0)
    net = GaussianDenoiser(torch.zeros(16, dtype=torch.float64), 0.25 * torch.eye(16, dtype=torch.float64), SHAPE)
    actor = GuidanceModule(1, width=8, depth=1, emb=8, project=project)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.5)  # a moving actor: μ_k ≠ A_k's mean
    critic = Critic(1, width=8, emb=8, sees_denoised=True)
    trainer = AIDTrainer(net, actor, critic, ACConfig(num_steps=4, critic_warmup=0))
    seen = []
    critic.register_forward_hook(lambda m, args, kwargs, out: seen.append((args[0], args[1], kwargs["denoised"])),
                                 with_kwargs=True)
    g = torch.Generator().manual_seed(1)
    x0, mask = 0.5 * torch.randn(8, *SHAPE, generator=g), torch.zeros(8, 1, 4, 4)
    mask[..., :2] = 1
    X, Ds, As, x_final = rollout(net, actor, x0, mask, trainer.sigmas, trainer.cfg, g)
    trainer.values(X, Ds, x0, mask, x_final)
    trainer.lookahead_cost(X, Ds, As, x_final, x0, mask)
    (x_v, _, d_v), (x_l, s_l, d_l) = seen
    torch.testing.assert_close(d_v, Ds.reshape(-1, *SHAPE))
    assert not torch.allclose(x_l, X[1:].reshape(-1, *SHAPE))  # the states moved
    torch.testing.assert_close(d_l, net(x_l, s_l), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="sees_denoised"):
        critic(X[0], trainer.sigmas[0].expand(8), mask * x0, mask, x0)
