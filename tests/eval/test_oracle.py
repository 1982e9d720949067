"""The linear-Gaussian oracle: exact samplers reproduce the prior and the inpainting posterior."""
import torch

from aid.edm import sample
from aid.eval.oracle import FieldDenoiser, GaussianDenoiser, moments, random_covariance

SHAPE = (1, 4, 4)  # d = 16


def _oracle(seed=0):
    d = 16
    mu = 0.1 * torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return GaussianDenoiser(mu, random_covariance(d, seed, decay=0.5), SHAPE)


def test_denoiser_is_the_posterior_mean_of_the_noisy_observation():
    """D(x; σ) = E[x0 | x0 + σn = x]: check against the generic Gaussian conditioning formula."""
    net = _oracle()
    x = torch.randn(3, *SHAPE, dtype=torch.float64)
    sigma = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    D = net(x, sigma)
    for i, s in enumerate(sigma):
        S = net.cov
        want = net.mu + S @ torch.linalg.solve(S + s**2 * torch.eye(16, dtype=torch.float64), x[i].reshape(-1) - net.mu)
        torch.testing.assert_close(D[i].reshape(-1), want)


def test_pf_ode_with_the_exact_denoiser_samples_the_prior():
    net = _oracle(1)
    x = sample(net, range(4000), num_steps=64)
    mu, cov = moments(x)
    assert (mu - net.mu).norm() < 0.05
    assert (cov - net.cov).norm() / net.cov.norm() < 0.08


def test_closed_form_posterior_is_reproduced_by_its_exact_conditional_sampler():
    """The posterior has zero variance on known pixels and the Schur complement in the hole; the PF-ODE with
    the posterior's exact denoiser (a Gaussian oracle of its own) must reproduce its moments."""
    net = _oracle(2)
    mask = torch.zeros(1, 4, 4)
    mask[:, :, :2] = 1
    g = torch.Generator().manual_seed(3)
    y = (net.mu + torch.linalg.cholesky(net.cov) @ torch.randn(16, dtype=torch.float64, generator=g)).reshape(SHAPE)
    mean, cov = net.posterior(mask, y)
    known = mask.expand(SHAPE).reshape(-1).bool()
    assert torch.equal(mean[known], y.reshape(-1)[known]) and cov[known].abs().max() == 0
    assert torch.all(cov.diagonal()[~known] <= net.cov.diagonal()[~known] + 1e-12)  # conditioning never adds variance
    conditional = GaussianDenoiser(mean, cov, SHAPE)
    x = sample(conditional, range(4000), num_steps=64)
    m, c = moments(x)
    assert (m[known] - mean[known]).abs().max() < 1e-3  # known pixels land on y
    assert (m - mean).norm() < 0.05
    assert (c - cov).norm() / cov.norm() < 0.1


def test_field_oracle_fft_denoiser_equals_the_dense_formula_and_draws_have_its_covariance():
    f = FieldDenoiser(8, alpha=1.5, scale=0.3, mean=0.1)
    assert torch.allclose(f.cov.diagonal(), torch.full((64,), 0.3, dtype=torch.float64))  # stationary, scaled
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    sigma = torch.tensor([0.05, 1.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(f(x, sigma), GaussianDenoiser.forward(f, x, sigma), rtol=1e-10, atol=1e-12)
    x0 = f.draw(20000, torch.Generator().manual_seed(0))
    mu, cov = moments(x0)
    assert (mu - 0.1).abs().max() < 0.02
    assert (cov - f.cov).norm() / f.cov.norm() < 0.04
    # neighbouring pixels are positively correlated, decaying with distance (a smooth field)
    c = f.cov[0].reshape(8, 8)
    assert c[0, 0] > c[0, 1] > c[0, 2] > 0
