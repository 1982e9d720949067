"""benchmarks/sample_mean.py: the mean of M samples against one sample at the same cost."""
import argparse
from functools import partial

import pytest
import torch

from aid.baselines import defaults
from aid.bench.results import hyperparameters
from aid.edm import load
from aid.methods import SEED_STRIDE, mean_of_samples


def test_the_mean_averages_samples_drawn_with_distinct_seeds_and_counts_every_call():
    from benchmarks.sample_mean import sample_mean
    seen = []

    def fn(net, y, mask, seeds, num_steps):  # a "sampler" whose sample is its seed, with 1 VJP per step
        seen.append(list(seeds))
        return torch.tensor(seeds, dtype=torch.float32).view(-1, 1, 1, 1) / 10_000, {"nfe": num_steps, "vjp": num_steps}

    gt, mask = torch.zeros(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)
    mean, first, cost = sample_mean(fn, None, gt, mask, samples=3, steps=4)
    assert seen == [[0, 1], [SEED_STRIDE, SEED_STRIDE + 1], [2 * SEED_STRIDE, 2 * SEED_STRIDE + 1]]
    assert torch.allclose(mean.flatten(), torch.tensor([SEED_STRIDE, SEED_STRIDE + 1]) / 10_000)
    assert torch.equal(first.flatten(), torch.tensor([0.0, 1.0]) / 10_000) and cost == 3 * 8


def test_mean_of_samples_adds_its_argument_to_the_signature_and_refuses_none():
    def fn(net, y, mask, seeds, num_steps=3, eta=0.5, **kwargs):
        return torch.full((len(seeds), 1, 1, 1), 2.0), {"nfe": num_steps, "vjp": 0, "seconds": 1.0, "params": 7}

    mean = mean_of_samples(fn)
    assert defaults(mean) == {"num_steps": 3, "eta": 0.5, "samples": 1}
    x, report = mean(None, None, None, [0, 1], num_steps=3, samples=2)
    assert torch.equal(x, torch.ones(2, 1, 1, 1))  # each sample clamped to [-1, 1] before the mean
    assert report == {"nfe": 6, "vjp": 0, "seconds": 2.0, "params": 7}
    assert mean(None, None, None, [0])[1]["nfe"] == 3  # fn's own defaults apply
    with pytest.raises(ValueError, match="samples must be >= 1"):
        mean(None, None, None, [0], num_steps=3, samples=0)
    with pytest.raises(ValueError, match="already takes samples"):  # no mean of means (their seeds would collide)
        mean_of_samples(mean)
    # a partial's keywords, even those fn's signature leaves to **kwargs, stay visible to a benchmark cell's record
    bound = mean_of_samples(partial(fn, eta=0.25, guidance_scale=1.5))
    assert hyperparameters(bound) == {"eta": 0.25, "guidance_scale": 1.5, "samples": 1}


def test_antithetic_samples_come_in_pairs_with_one_seed_and_negated_noise():
    seen = []

    def fn(net, y, mask, seeds, num_steps, antithetic=False):
        seen.append((list(seeds), antithetic))
        return torch.zeros(len(seeds), 1, 1, 1), {"nfe": num_steps, "vjp": 0}

    mean_of_samples(fn)(None, None, None, [0, 1], num_steps=1, samples=3, antithetic=True)
    assert seen == [([0, 1], False), ([0, 1], True), ([SEED_STRIDE, SEED_STRIDE + 1], False)]


def test_one_sample_is_its_own_mean_and_two_cost_twice_as_much(backbone):
    from benchmarks.sample_mean import markdown, measure
    torch.manual_seed(0)
    gt = torch.rand(4, 1, 32, 32) * 2 - 1
    rows = measure(load(backbone), gt, ["ddnm"], [(1, 2), (2, 2)], ["center_box"])
    one, two = rows
    assert one["hole_psnr"] == pytest.approx(one["hole_psnr_one_sample"])
    assert two["hole_psnr_one_sample"] == pytest.approx(one["hole_psnr"])  # the same seeds for sample 0
    assert two["hole_psnr"] != pytest.approx(one["hole_psnr"], abs=1e-4) and two["cost"] == 2 * one["cost"] == 4
    assert "| ddnm | center_box | 2 × 2 | 4 |" in markdown(rows, 4)


def test_a_run_is_samples_x_steps_of_a_method_that_draws_one_sample():
    from benchmarks.sample_mean import SINGLE, parse_run
    assert "aid_sharp_ancestral" in SINGLE and "aid_sharp_mean2" not in SINGLE
    assert parse_run("2x9") == (2, 9) and parse_run("1X19") == (1, 19)
    for bad in ("2", "0x9", "2x-1", "axb"):
        with pytest.raises(argparse.ArgumentTypeError, match="MxK|M >= 1"):
            parse_run(bad)
