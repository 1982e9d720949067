"""The latent pipeline: a randomly initialised AutoencoderKL saved to a temp folder and loaded
from there (nothing downloaded), EDM2's whitening and [0, 1] input convention, the latent mask
rule, and AID (one training iteration, one sampling run) and the baselines end to end."""
import sys

import pytest
import torch

pytest.importorskip("diffusers", reason="the latent pipeline needs diffusers (pip install 'aid-ext[latent]')")

from tiny_latent import LABEL_DIM, RES, tiny_edm2, tiny_vae  # noqa: E402

from aid.edm2 import Denoiser, one_hot  # noqa: E402
from aid.edm2.vae import RAW_MEAN, RAW_STD, LatentCodec, load_vae, unwhiten, whiten  # noqa: E402
from aid.guidance.actor_critic import ACConfig, AIDTrainer  # noqa: E402
from aid.guidance.networks import Critic, GuidanceModule  # noqa: E402
from aid.latent import (  # noqa: E402
    encode_known,
    latent_baseline,
    latent_dps,
    latent_mask,
    pixel_metrics,
    sample_latent_aid,
    train_step,
)


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd-vae-random")
    tiny_vae().save_pretrained(folder)
    return LatentCodec(load_vae(str(folder)), batch_size=2)


def edm2(seed, label_dim=LABEL_DIM):
    return tiny_edm2(seed, label_dim).eval().requires_grad_(False).precompute()


def images_and_masks(B=2):
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(B, 3, RES, RES, generator=g) * 2 - 1).clamp(-1, 1)
    mask = torch.ones(B, 1, RES, RES)
    mask[:, :, 16:40, 20:52] = 0
    return x, mask


def test_whitening_constants_and_round_trip():
    raw = torch.randn(2, 4, 3, 3) * 3
    torch.testing.assert_close(unwhiten(whiten(raw)), raw, rtol=1e-5, atol=1e-5)
    mean, std = torch.tensor(RAW_MEAN).view(1, 4, 1, 1), torch.tensor(RAW_STD).view(1, 4, 1, 1)
    torch.testing.assert_close(whiten(mean.expand(1, 4, 2, 2)), torch.zeros(1, 4, 2, 2))
    torch.testing.assert_close(whiten(mean + std), torch.full((1, 4, 1, 1), 0.5))  # σ_final = 0.5
    with pytest.raises(ValueError, match=r"raw must be \[B, 4, h, w\]"):
        whiten(torch.zeros(1, 3, 2, 2))


def test_codec_feeds_the_vae_pixels_in_0_1_and_whitens(codec):
    x, _ = images_and_masks()
    z = codec.encode(x, "mean")
    assert z.shape == (2, 4, RES // 8, RES // 8) and codec.factor == 8
    with torch.no_grad():
        raw = codec.vae.encode((x + 1) / 2).latent_dist.mean
        torch.testing.assert_close(z, whiten(raw))
        torch.testing.assert_close(codec.decode(z), codec.vae.decode(unwhiten(z)).sample.clamp(0, 1) * 2 - 1)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    s1, s2 = codec.encode(x, "sample", g()), codec.encode(x, "sample", g())
    assert torch.equal(s1, s2) and not torch.allclose(s1, z)  # EDM2's stochastic encoding, reproducible
    with pytest.raises(ValueError, match="mode must be 'mean' or 'sample'"):
        codec.encode(x, "mode")
    with pytest.raises(ValueError, match="multiples of 8"):
        codec.encode(x[:, :, :60, :60])


def test_vae_is_loaded_only_from_a_local_folder_with_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="not a VAE folder"):
        load_vae(str(tmp_path / "stabilityai/sd-vae-ft-mse"))
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'aid-ext\[latent\]'"):
        load_vae(str(tmp_path))


def test_latent_mask_counts_a_cell_known_only_if_all_its_pixels_are():
    mask = torch.ones(1, 1, 16, 16)
    mask[0, 0, 3, 12] = 0  # one hole pixel in cell (0, 1)
    mask[0, 0, 8:, :8] = 0  # cell (1, 0) entirely a hole
    torch.testing.assert_close(latent_mask(mask, 8), torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]))
    with pytest.raises(ValueError, match="multiples of 8"):
        latent_mask(torch.ones(1, 1, 12, 16), 8)


