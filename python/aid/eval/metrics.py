"""Image-quality metrics. Images are [B, C, H, W] in [-1, 1] (data range 2); masks are
[B, 1, H, W] with 1 = known pixel, 0 = hole. FD_fmnist / KD_fmnist are the Fréchet and kernel
distances in the bundled Fashion-MNIST classifier's feature space (aid.eval.classifier), never called
FID / KID. Standard FID/KID and LPIPS come only from local weights files (optional_metrics)."""
from __future__ import annotations

import torch

from aid.eval import fid_inception, lpips
from aid.eval.fid_inception import inception_features, load_fid_inception, resolve_path
from aid.eval.lpips import load_lpips, lpips_distance

SKIPPED = "skipped (no weights)"


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [D], covariance [D, D]) in float64, unbiased (n − 1), as EDM's fid.py computes them."""
    f = features.double()
    if f.dim() != 2 or f.shape[0] < 2:
        raise ValueError(f"feature_stats: need features [N >= 2, D], got {list(f.shape)}")
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), with Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½) (symmetric, PSD)."""
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"frechet_distance: shapes differ: {list(mu1.shape)}, {list(cov1.shape)}, "
                         f"{list(mu2.shape)}, {list(cov2.shape)}")
    s1 = _sqrtm_psd(cov1)
    cross = torch.linalg.eigvalsh(s1 @ cov2 @ s1).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * cross)


def _check_pair(name: str, x: torch.Tensor, ref: torch.Tensor):
    if x.dim() != 4 or x.shape != ref.shape:
        raise ValueError(f"{name}: need x and ref of the same shape [B, C, H, W], "
                         f"got {list(x.shape)} and {list(ref.shape)}")


def _region_mse(name: str, x: torch.Tensor, ref: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Per-image float64 MSE [B] = Σ region·(x − ref)² / (Σ region · C); region [B, 1, H, W] or broadcastable."""
    _check_pair(name, x, ref)
    err = (x.double() - ref.double()).square()
    if region is None:
        return err.mean(dim=(1, 2, 3))
    if region.dim() != 4 or region.shape[1] != 1:
        raise ValueError(f"{name}: region/mask must be [B, 1, H, W] (or broadcastable), got {list(region.shape)}")
    try:
        w = region.double().expand(x.shape[0], 1, *x.shape[2:])
    except RuntimeError:
        raise ValueError(f"{name}: region/mask {list(region.shape)} does not broadcast to "
                         f"{[x.shape[0], 1, *x.shape[2:]]}") from None
    count = w.sum(dim=(1, 2, 3))
    if bool((count <= 0).any()):
        raise ValueError(f"{name}: the counted region is empty for some image (hole metrics: no pixel with mask == 0)")
    return (w * err).sum(dim=(1, 2, 3)) / (count * x.shape[1])


