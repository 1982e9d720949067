"""Fréchet distance against closed forms on Gaussians."""
import pytest
import torch

from aid.metrics import feature_stats, frechet_distance


def test_closed_form_for_commuting_covariances():
    """Diagonal Σ1, Σ2: FD = ‖μ1−μ2‖² + Σ_i (√a_i − √b_i)²."""
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 0.25])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    want = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(want.item(), rel=1e-12)


def test_rotation_invariance_and_zero_on_identical_statistics():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    cov1, cov2 = A @ A.T + torch.eye(6, dtype=torch.float64), torch.diag(torch.arange(1.0, 7.0, dtype=torch.float64))
    mu = torch.randn(6, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    d = frechet_distance(mu, cov1, 0 * mu, cov2)
    assert frechet_distance(Q @ mu, Q @ cov1 @ Q.T, 0 * mu, Q @ cov2 @ Q.T) == pytest.approx(d, rel=1e-9)
    assert abs(frechet_distance(mu, cov1, mu, cov1)) < 1e-9
    # non-commuting 1-D-rank example with a known answer: Σ1 = diag(1, 0), Σ2 = [[0,0],[0,1]] -> FD = 2
    assert frechet_distance(torch.zeros(2), torch.diag(torch.tensor([1.0, 0.0])), torch.zeros(2),
                            torch.diag(torch.tensor([0.0, 1.0]))) == pytest.approx(2.0, abs=1e-9)


def test_sample_statistics_converge_to_the_population_distance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    y = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * 2 + 1
    fd = frechet_distance(*feature_stats(x), *feature_stats(y))
    assert fd == pytest.approx(3 * 1 + 3 * (2 - 1) ** 2, rel=0.02)  # ‖μ‖² = 3, Σ(√4 − √1)² = 3
    with pytest.raises(ValueError, match="need features"):
        feature_stats(torch.zeros(1, 3))
