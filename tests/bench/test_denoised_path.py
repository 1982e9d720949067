"""benchmarks/aid_denoised_path.py: the guided denoiser x̂0_k along AID's sampling path."""
import json

import pytest
import torch

from aid.core.checkpoint import save_module
from aid.guidance.networks import GuidanceModule


def test_the_last_denoised_estimate_is_the_sample_and_the_reports_are_written(fmnist, backbone, tmp_path):
    """The last Euler step goes to σ = 0, so its x̂0 is the sampler's output: the path's last score must equal the
    output's, for a module that moves the sample; the first σ is the grid's σ_max; one score per step."""
    from benchmarks import aid_denoised_path as dp
    torch.manual_seed(0)
    u = GuidanceModule(1, width=8, depth=1, emb=8)
    torch.nn.init.normal_(u.conv_out.weight, std=0.1)
    save_module(u, str(tmp_path / "u.safetensors"), "GuidanceModule", u.config)
    out = tmp_path / "path"
    dp.main(["--out", str(out), "--backbone", backbone, "--aid", str(tmp_path / "u.safetensors"), "--images", "4",
             "--nfe", "3", "--masks", "center_box"])
    r = json.load(open(out / "path.json"))["results"]["center_box|u.safetensors|3"]
    assert len(r["sigma"]) == len(r["hole_psnr"]) == 3 and r["sigma"][0] == pytest.approx(80.0)
    assert r["hole_psnr"][-1] == pytest.approx(r["output"], abs=1e-3)
    assert r["hole_psnr"][0] != pytest.approx(r["output"], abs=1e-3)
    assert "| center_box | u.safetensors | 3 |" in open(out / "path.md").read()
    assert (out / "path.png").stat().st_size > 0