def psnr(x: torch.Tensor, ref: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR [B] in dB for images in [-1, 1] (data range 2): 10·log10(4 / MSE); inf where x == ref.

    `region` weights the pixels counted ([B, 1, H, W] or broadcastable; e.g. 1 − mask for the
    hole only): MSE = Σ region·(x − ref)² / (Σ region · C), the region broadcast over C."""
    return (10 * torch.log10(4.0 / _region_mse("psnr", x, ref, region))).to(x.dtype)


def hole_mse(x: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image MSE [B] over the hole (mask == 0; mask [B, 1, H, W], 1 = known), all channels."""
    return _region_mse("hole_mse", x, ref, (mask == 0)).to(x.dtype)


def boundary_jump(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The seam: per image, the mean |x_p − x_q| over the 4-neighbour pairs that cross the mask's boundary
    (p known, q in the hole; mask [B, 1, H, W], 1 = known), averaged over channels. Compare an output's with the
    clean image's: a visible seam jumps more than the image itself does there. NaN for a mask with no boundary."""
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:]:
        raise ValueError(f"boundary_jump: mask must be [B, 1, H, W] like x {list(x.shape)}, got {list(mask.shape)}")
    known = mask > 0.5
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    pairs = torch.zeros_like(total)
    for dim in (2, 3):  # vertical, then horizontal neighbours
        n = x.shape[dim] - 1
        a, b = known.narrow(dim, 0, n), known.narrow(dim, 1, n)
        crosses = (a != b).double()  # [B, 1, H', W']
        jump = (x.narrow(dim, 0, n) - x.narrow(dim, 1, n)).abs().double().mean(1, keepdim=True)
        total += (crosses * jump).flatten(1).sum(1)
        pairs += crosses.flatten(1).sum(1)
    return total / pairs


def seam_ratio(x: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(R, its standard error): the outputs' mean seam over the clean images' (boundary_jump of each, averaged over
    the images whose mask has a boundary; 1: no visible seam, < 1: smoother across the boundary than the images
    are). A non-finite output makes R NaN, as it does the other metrics. The standard error is the delta method's
    for a ratio of two means of paired values, std(a_i − R·b_i) / (mean(b)·√n): it says whether 0.89 and 0.90
    differ. NaN with fewer than 2 images."""
    a, b = boundary_jump(x, mask), boundary_jump(gt, mask)
    has_boundary = ~b.isnan()
    a, b = a[has_boundary], b[has_boundary]
    r = a.mean() / b.mean()
    n = len(a)
    return float(r), float((a - r * b).std() / (b.mean() * n ** 0.5)) if n > 1 else float("nan")


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t.square() / (2 * sigma ** 2))
    return g / g.sum()


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM [B] (Wang et al. 2004): Gaussian window 11×11 with σ = 1.5, K1 = 0.01,
    K2 = 0.03, data range 2, population (co)variances under the window, 'valid' positions only
    (no padding), averaged over channels and positions — scikit-image's
    `structural_similarity(gaussian_weights=True, use_sample_covariance=False, data_range=2)`."""
    _check_pair("ssim", x, ref)
    if min(x.shape[2:]) < 11:
        raise ValueError(f"ssim: images must be at least 11×11 for the 11×11 window, got {list(x.shape[2:])}")
    C, dtype = x.shape[1], x.dtype
    g = _gaussian_window().to(x.device)
    kernel = (g[:, None] * g[None, :]).expand(C, 1, 11, 11)
    x, ref = x.double(), ref.double()

    def blur(t):
        return torch.nn.functional.conv2d(t, kernel, groups=C)

    mx, my = blur(x), blur(ref)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(ref * ref) - my * my, blur(x * ref) - mx * my
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).to(dtype)


def kernel_distance(f1: torch.Tensor, f2: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018, as torch-fidelity computes it): the unbiased MMD² with the kernel
    k(a, b) = (aᵀb / D + 1)³, on `num_subsets` random subsets of `subset_size` rows drawn without
    replacement from each set (capped at the smaller set); returns (mean, population std) over subsets."""
    f1, f2 = f1.double(), f2.double()
    if f1.dim() != 2 or f2.dim() != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"kernel_distance: need features [N1, D] and [N2, D], "
                         f"got {list(f1.shape)} and {list(f2.shape)}")
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise ValueError(f"kernel_distance: need at least 2 rows in each set, got {f1.shape[0]} and {f2.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    mmds = torch.stack([_mmd2_unbiased(f1[torch.randperm(f1.shape[0], generator=g)[:m].to(f1.device)],
                                       f2[torch.randperm(f2.shape[0], generator=g)[:m].to(f2.device)])
                        for _ in range(num_subsets)])
    return float(mmds.mean()), float(mmds.std(correction=0))


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ_{i≠j} k(x_i, x_j) + k(y_i, y_j) over m(m − 1), minus 2 Σ_{i,j} k(x_i, y_j) over m²."""
    m, d = x.shape

    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    kxx, kyy = k(x, x), k(y, y)
    same = kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()
    return same / (m * (m - 1)) - 2 * k(x, y).sum() / m ** 2


@torch.no_grad()
def fmnist_features(images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Features [N, 128] of images [N, 1, 32, 32] in [-1, 1] from the bundled Fashion-MNIST
    classifier (aid.eval.classifier.load_classifier().features, eval mode), computed in batches."""
    if images.dim() != 4 or images.shape[1:] != (1, 32, 32):
        raise ValueError(f"fmnist_features: need images [N, 1, 32, 32] in [-1, 1], got {list(images.shape)}")
    from aid.eval.classifier import load_classifier
    net = load_classifier().eval().to(images.device)
    return torch.cat([net.features(images[i:i + batch].float()) for i in range(0, images.shape[0], batch)])


def fmnist_distances(images: torch.Tensor, ref_images: torch.Tensor) -> dict:
    """FD_fmnist and KD_fmnist (mean, std) between two image sets in the bundled classifier's
    feature space. Not FID/KID: these numbers cannot be compared with published ones."""
    f, fr = fmnist_features(images), fmnist_features(ref_images)
    kd, kd_std = kernel_distance(f, fr)
    return dict(fd_fmnist=frechet_distance(*feature_stats(f), *feature_stats(fr)), kd_fmnist=kd, kd_fmnist_std=kd_std)


def optional_metrics(images: torch.Tensor, ref_images: torch.Tensor, *, inception_weights: str | None = None,
                     lpips_backbone: str | None = None, lpips_heads: str | None = None) -> dict:
    """Standard metrics that need weights files the user supplies (nothing is downloaded):

    - fid, kid, kid_std: FID and KID (mean, std) between the two image sets in the FID Inception's
      pool features; weights from `inception_weights` or $AID_INCEPTION_WEIGHTS (aid.eval.fid_inception);
    - lpips: mean LPIPS-alex v0.1 over the pairs (images[i], ref_images[i]); weights from
      `lpips_backbone` and `lpips_heads` or $AID_LPIPS_BACKBONE and $AID_LPIPS_HEADS (aid.eval.lpips).

    A metric without its weights is the string "skipped (no weights)", never a number."""
    out = dict(fid=SKIPPED, kid=SKIPPED, kid_std=SKIPPED, lpips=SKIPPED)
    inception = resolve_path(inception_weights, fid_inception.ENV_VAR)
    if inception is not None:
        net = load_fid_inception(inception)
        f, fr = inception_features(images, net), inception_features(ref_images, net)
        out["kid"], out["kid_std"] = kernel_distance(f, fr)
        out["fid"] = frechet_distance(*feature_stats(f), *feature_stats(fr))
    backbone = resolve_path(lpips_backbone, lpips.BACKBONE_ENV_VAR)
    heads = resolve_path(lpips_heads, lpips.HEADS_ENV_VAR)
    if backbone is not None or heads is not None:
        out["lpips"] = float(lpips_distance(images, ref_images, load_lpips(backbone, heads)).mean())
    return out
