// One functor per op, torch-free and __host__ __device__, so cpu/ and cuda/ run the very
// same code and differ only in how they walk the elements (Layout). A functor has two
// levels: coefs(b, bad) computes the per-sample coefficients of sample b once (and flags
// invalid values), and operator()(i, mi, c) does element i (mask element mi) with them.
// Keeping the element level free of per-sample math lets the CPU loop vectorize.
#pragma once
#include <cstdint>
#include "step.h"

namespace aid::kern {

// How N = B·C·H·W elements are walked: `rows` rows of `len` contiguous elements. Row r
// belongs to sample r / rows_per_sample; its mask values start at (r / mask_div)·mask_mul
// and advance by mask_step (0 when one mask value covers the row: channels_last, 1 channel).
struct Layout {
  int64_t rows, len, rows_per_sample, mask_div, mask_mul, mask_step;
};

// A per-sample coefficient ([B] tensor, stride 1) or one shared by the batch (stride 0).
template <class T> struct PerSample {
  const T* p;
  int64_t stride;
  AID_HD T operator[](int64_t b) const { return p[b * stride]; }
};

// An optional image argument. Its presence is known at compile time on CPU (Has::yes/no:
// branch-free loops that vectorize) and checked per element on CUDA (Has::runtime: one
// kernel per op; the branch is uniform across a warp and costs nothing there).
enum class Has { no, yes, runtime };
template <class S, Has kHas> struct Opt {
  const S* p;
  AID_HD bool present() const {
    if constexpr (kHas == Has::runtime) return p != nullptr;
    else return kHas == Has::yes;
  }
  template <class T> AID_HD T get(int64_t i, T fallback) const { return present() ? T(p[i]) : fallback; }
};

using namespace aid::step;

template <class S, class T> struct ScaleInput {  // out = c_in(σ)·x
  S* out; const S* x; PerSample<T> sigma; T sd;
  struct C { T c_in; };
  AID_HD C coefs(int64_t b, unsigned& bad) const {
    bad |= nonnegative_finite(sigma[b], kSigma);
    return {c_in(sigma[b], sd)};
  }
  AID_HD unsigned operator()(int64_t i, int64_t, const C& c) const {
    out[i] = S(c.c_in * T(x[i]));
    return 0;
  }
};

template <class S, class T, Has U> struct Denoise {  // D = c_skip·x + c_out·F + σ·u
  S* out; const S* x; const S* F; Opt<S, U> u; PerSample<T> sigma; T sd;
  struct C { T cs, co, s; };
  AID_HD C coefs(int64_t b, unsigned& bad) const {
    T s = sigma[b];
    bad |= nonnegative_finite(s, kSigma);
    return {c_skip(s, sd), c_out(s, sd), s};
  }
  AID_HD unsigned operator()(int64_t i, int64_t, const C& c) const {
    out[i] = S(denoise(T(x[i]), T(F[i]), u.get(i, T(0)), c.cs, c.co, c.s));
    return 0;
  }
};

// Optional projection shared by the solver steps; an absent mask means "no projection".
template <class S, class T, Has M, Has Z> struct Projection {
  Opt<S, M> m; Opt<S, M> y; Opt<S, Z> z;
  AID_HD T apply(T v, int64_t i, int64_t mi, T s, unsigned& bad) const {
    if (!m.present()) return v;
    T mv = T(m.p[mi]);
    bad |= unit_interval(mv, kMask);
    return project(v, mv, T(y.p[i]), s, z.get(i, T(0)));
  }
};

template <class T> struct Sigmas { T s, sn; };

template <class S, class T, Has U, Has M, Has Z> struct EulerStep {  // (x_next, d)
  S* x_next; S* d_out; const S* x; const S* D; Opt<S, U> u; Projection<S, T, M, Z> proj;
  PerSample<T> sigma, sigma_next;
  AID_HD Sigmas<T> coefs(int64_t b, unsigned& bad) const {
    bad |= positive_finite(sigma[b], kSigma) | nonnegative_finite(sigma_next[b], kSigmaNext);
    return {sigma[b], sigma_next[b]};
  }
  AID_HD unsigned operator()(int64_t i, int64_t mi, const Sigmas<T>& c) const {
    unsigned bad = 0;
    T xi = T(x[i]), d = slope(xi, T(D[i]), c.s);
    x_next[i] = S(proj.apply(euler(xi, d, u.get(i, T(0)), c.s, c.sn), i, mi, c.sn, bad));
    d_out[i] = S(d);
    return bad;
  }
};

template <class S, class T, Has U, Has M, Has Z> struct HeunCorrect {  // x_next from d and the predictor's (x̂, D̂)
  S* x_next; const S* x; const S* d; const S* x_pred; const S* D_pred; Opt<S, U> u;
  Projection<S, T, M, Z> proj; PerSample<T> sigma, sigma_next;
  AID_HD Sigmas<T> coefs(int64_t b, unsigned& bad) const {
    bad |= nonnegative_finite(sigma[b], kSigma) | positive_finite(sigma_next[b], kSigmaNext);
    return {sigma[b], sigma_next[b]};
  }
  AID_HD unsigned operator()(int64_t i, int64_t mi, const Sigmas<T>& c) const {
    unsigned bad = 0;
    T dp = slope(T(x_pred[i]), T(D_pred[i]), c.sn);
    x_next[i] = S(proj.apply(heun(T(x[i]), T(d[i]), dp, u.get(i, T(0)), c.s, c.sn), i, mi, c.sn, bad));
    return bad;
  }
};

template <class S, class T, Has Z, Has M, Has G> struct DdimStep {
  S* x_next; const S* x; const S* D; Opt<S, Z> z; Opt<S, M> m; Opt<S, M> y; Opt<S, G> g;
  PerSample<T> sigma, sigma_next, eta, weight, g_scale;
  struct C { T a, eta_sn, w, kappa; };
  AID_HD C coefs(int64_t b, unsigned& bad) const {
    T s = sigma[b], sn = sigma_next[b], e = eta[b];
    bad |= positive_finite(s, kSigma) | nonnegative_finite(sn, kSigmaNext) | unit_interval(e, kEta);
    if (!z.present() && e != T(0)) bad |= kNoiseMissing;
    return {ddim_coef(s, sn, e), e * sn, weight[b], g_scale[b]};
  }
  AID_HD unsigned operator()(int64_t i, int64_t mi, const C& c) const {
    unsigned bad = 0;
    T x0 = T(D[i]);
    if (m.present()) {
      T mv = T(m.p[mi]);
      bad |= unit_interval(mv, kMask);
      x0 = data_consistency(x0, mv, T(y.p[i]), c.w);
    }
    x_next[i] = S(ddim(T(x[i]), x0, z.get(i, T(0)), g.get(i, T(0)), c.a, c.eta_sn, c.kappa));
    return bad;
  }
};

template <class S, class T> struct Renoise {  // x + √(σ_next² − σ²)·z
  S* out; const S* x; const S* z; PerSample<T> sigma, sigma_next;
  struct C { T c; };
  AID_HD C coefs(int64_t b, unsigned& bad) const {
    T s = sigma[b], sn = sigma_next[b];
    bad |= nonnegative_finite(s, kSigma) | nonnegative_finite(sn - s, kSigmaNext);
    return {renoise_coef(s, sn)};
  }
  AID_HD unsigned operator()(int64_t i, int64_t, const C& c) const {
    out[i] = S(T(x[i]) + c.c * T(z[i]));
    return 0;
  }
};

template <class S, class T, Has Z> struct MaskProject {  // m⊙(y + σ·z) + (1−m)⊙x
  S* out; const S* x; Projection<S, T, Has::yes, Z> proj; PerSample<T> sigma;
  struct C { T s; };
  AID_HD C coefs(int64_t b, unsigned& bad) const {
    bad |= nonnegative_finite(sigma[b], kSigma);
    return {sigma[b]};
  }
  AID_HD unsigned operator()(int64_t i, int64_t mi, const C& c) const {
    unsigned bad = 0;
    out[i] = S(proj.apply(T(x[i]), i, mi, c.s, bad));
    return bad;
  }
};

}  // namespace aid::kern
