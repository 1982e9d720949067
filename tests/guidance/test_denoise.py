"""The denoising warm start (aid.guidance.denoise, `aid train --objective denoising`): its loss against a plain
transcription, learning the exact conditional denoiser of the Gaussian-field oracle, and the run folder it writes
(resumable, an actor–critic run's init_actor)."""
import json

import pytest
import torch
from fakes import assert_trees_equal, run_state

from aid.core.checkpoint import read_metadata
from aid.data.masks import center_box
from aid.edm import edm_sigmas
from aid.eval.field_fit import warm_start_by_denoising
from aid.eval.oracle import FieldDenoiser
from aid.guidance.actor_critic import ACConfig
from aid.guidance.denoise import DenoisingTrainer, denoising_loss, edm_weight, sigma_weight
from aid.guidance.networks import Critic, GuidanceModule
from aid.guidance.train import train_aid

FIELD = FieldDenoiser(8, alpha=1.0)
HOLE = torch.from_numpy(center_box(8))[None, None]  # 1 = known


def test_the_loss_is_the_weighted_error_of_the_guided_denoiser_in_the_hole():
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8, step_aware=True)
    torch.nn.init.normal_(actor.conv_out.weight, std=0.1)  # a non-zero field
    x0 = FIELD.draw(4, torch.Generator().manual_seed(1))
    mask = HOLE.expand(4, -1, -1, -1)
    sigma, sigma_next = torch.tensor([80.0, 2.0, 0.5, 0.002]), torch.tensor([20.0, 1.0, 0.2, 0.0])
    loss = denoising_loss(FIELD, actor, x0, mask, sigma, sigma_next, torch.Generator().manual_seed(2), w_known=0.25)
    s = sigma.view(-1, 1, 1, 1)
    x = x0 + s * torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))  # the same noise
    D = FIELD(x, sigma)
    guided = D + s * actor(x, sigma, mask * x0, mask, D, sigma_next)
    w = torch.where(mask.bool(), 0.25, 1.0)
    want = (s.flatten() ** 2 + 0.25) / (s.flatten() * 0.5) ** 2 * (w * (guided - x0) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(loss, want)
    assert edm_weight(torch.tensor(0.5), 0.5) == pytest.approx(8.0)  # (0.25 + 0.25) / 0.0625
    loss.sum().backward()
    assert actor.conv_out.weight.grad.abs().sum() > 0


def test_gamma_moves_the_loss_weight_from_edms_to_the_x0_error():
    """λ_γ(σ) = λ(σ)·(σ²/(σ² + σ_data²))^γ: EDM's at γ = 0, 1/σ_data² at every σ at γ = 1; and the loss with
    γ = 1 is the plain x0 error over σ_data² (the same noise, the same actor)."""
    sigma = torch.tensor([80.0, 2.0, 0.5, 0.002])
    torch.testing.assert_close(sigma_weight(sigma, 0.5), edm_weight(sigma, 0.5))
    torch.testing.assert_close(sigma_weight(sigma, 0.5, 1.0), torch.full_like(sigma, 4.0))
    half = sigma_weight(sigma, 0.5, 0.5)
    assert bool((half < edm_weight(sigma, 0.5)).all() and (half > 4.0).all())
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=8, depth=1, emb=8, step_aware=True)
    x0 = FIELD.draw(4, torch.Generator().manual_seed(1))
    mask = HOLE.expand(4, -1, -1, -1)
    args = (FIELD, actor, x0, mask, sigma, sigma * 0.5)
    edm = denoising_loss(*args, torch.Generator().manual_seed(2))
    plain = denoising_loss(*args, torch.Generator().manual_seed(2), gamma=1.0)
    torch.testing.assert_close(plain, edm * 4.0 / edm_weight(sigma, 0.5))


def exact_denoiser(x0, x, sigma):
    """E[x0 | x = x0 + σn, x0's known pixels]: the oracle's posterior N(m, C) given the known pixels, then
    m + C(C + σ²I)⁻¹(x − m), per image [B, 1, 8, 8]."""
    out = []
    for xi, x0i, s in zip(x, x0, sigma.tolist()):
        m, C = FIELD.posterior(HOLE[0], x0i)
        gain = C @ torch.linalg.inv(C + s ** 2 * torch.eye(64, dtype=C.dtype))
        out.append(m + gain @ (xi.double().reshape(-1) - m))
    return torch.stack(out).reshape(x.shape).float()