def test_aid_in_latent_space_trains_and_samples_end_to_end(codec):
    x, mask = images_and_masks()
    labels = one_hot([3, 7], 10)
    backbone = Denoiser(edm2(0), gnet=edm2(1), guidance=2.0)  # autoguided, class-conditional
    torch.manual_seed(2)
    actor, critic = GuidanceModule(4, width=8, emb=8), Critic(4, width=8, emb=8)
    trainer = AIDTrainer(backbone, actor, critic, ACConfig(num_steps=3, critic_warmup=0))
    before = [p.clone() for p in actor.parameters()]
    log = train_step(trainer, codec, x, mask, torch.Generator().manual_seed(0), class_labels=labels)
    assert log["iter"] == 1 and all(torch.isfinite(torch.tensor(v)) for v in log.values())
    assert any(not torch.equal(p, q) for p, q in zip(actor.parameters(), before))  # the actor moved
    y_lat, m_lat = encode_known(codec, x, mask)
    assert y_lat.shape == (2, 4, 8, 8) and m_lat.shape == (2, 1, 8, 8) and 0 < m_lat.mean() < 1
    with torch.no_grad():  # the actor sees the latent of the masked image, not the clean image's latent
        torch.testing.assert_close(y_lat, m_lat * codec.encode(mask * x, "mean"), rtol=0, atol=0)
        assert not torch.allclose(y_lat, m_lat * codec.encode(x, "mean"))

    out, report = sample_latent_aid(backbone, codec, actor, x, mask, [0, 1], num_steps=3)
    assert out.shape == x.shape and torch.isfinite(out).all() and out.abs().max() <= 1
    assert torch.equal(out * mask, x * mask)  # known pixels pasted in pixel space
    assert report["nfe"] == 2 * 3 and report["vae_decodes"] == 2  # 3 steps, a net and a guide evaluation each
    again, _ = sample_latent_aid(backbone, codec, actor, x, mask, [0, 1], num_steps=3)
    assert torch.equal(out, again)
    metrics = pixel_metrics(out, x, mask)
    assert metrics["psnr_hole"] < metrics["psnr"] < float("inf") and -1 <= metrics["ssim"] <= 1


@pytest.mark.parametrize("method, kwargs", [("replacement", {}), ("ddnm", {}), ("dps", {"zeta": 0.5})])
def test_latent_baselines_decode_and_paste(codec, method, kwargs):
    x, mask = images_and_masks()
    # EDM2's guid presets: a conditional net autoguided by an unconditional one (two evaluations per call)
    backbone = Denoiser(edm2(0), gnet=edm2(1, label_dim=0), guidance=2.0, class_labels=one_hot([3, 7], 10))
    out, report = latent_baseline(method, backbone, codec, x, mask, [0, 1], num_steps=3, **kwargs)
    assert out.shape == x.shape and torch.isfinite(out).all() and torch.equal(out * mask, x * mask)
    assert report["nfe"] == 2 * 3 and report["vjp"] == (2 * 3 if method == "dps" else 0)
    with pytest.raises(ValueError, match="method must be one of"):
        latent_baseline("deft", backbone, codec, x, mask, [0, 1])


def test_dps_through_the_decoder(codec):
    x, mask = images_and_masks()
    backbone = Denoiser(edm2(0, label_dim=0))
    out, report = latent_dps(backbone, codec, x, mask, [0, 1], num_steps=2, zeta=0.5)
    assert out.shape == x.shape and torch.isfinite(out).all() and torch.equal(out * mask, x * mask)
    assert report["nfe"] == 2 and report["vjp"] == 2 and report["vae_decodes"] == 2 + 2 * 2
    plain, _ = latent_baseline("replacement", backbone, codec, x, mask, [0, 1], num_steps=2)
    assert not torch.allclose(out, plain)
