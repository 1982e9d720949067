"""Fréchet distance against closed forms on Gaussians."""
import math

import pytest
import torch

from aid.eval.metrics import boundary_jump, feature_stats, frechet_distance, seam_ratio


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


# ---------------------------------------------------------------- PSNR, hole MSE, SSIM, KID, FD_fmnist

import numpy as np  # noqa: E402

from aid.eval.metrics import fmnist_distances, fmnist_features, hole_mse, kernel_distance, psnr, ssim  # noqa: E402


def _images(shape, seed, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo


def test_psnr_and_hole_mse_by_hand():
    ref = torch.zeros(2, 3, 4, 4)
    x = ref.clone()
    x[0] += 0.2                  # MSE 0.04 everywhere -> 10·log10(4 / 0.04) = 20 dB
    x[1, :, :2] += 1.0           # error 1 on the top half only
    assert torch.allclose(psnr(x, ref), torch.tensor([20.0, 10 * math.log10(4 / 0.5)]))
    mask = torch.ones(2, 1, 4, 4)
    mask[:, :, :2] = 0           # hole = top half
    assert torch.allclose(hole_mse(x, ref, mask), torch.tensor([0.04, 1.0]))
    assert torch.allclose(psnr(x, ref, region=1 - mask), torch.tensor([20.0, 10 * math.log10(4.0)]))
    assert torch.allclose(psnr(x, ref, region=(1 - mask)[:1]), psnr(x, ref, region=1 - mask))  # broadcast over B
    w = torch.rand(2, 1, 4, 4)   # soft weights: weighted mean of the squared error over pixels and channels
    want = (w * (x - ref).square()).sum(dim=(1, 2, 3)) / (3 * w.sum(dim=(1, 2, 3)))
    assert torch.allclose(psnr(x, ref, region=w), 10 * torch.log10(4 / want))


def test_psnr_hole_mse_errors():
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="psnr: need x and ref of the same shape"):
        psnr(x, torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="psnr: the counted region is empty"):
        psnr(x, x + 1, region=torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"psnr: region/mask must be \[B, 1, H, W\]"):
        psnr(x, x + 1, region=torch.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        psnr(x, x + 1, region=torch.ones(2, 1, 3, 4))
    with pytest.raises(ValueError, match="hole_mse: the counted region is empty"):
        hole_mse(x, x + 1, torch.ones(2, 1, 4, 4))


def _ssim_brute_force(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 written out: at every valid 11×11 window position, Gaussian-weighted
    (σ = 1.5) means, variances and covariance, then SSIM; averaged over positions and channels."""
    r = np.arange(-5, 6)
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                a, b = x[c, i:i + 11, j:j + 11], y[c, i:i + 11, j:j + 11]
                ma, mb = (w * a).sum(), (w * b).sum()
                va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_brute_force_window_loop():
    ref = _images((2, 3, 14, 15), 0)
    x = (ref + 0.3 * _images((2, 3, 14, 15), 1)).clamp(-1, 1)
    got = ssim(x, ref)
    assert got.shape == (2,)
    for b in range(2):
        assert got[b].item() == pytest.approx(_ssim_brute_force(x[b].numpy(), ref[b].numpy()), rel=1e-10)


def test_ssim_is_one_on_identical_images_and_falls_with_noise():
    ref = torch.nn.functional.avg_pool2d(_images((1, 1, 36, 36), 2), 3, 1)  # smooth, 34×34
    assert ssim(ref, ref).item() == pytest.approx(1.0, abs=1e-12)
    noise = _images(ref.shape, 3)
    values = [ssim((ref + s * noise).clamp(-1, 1), ref).item() for s in (0.05, 0.2, 0.5, 1.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    with pytest.raises(ValueError, match="at least 11×11"):
        ssim(torch.zeros(1, 1, 10, 32), torch.zeros(1, 1, 10, 32))


def _mmd2_naive(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b / D + 1)³, one pair at a time."""
    m, d = x.shape

    def k(a, b):
        return (a @ b / d + 1) ** 3

    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return kxx + kyy - 2 * kxy


def test_kernel_distance_matches_a_naive_double_loop():
    x, y = _images((20, 5, 1, 1), 4).view(20, 5), _images((20, 5, 1, 1), 5).view(20, 5) + 0.3
    mean, std = kernel_distance(x, y, num_subsets=3, subset_size=1000)  # capped at 20: the whole sets
    assert mean == pytest.approx(_mmd2_naive(x.numpy(), y.numpy()), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)
    mean_sub, std_sub = kernel_distance(x, y, num_subsets=10, subset_size=8, seed=1)
    assert std_sub > 0 and kernel_distance(x, y, num_subsets=10, subset_size=8, seed=1) == (mean_sub, std_sub)
    with pytest.raises(ValueError, match="kernel_distance: need features"):
        kernel_distance(x, y[:, :4])


def test_kernel_distance_near_zero_for_one_distribution_and_positive_for_a_shift():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(2, 400, 16, generator=g, dtype=torch.float64)
    same, same_std = kernel_distance(a, b, num_subsets=20, subset_size=150)
    shifted, shifted_std = kernel_distance(a, b + 0.5, num_subsets=20, subset_size=150)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * max(abs(same), shifted_std)


def test_fmnist_features_shape_batching_and_errors():
    x = _images((7, 1, 32, 32), 7).float()
    f = fmnist_features(x, batch=3)
    assert f.shape == (7, 128) and torch.isfinite(f).all() and (f >= 0).all()  # ReLU features
    assert torch.allclose(f, fmnist_features(x), atol=1e-5)                    # batch size does not matter
    with pytest.raises(ValueError, match=r"fmnist_features: need images \[N, 1, 32, 32\]"):
        fmnist_features(torch.zeros(2, 3, 32, 32))


def test_fmnist_distances_separate_classes():
    """Two halves of one Fashion-MNIST class are closer than two different classes."""
    from aid.data.datasets import fashion_mnist
    try:
        x, y = fashion_mnist("test", 32)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    shirts, boots = x[y == 0][:200], x[y == 9][:100]
    near, far = fmnist_distances(shirts[:100], shirts[100:]), fmnist_distances(shirts[:100], boots)
    assert set(near) == {"fd_fmnist", "kd_fmnist", "kd_fmnist_std"}
    assert 0 < near["fd_fmnist"] < far["fd_fmnist"] / 5
    assert near["kd_fmnist"] < far["kd_fmnist"] / 5 and far["kd_fmnist"] > 0


def test_boundary_jump_is_the_mean_step_across_the_mask_edge_only():
    mask = torch.zeros(2, 1, 6, 6)
    mask[..., :, :3] = 1  # left half known: 6 crossing pairs per image, all horizontal
    x = torch.zeros(2, 3, 6, 6)
    x[0, :, :, 3:] = 0.5  # a seam of 0.5 on every channel
    x[1, :, :, :2] = 7.0  # big steps away from the edge do not count
    x[1, 0, :, 3] = 0.3   # one channel of three jumps by 0.3 at the edge
    torch.testing.assert_close(boundary_jump(x, mask), torch.tensor([0.5, 0.1], dtype=torch.float64))
    box = torch.ones(1, 1, 6, 6)
    box[..., 2:4, 2:4] = 0  # a 2×2 hole: 8 crossing pairs, 4 vertical and 4 horizontal
    y = torch.zeros(1, 1, 6, 6)
    y[..., 2:4, 2:4] = 1.0
    torch.testing.assert_close(boundary_jump(y, box), torch.tensor([1.0], dtype=torch.float64))
    assert torch.isnan(boundary_jump(y, torch.ones(1, 1, 6, 6))).all()  # no boundary
    with pytest.raises(ValueError, match="mask must be"):
        boundary_jump(y, torch.ones(1, 3, 6, 6))


def test_seam_ratio_is_the_ratio_of_mean_seams_with_the_delta_method_error():
    """R = mean(a)/mean(b) over the images whose mask has a boundary; its standard error shrinks as 1/√n and
    matches the spread of R over independent sets of images."""
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 0

    def draw(n):  # clean images, and outputs whose seam is 0.8 of theirs on average, with noise per image
        gt = torch.rand(n, 1, 8, 8, generator=g)
        scale = 0.8 + 0.2 * torch.randn(n, 1, 1, 1, generator=g)
        x = torch.where(mask.bool(), gt, gt.mean((2, 3), keepdim=True) + scale * (gt - gt.mean((2, 3), keepdim=True)))
        return x, gt

    x, gt = draw(4)
    a, b = boundary_jump(x, mask.expand(4, -1, -1, -1)), boundary_jump(gt, mask.expand(4, -1, -1, -1))
    r, se = seam_ratio(x, gt, mask.expand(4, -1, -1, -1))
    assert r == pytest.approx(float(a.mean() / b.mean()))
    assert se == pytest.approx(float((a - r * b).std() / (b.mean() * 2)))
    no_boundary = torch.cat([mask.expand(4, -1, -1, -1), torch.ones(1, 1, 8, 8)])  # a fifth image: all known
    assert seam_ratio(torch.cat([x, x[:1]]), torch.cat([gt, gt[:1]]), no_boundary) == pytest.approx((r, se))
    diverged = x.clone()
    diverged[0] = float("nan")
    assert math.isnan(seam_ratio(diverged, gt, mask.expand(4, -1, -1, -1))[0])  # left in, as the other metrics do
    one = seam_ratio(x[:1], gt[:1], mask)
    assert math.isfinite(one[0]) and math.isnan(one[1])  # no error from a single image
    ratios, errors = zip(*(seam_ratio(*draw(400), mask.expand(400, -1, -1, -1)) for _ in range(30)))
    spread = torch.tensor(ratios).std().item()
    assert 0.6 < sum(errors) / len(errors) / spread < 1.6  # the error says how far R moves between image sets


def test_plot_curves_get_distinct_colours_for_every_benchmark_method():
    """Each method of the benchmark (and a few variants) gets its own colour in the speed–quality plots."""
    from aid.eval.plots import PALETTE, curve_styles
    from aid.methods import NAMES
    assert len(NAMES) <= len(PALETTE)
    styles = curve_styles(NAMES)
    assert len({s["color"] for s in styles.values()}) == len(NAMES)