def test_denoising_training_learns_the_oracles_conditional_denoiser():
    """On the 8×8 field with a central 4×4 hole, the trained guided denoiser D + σμ_φ is far closer to the exact
    E[x0 | x, y] than the unguided D, on the grids it was trained on."""
    torch.manual_seed(0)
    actor = GuidanceModule(1, width=16, depth=1, levels=2, emb=16, step_aware=True, project=True)
    critic = Critic(1, width=4, emb=8)
    losses = warm_start_by_denoising(FIELD, actor, critic, HOLE, 600, torch.Generator().manual_seed(1))
    assert critic.head.weight.grad is None  # the critic is not trained

    x0 = FIELD.draw(256, torch.Generator().manual_seed(10))
    mask = HOLE.expand(256, -1, -1, -1)
    errors = []
    for K in (5, 9):
        sig = edm_sigmas(K, dtype=torch.float32)
        k = torch.arange(256) % K
        s, sn = sig[k], sig[k + 1]
        x = x0 + s.view(-1, 1, 1, 1) * torch.randn(x0.shape, generator=torch.Generator().manual_seed(K))
        D = FIELD(x, s)
        with torch.no_grad():
            guided = D + s.view(-1, 1, 1, 1) * actor(x, s, mask * x0, mask, D, sn)
        target = exact_denoiser(x0, x, s)
        hole = 1 - mask
        errors.append(((hole * (guided - target)) ** 2).sum() / ((hole * (D - target)) ** 2).sum())
    assert max(errors) < 0.3, errors  # measured 0.10 / 0.13 (1 untrained); hardest at σ = 80, x all noise
    assert sum(losses[-50:]) < 0.5 * sum(losses[:50])


def test_a_denoising_run_resumes_records_its_objective_and_warm_starts_the_actor_critic(tmp_path):
    data = FIELD.draw(32, torch.Generator().manual_seed(0))
    run = dict(cfg=ACConfig(lr_actor=1e-2), mask_kinds=["center_box", "pixels50"], batch=4, seed=1,
               num_steps_choices=[2, 3], log_every=1, masks_per_kind=4, progress=False,
               actor_kwargs=dict(width=8, depth=1, emb=8, project=True), critic_kwargs=dict(width=8, emb=8))
    whole = train_aid(FIELD, data, str(tmp_path / "a"), iters=4, objective="denoising", **run)
    train_aid(FIELD, data, str(tmp_path / "b"), iters=2, objective="denoising", **run)
    train_aid(FIELD, data, str(tmp_path / "b"), iters=4, objective="denoising", **run)
    a, b = run_state(tmp_path / "a"), run_state(tmp_path / "b")
    assert_trees_equal(a, {**b, "seconds": a["seconds"]})
    assert a["setup"]["objective"] == "denoising"
    assert read_metadata(str(tmp_path / "a" / "actor.safetensors"))[2]["objective"] == "denoising"
    log = [json.loads(line) for line in open(tmp_path / "b" / "log.jsonl")]
    assert [r["iter"] for r in log] == [1, 2, 3, 4] and all(set(r) >= {"denoise_loss", "last_K"} for r in log)
    with pytest.raises(ValueError, match="objective"):  # the same folder under the actor–critic
        train_aid(FIELD, data, str(tmp_path / "b"), iters=6, **run)
    with pytest.raises(ValueError, match="objective must be one of"):
        train_aid(FIELD, data, str(tmp_path / "c"), iters=1, objective="regression", **run)
    ac = train_aid(FIELD, data, str(tmp_path / "ac"), iters=0, init_actor=str(tmp_path / "a" / "actor.safetensors"),
                   **run)
    assert all(torch.equal(p, q) for p, q in zip(whole.parameters(), ac.parameters()))
    assert "objective" not in run_state(tmp_path / "ac")["setup"]  # actor–critic setups are as before


def test_an_actor_for_ddim_steps_trains_exactly_as_its_euler_twin():
    """D' = D + σu is the guided denoiser of every step (aid.edm.sampler.control_gain), so the objective does not
    depend on the η an actor deploys with: the same weights give the same loss and the same update."""
    x0 = FIELD.draw(8, torch.Generator().manual_seed(0))
    mask = HOLE.expand(8, -1, -1, -1)
    twins = []
    for eta in (0.0, 1.0):
        torch.manual_seed(0)
        actor = GuidanceModule(1, width=8, depth=1, emb=8, eta=eta, project=True)
        trainer = DenoisingTrainer(FIELD, actor, Critic(1, width=4, emb=8), ACConfig(num_steps=3))
        twins.append((trainer.step(x0, mask, torch.Generator().manual_seed(1)), actor))
    assert twins[0][0] == twins[1][0]
    assert all(torch.equal(p, q) for p, q in zip(twins[0][1].parameters(), twins[1][1].parameters()))
