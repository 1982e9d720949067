// The per-element math of every aid_ext op: torch-free, __host__ __device__, the single
// source of truth shared by the CPU loops and the CUDA kernels. `T` is the accumulation
// type (float for half/bfloat16/float storage, double for double). Each function names
// its twin in aid_ext/reference.py. Symbols follow docs/method.md: σ = s, σ_next = sn,
// σ_data = sd, D the denoised estimate, u the guidance (control), m the mask (1 = known).
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define AID_HD __host__ __device__ __forceinline__
#else
#define AID_HD inline
#endif

namespace aid::step {

// EDM preconditioning (Karras et al. 2022, Table 1). reference: c_skip, c_out, c_in.
template <class T> AID_HD T c_skip(T s, T sd) { return sd * sd / (s * s + sd * sd); }
template <class T> AID_HD T c_out(T s, T sd) { return s * sd / sqrt(s * s + sd * sd); }
template <class T> AID_HD T c_in(T s, T sd) { return T(1) / sqrt(s * s + sd * sd); }

// D = c_skip·x + c_out·F + σ·u. The σ·u term injects guidance into the denoiser itself
// (DEFT's D − σ·h with u = −h; "control in both Heun slopes"). reference: edm_denoise.
template <class T> AID_HD T denoise(T x, T F, T u, T cs, T co, T s) { return cs * x + co * F + s * u; }

// The probability-flow slope d = (x − D)/σ. reference: edm_euler_step.
template <class T> AID_HD T slope(T x, T D, T s) { return (x - D) / s; }

// Guided Euler: x + (σ_next − σ)·d + Δr·u, with Δr = σ − σ_next (docs/method.md).
template <class T> AID_HD T euler(T x, T d, T u, T s, T sn) { return x + (sn - s) * d + (s - sn) * u; }

// Guided Heun (trapezoid) with the control added once after the corrected step:
// x + (σ_next − σ)·(d + d')/2 + Δr·u. reference: edm_heun_correct.
template <class T> AID_HD T heun(T x, T d, T dp, T u, T s, T sn) {
  return x + (sn - s) * (T(0.5) * (d + dp)) + (s - sn) * u;
}

// Mask projection: known pixels replaced by y noised to σ: m⊙(y + σ·z) + (1−m)⊙v.
// reference: mask_project.
template <class T> AID_HD T project(T v, T m, T y, T s, T z) { return m * (y + s * z) + (T(1) - m) * v; }

// Data consistency on the denoised estimate: x̂0 = D + w·m⊙(y − D). w = 1 is DDNM's
// null-space step; w = g/(1+ρ) is DiffPIR's proximal step for a binary mask.
template <class T> AID_HD T data_consistency(T D, T m, T y, T w) { return D + w * m * (y - D); }

// DDIM(η) in σ form: x̂0 + a·(x − x̂0) + η·σ_next·z + κ·g with a = √(1−η²)·σ_next/σ
// (ddim_coef). η = 0 and no g is the Euler step. reference: edm_ddim_step.
template <class T> AID_HD T ddim_coef(T s, T sn, T eta) { return sqrt(T(1) - eta * eta) * (sn / s); }
template <class T> AID_HD T ddim(T x, T x0, T z, T g, T a, T eta_sn, T kappa) {
  return x0 + a * (x - x0) + eta_sn * z + kappa * g;
}

// Forward noising from σ to σ_next ≥ σ: x + √(σ_next² − σ²)·z (RePaint's undo, EDM churn).
// reference: edm_renoise.
template <class T> AID_HD T renoise_coef(T s, T sn) { return sqrt(sn * sn - s * s); }

// Validity bits reported by the kernels; the host turns them into an error naming the argument.
enum Bad : unsigned {
  kSigma = 1u,          // σ must be finite and > 0 (it divides) or ≥ 0, per op
  kSigmaNext = 2u,      // σ_next out of its range (or not finite)
  kMask = 4u,           // mask outside [0, 1]
  kEta = 8u,            // η outside [0, 1]
  kNoiseMissing = 16u,  // η > 0 but no noise tensor z
};

// Branch-free (bitwise &, arithmetic select) so the checks do not stop vectorization.
// NaN fails every comparison, so it is flagged too. A noise level must also be finite: σ = inf
// gives (x − D)/σ = 0 and then (σ_next − σ)·0 = NaN (or a silent c_in = 0); v − v is 0 exactly
// when v is finite (inf − inf and NaN − NaN are NaN; the build uses no fast-math).
template <class T> AID_HD unsigned flag_unless(bool ok, unsigned bit) { return (1u - unsigned(ok)) * bit; }
template <class T> AID_HD bool is_finite(T v) { return v - v == T(0); }
template <class T> AID_HD unsigned positive_finite(T v, unsigned bit) {
  return flag_unless<T>(bool(unsigned(v > T(0)) & unsigned(is_finite(v))), bit);
}
template <class T> AID_HD unsigned nonnegative_finite(T v, unsigned bit) {
  return flag_unless<T>(bool(unsigned(v >= T(0)) & unsigned(is_finite(v))), bit);
}
template <class T> AID_HD unsigned unit_interval(T v, unsigned bit) {
  return flag_unless<T>(bool(unsigned(v >= T(0)) & unsigned(v <= T(1))), bit);
}

}  // namespace aid::step
