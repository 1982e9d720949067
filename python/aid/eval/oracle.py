"""The linear-Gaussian oracle: data x0 ~ N(μ, Σ) in d = C·H·W dimensions, where the EDM
denoiser is exact, D(x; σ) = μ + Σ(Σ + σ²I)⁻¹(x − μ), and the inpainting posterior is
Gaussian in closed form. Samplers that are exact here must reproduce known moments; the
AID trainer is checked against the optimal control of this problem (docs/method.md)."""
from __future__ import annotations

import torch
from torch import nn

from aid.eval.metrics import feature_stats


def random_covariance(d: int, seed: int = 0, decay: float = 1.0, scale: float = 0.25) -> torch.Tensor:
    """A random SPD covariance with eigenvalues scale·(i+1)^(−decay) in a random basis."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = scale * torch.arange(1, d + 1, dtype=torch.float64) ** (-decay)
    return (Q * lam) @ Q.T


class GaussianDenoiser(nn.Module):
    """Exact EDM denoiser of N(μ, Σ) for images of shape (C, H, W); a drop-in for EDMPrecond."""

    def __init__(self, mu: torch.Tensor, cov: torch.Tensor, shape: tuple[int, int, int]):
        super().__init__()
        C, H, W = shape
        if H != W or mu.numel() != C * H * W or cov.shape != (C * H * W, C * H * W):
            raise ValueError(f"GaussianDenoiser: need square images and μ [d], Σ [d, d] with d = C·H·W; got "
                             f"shape {shape}, μ {list(mu.shape)}, Σ {list(cov.shape)}")
        self.img_channels, self.img_resolution, self.sigma_data = C, H, 0.5
        self.register_buffer("mu", mu.double().reshape(-1))
        self.register_buffer("cov", cov.double())
        self._eig = None  # Σ's eigendecomposition, computed on the first forward (O(d³))

    def forward(self, x, sigma, class_labels=None):
        if self._eig is None:
            lam, V = torch.linalg.eigh(self.cov)
            self._eig = (lam.clamp_min(0), V)
        lam, V = self._eig
        B = x.shape[0]
        s2 = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1, 1) ** 2
        e = (x.double().reshape(B, -1) - self.mu) @ V  # coordinates in Σ's eigenbasis
        D = self.mu + (e * lam / (lam + s2)) @ V.T
        return D.reshape(x.shape).to(x.dtype)

    def posterior(self, mask: torch.Tensor, y: torch.Tensor):
        """Mean [d] and covariance [d, d] of x0 | (x0 = y on the known pixels) for one mask [1|C, H, W]."""
        known = mask.expand(self.img_channels, -1, -1).reshape(-1).bool()
        K, Hh = known.nonzero().squeeze(1), (~known).nonzero().squeeze(1)
        S = self.cov
        gain = torch.linalg.solve(S[K][:, K], S[K][:, Hh]).T  # Σ_HK Σ_KK⁻¹
        mean = y.double().reshape(-1).clone()
        mean[Hh] = self.mu[Hh] + gain @ (y.double().reshape(-1)[K] - self.mu[K])
        cov = torch.zeros_like(S)
        cov[Hh[:, None], Hh] = S[Hh][:, Hh] - gain @ S[K][:, Hh]
        return mean, cov


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean [d] and covariance [d, d] of samples [N, ...]."""
    return feature_stats(x.reshape(x.shape[0], -1))


def posterior_mean(net: GaussianDenoiser, known: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x̄(y) = E[x0 | known pixels of y] for a batch y [B, C, H, W] and one mask (known: [d] bool): [B, d]."""
    mu, S, K = net.mu, net.cov, known
    yk = y.double().reshape(y.shape[0], -1)[:, K]
    gain = torch.linalg.solve(S[K][:, K], S[K][:, ~K]).T
    out = mu.expand(y.shape[0], -1).clone()
    out[:, K] = yk
    out[:, ~K] = mu[~K] + (yk - mu[K]) @ gain.T
    return out


def step_matrices(net: GaussianDenoiser, sigmas: torch.Tensor, solver: str) -> list[torch.Tensor]:
    """A_k of the unguided step in e = x − μ, e' = A_k e (the control then enters as + Δr_k·u):
    A_k = I − (Δr_k/σ_k)(I − P_k), P_k = Σ(Σ + σ_k²I)⁻¹; Heun averages that slope with the one at the
    unguided predictor (aid.edm.sampler.guided_step), except on a last step to σ = 0."""
    if solver not in ("euler", "heun"):
        raise ValueError(f"LQOptimum: solver must be 'euler' or 'heun', got {solver!r}")
    eye = torch.eye(net.mu.numel(), dtype=torch.float64)
    slope = lambda s: (eye - net.cov @ torch.linalg.inv(net.cov + s**2 * eye)) / s  # noqa: E731
    out = []
    for k in range(len(sigmas) - 1):
        s, sn = sigmas[k], sigmas[k + 1]
        A = eye - (s - sn) * slope(s)
        if solver == "heun" and sn > 0:
            A = eye - (s - sn) / 2 * (slope(s) + slope(sn) @ A)
        out.append(A)
    return out


class LQOptimum:
    """The optimal guided cost J* = min_u J(u) of AID's control problem (docs/method.md) on the
    oracle, for Euler or Heun rollouts on a σ grid and one mask, by a backward Riccati recursion.

    With e = X − μ the guided Euler step is linear: e' = A_k e + Δr_k u, A_k = I − (Δr_k/σ_k)(I − P_k),
    P_k = Σ(Σ + σ_k²I)⁻¹ (Heun: A_k averages that slope with the one at the unguided predictor). The
    controller sees y, not x0, and X_K is independent of x0 given y, so
    E[Ψ | y] = (X_K − x̄)ᵀW(X_K − x̄) + tr(W·Cov(x0 | y)), x̄ = E[x0 | y]: a deterministic LQ tracking problem.
    V_k(e) = eᵀS_k e − 2s_kᵀe + c_k, and u*_k = −(β/2·I + Δr_k S_{k+1})⁻¹(S_{k+1}A_k e − s_{k+1})."""

    def __init__(self, net: GaussianDenoiser, sigmas: torch.Tensor, mask: torch.Tensor, beta: float = 1.0,
                 w_hole: float = 1.0, solver: str = "euler"):
        d = net.mu.numel()
        eye = torch.eye(d, dtype=torch.float64)
        self.net, self.beta, self.sigmas = net, beta, sigmas.double()
        known = mask.expand(net.img_channels, -1, -1).reshape(-1).double()
        self.W = torch.diag(known + w_hole * (1 - known))
        self.known = known.bool()
        self.A, self.gain_inv = step_matrices(net, self.sigmas, solver), []
        S = self.W
        self.S = [S]
        for k in reversed(range(len(self.A))):
            dr, A = self.sigmas[k] - self.sigmas[k + 1], self.A[k]
            G = torch.linalg.inv(beta / 2 * eye + dr * S)  # (R + BᵀSB)⁻¹·Δr² folded: B = Δr·I, R = (β/2)Δr·I
            self.gain_inv.insert(0, G)
            S = A.T @ S @ A - dr * A.T @ S @ G @ S @ A
            self.S.insert(0, S)
        _, cov_post = net.posterior(mask, net.mu.reshape(net.img_channels, net.img_resolution, -1))
        self.tr_post = float(torch.trace(self.W @ cov_post))

    def posterior_mean(self, y: torch.Tensor) -> torch.Tensor:
        """x̄(y) for a batch y [B, C, H, W] (only the known pixels of y are read): [B, d]."""
        return posterior_mean(self.net, self.known, y)

    def _linear_terms(self, c: torch.Tensor) -> list[torch.Tensor]:
        """s_k for a batch of targets c = x̄ − μ [B, d] (row vectors), k = 0..K."""
        s = c @ self.W
        out = [s]
        for k in reversed(range(len(self.A))):
            dr, A, S1, G = self.sigmas[k] - self.sigmas[k + 1], self.A[k], self.S[k + 1], self.gain_inv[k]
            s = (s - dr * s @ G @ S1) @ A  # s_k = A_kᵀ(s − Δr S G s); S, G symmetric
            out.insert(0, s)
        return out

    def linear_terms(self, y: torch.Tensor) -> list[torch.Tensor]:
        """s_k(y), k = 0..K, each [B, d]: the linear part of the optimal value V_k(e) = eᵀS_k e − 2s_kᵀe + c_k
        for observations y [B, C, H, W] (only their known pixels are read)."""
        return self._linear_terms(self.posterior_mean(y) - self.net.mu)

    def control(self, k: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The optimal field u*_k(x; y) for images x, y [B, C, H, W]."""
        s1 = self.linear_terms(y)[k + 1]
        e = x.double().reshape(x.shape[0], -1) - self.net.mu
        u = -((e @ self.A[k].T) @ self.S[k + 1] - s1) @ self.gain_inv[k]
        return u.reshape(x.shape).to(x.dtype)

    def optimal_cost(self, x0: torch.Tensor) -> float:
        """J* averaged over clean images x0 [B, C, H, W] (y = m⊙x0), exactly over X_0 = σ_0·ε."""
        c = self.posterior_mean(x0) - self.net.mu
        terms = self._linear_terms(c)
        s0, S0, mu, sig0 = terms[0], self.S[0], self.net.mu, self.sigmas[0]
        # the constant c_0 = cᵀWc − Σ_k Δr_k s_{k+1}ᵀ G_k s_{k+1}
        const = ((c @ self.W) * c).sum(1)
        for k in range(len(self.A)):
            dr, s1 = self.sigmas[k] - self.sigmas[k + 1], terms[k + 1]
            const = const - dr * ((s1 @ self.gain_inv[k]) * s1).sum(1)
        # E over e_0 ~ N(−μ, σ_0² I): σ_0² tr S_0 + μᵀS_0μ + 2 s_0ᵀμ
        v0 = sig0**2 * torch.trace(S0) + mu @ S0 @ mu + 2 * (s0 @ mu) + const
        return float(v0.mean()) + self.tr_post


class ProjectedLQOptimum:
    """J* and u* of AID's control problem for a projecting module (GuidanceModule(project=True)): after every
    step the known pixels are set to y noised to σ_{k+1}, so only the hole is a state.

    In e = x − μ, h = e_H (hole), w = e_K (known): h' = A_HH h + A_HK w + Δr_k u_H, and the next w is
    c_K + σ_{k+1}z (c = y − μ, z ~ N(0, I) drawn after the control acts; exactly c_K after the last step).
    The control of the known pixels is wasted (u*_K = 0) and Ψ = w_hole‖X_H − x0_H‖², whose expectation given
    y is w_hole‖X_H − x̄_H‖² + w_hole·tr Cov_H(x0 | y). With V_k(h, w) = hᵀS_k h − 2s_kᵀh + 2hᵀM_k w + wᵀN_k w
    − 2t_kᵀw + c_k, the expectation over w_{k+1} leaves hᵀS h − 2s̄ᵀh + …, s̄ = s_{k+1} − M_{k+1}c_K, and
    u*_H = −G_k(S_{k+1}f − s̄), f = A_HH h + A_HK w, G_k = (β/2·I + Δr_k S_{k+1})⁻¹; with Q = S − Δr SGS and
    q = (I − Δr SG)s̄: S_k = A_HHᵀQA_HH, M_k = A_HHᵀQA_HK, N_k = A_HKᵀQA_HK, s_k = A_HHᵀq, t_k = A_HKᵀq."""

    def __init__(self, net: GaussianDenoiser, sigmas: torch.Tensor, mask: torch.Tensor, beta: float = 1.0,
                 w_hole: float = 1.0, solver: str = "euler"):
        self.net, self.beta, self.w_hole, self.sigmas = net, beta, w_hole, sigmas.double()
        known = mask.expand(net.img_channels, -1, -1).reshape(-1).bool()
        self.K, self.H = known.nonzero().squeeze(1), (~known).nonzero().squeeze(1)
        A = step_matrices(net, self.sigmas, solver)
        self.A_HH = [a[self.H][:, self.H] for a in A]
        self.A_HK = [a[self.H][:, self.K] for a in A]
        nh, nk = len(self.H), len(self.K)
        S = w_hole * torch.eye(nh, dtype=torch.float64)
        zeros = torch.zeros
        self.S, self.M, self.N, self.G = [S], [zeros(nh, nk, dtype=S.dtype)], [zeros(nk, nk, dtype=S.dtype)], []
        for k in reversed(range(len(A))):
            dr = self.sigmas[k] - self.sigmas[k + 1]
            G = torch.linalg.inv(beta / 2 * torch.eye(nh, dtype=torch.float64) + dr * S)
            Q = S - dr * S @ G @ S
            S, M, N = (self.A_HH[k].T @ Q @ self.A_HH[k], self.A_HH[k].T @ Q @ self.A_HK[k],
                       self.A_HK[k].T @ Q @ self.A_HK[k])
            self.G.insert(0, G), self.S.insert(0, S), self.M.insert(0, M), self.N.insert(0, N)
        self.known = known
        _, cov_post = net.posterior(mask, net.mu.reshape(net.img_channels, net.img_resolution, -1))
        self.tr_post = float(w_hole * torch.trace(cov_post[self.H][:, self.H]))

    def _terms(self, y: torch.Tensor):
        """Per step k = 0..K for observations y [B, C, H, W]: (s̄ of step k's control, s_k, t_k, c_k), each a row
        per image [B, ·] (no control after the last step: s̄ is None at k = K)."""
        c = posterior_mean(self.net, self.known, y) - self.net.mu  # [B, d]; its known part is y − μ
        cK, cH = c[:, self.K], c[:, self.H]
        s, t, const = self.w_hole * cH, torch.zeros_like(cK), self.w_hole * (cH * cH).sum(1)
        out = [(None, s, t, const)]
        for k in reversed(range(len(self.G))):
            dr, sn = self.sigmas[k] - self.sigmas[k + 1], self.sigmas[k + 1]
            S1, M1, N1, G = self.S[k + 1], self.M[k + 1], self.N[k + 1], self.G[k]
            s_bar = s - cK @ M1.T
            const = (const + ((cK @ N1) * cK).sum(1) + sn**2 * torch.trace(N1) - 2 * (t * cK).sum(1)
                     - dr * ((s_bar @ G) * s_bar).sum(1))
            q = s_bar - dr * s_bar @ G @ S1
            s, t = q @ self.A_HH[k], q @ self.A_HK[k]
            out.insert(0, (s_bar, s, t, const))
        return out

    def control(self, k: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The optimal field u*_k(x; y) for images x, y [B, C, H, W] (zero on the known pixels)."""
        s_bar = self._terms(y)[k][0]
        e = x.double().reshape(x.shape[0], -1) - self.net.mu
        f = e[:, self.H] @ self.A_HH[k].T + e[:, self.K] @ self.A_HK[k].T
        u = torch.zeros_like(e)
        u[:, self.H] = -(f @ self.S[k + 1] - s_bar) @ self.G[k]
        return u.reshape(x.shape).to(x.dtype)

    def optimal_cost(self, x0: torch.Tensor) -> float:
        """J* averaged over clean images x0 [B, C, H, W] (y = m⊙x0), exactly over X_0 = σ_0·ε (not projected)."""
        _, s0, t0, const = self._terms(x0)[0]
        S0, M0, N0, sig0 = self.S[0], self.M[0], self.N[0], self.sigmas[0]
        mH, mK = self.net.mu[self.H], self.net.mu[self.K]  # E[h_0] = −μ_H, E[w_0] = −μ_K, each with σ_0² I
        v0 = (sig0**2 * (torch.trace(S0) + torch.trace(N0)) + mH @ S0 @ mH + 2 * s0 @ mH + 2 * mH @ M0 @ mK
              + mK @ N0 @ mK + 2 * t0 @ mK + const)
        return float(v0.mean()) + self.tr_post


def field_spectrum(res: int, alpha: float, scale: float = 0.25) -> torch.Tensor:
    """Power spectrum p(k) ∝ 1/(1 + |k|²)^α on the res×res grid of integer frequencies (float64,
    fft2 layout), normalised so that every pixel has variance `scale` (the mean of p, for the
    orthonormal FFT)."""
    k = torch.fft.fftfreq(res, 1.0 / res, dtype=torch.float64)
    p = (1 + k[:, None] ** 2 + k[None, :] ** 2) ** (-alpha)
    return p * (scale / p.mean())


def field_covariance(p: torch.Tensor) -> torch.Tensor:
    """The dense covariance [d, d] of the stationary (periodic) field with spectrum p: Σ_ij = c(i − j),
    c = ifft2(p) the circular autocovariance (real, because p(k) = p(−k))."""
    H, W = p.shape
    c = torch.fft.ifft2(p).real
    i, j = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    di = (i.reshape(-1, 1) - i.reshape(1, -1)) % H
    dj = (j.reshape(-1, 1) - j.reshape(1, -1)) % W
    return c[di, dj]


class FieldDenoiser(GaussianDenoiser):
    """The oracle for image-shaped data: x0 a stationary Gaussian random field on an H×W torus,
    power spectrum ∝ 1/(1 + |k|²)^α (field_spectrum). Σ is diagonal in the 2-D Fourier basis, so
    D(x; σ) = μ + F⁻¹[p/(p + σ²)·F(x − μ)] costs two FFTs; the dense Σ (for the posterior and the
    Riccati optimum, LQOptimum) is built once, so keep d = H·W ≲ 1,024 when you need those."""

    def __init__(self, res: int, alpha: float = 1.0, scale: float = 0.25, mean: float = 0.0):
        p = field_spectrum(res, alpha, scale)
        super().__init__(torch.full((res * res,), mean, dtype=torch.float64), field_covariance(p), (1, res, res))
        self.alpha = alpha
        self.register_buffer("p", p)

    def forward(self, x, sigma, class_labels=None):
        s2 = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1, 1, 1, 1) ** 2
        mu = self.mu.view(1, *x.shape[1:])
        e = torch.fft.fft2(x.double() - mu)
        return (mu + torch.fft.ifft2(e * (self.p / (self.p + s2))).real).to(x.dtype)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n clean images x0 ~ N(μ, Σ), [n, 1, H, W] float32: white noise coloured by √p."""
        w = torch.randn(n, *self.mu.view(1, self.img_resolution, -1).shape, generator=generator,
                        dtype=torch.float64)
        return (self.mu.view(1, 1, self.img_resolution, -1)
                + torch.fft.ifft2(torch.fft.fft2(w) * self.p.sqrt()).real).float()
