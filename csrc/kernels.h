// One functor per op: loads an element, calls step.h, stores the result, and returns the
// validity bits of what it read. Torch-free and __host__ __device__, so cpu/ and cuda/ run
// the very same code and differ only in how they walk the elements (Layout).
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

template <class T, class S> AID_HD T load_or(const S* p, int64_t i, T fallback) {
  return p ? static_cast<T>(p[i]) : fallback;
}

using namespace aid::step;

template <class S, class T> struct ScaleInput {  // out = c_in(σ)·x
  S* out; const S* x; PerSample<T> sigma; T sd;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t) const {
    T s = sigma[b];
    out[i] = S(c_in(s, sd) * T(x[i]));
    return nonnegative(s, kSigma);
  }
};

template <class S, class T> struct Denoise {  // D = c_skip·x + c_out·F + σ·u
  S* out; const S* x; const S* F; const S* u; PerSample<T> sigma; T sd;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t) const {
    T s = sigma[b];
    out[i] = S(denoise(T(x[i]), T(F[i]), load_or(u, i, T(0)), c_skip(s, sd), c_out(s, sd), s));
    return nonnegative(s, kSigma);
  }
};

// Optional projection shared by the two solver steps; m == nullptr means "no projection".
template <class S, class T> struct Projection {
  const S* m; const S* y; const S* z;
  AID_HD T apply(T v, int64_t i, int64_t mi, T s, unsigned& bad) const {
    if (!m) return v;
    T mv = T(m[mi]);
    bad |= unit_interval(mv, kMask);
    return project(v, mv, T(y[i]), s, load_or(z, i, T(0)));
  }
};

template <class S, class T> struct EulerStep {  // (x_next, d)
  S* x_next; S* d_out; const S* x; const S* D; const S* u; Projection<S, T> proj;
  PerSample<T> sigma, sigma_next;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t mi) const {
    T s = sigma[b], sn = sigma_next[b], xi = T(x[i]);
    unsigned bad = positive(s, kSigma) | nonnegative(sn, kSigmaNext);
    T d = slope(xi, T(D[i]), s);
    x_next[i] = S(proj.apply(euler(xi, d, load_or(u, i, T(0)), s, sn), i, mi, sn, bad));
    d_out[i] = S(d);
    return bad;
  }
};

template <class S, class T> struct HeunCorrect {  // x_next from d and the predictor's (x̂, D̂)
  S* x_next; const S* x; const S* d; const S* x_pred; const S* D_pred; const S* u;
  Projection<S, T> proj; PerSample<T> sigma, sigma_next;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t mi) const {
    T s = sigma[b], sn = sigma_next[b];
    unsigned bad = nonnegative(s, kSigma) | positive(sn, kSigmaNext);
    T dp = slope(T(x_pred[i]), T(D_pred[i]), sn);
    x_next[i] = S(proj.apply(heun(T(x[i]), T(d[i]), dp, load_or(u, i, T(0)), s, sn), i, mi, sn, bad));
    return bad;
  }
};

template <class S, class T> struct DdimStep {
  S* x_next; const S* x; const S* D; const S* z; const S* m; const S* y; const S* g;
  PerSample<T> sigma, sigma_next, eta, weight, g_scale;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t mi) const {
    T s = sigma[b], sn = sigma_next[b], e = eta[b];
    unsigned bad = positive(s, kSigma) | nonnegative(sn, kSigmaNext) | unit_interval(e, kEta);
    if (!z && e != T(0)) bad |= kNoiseMissing;
    T x0 = T(D[i]);
    if (m) {
      T mv = T(m[mi]);
      bad |= unit_interval(mv, kMask);
      x0 = data_consistency(x0, mv, T(y[i]), weight[b]);
    }
    x_next[i] = S(ddim(T(x[i]), x0, load_or(z, i, T(0)), load_or(g, i, T(0)), s, sn, e, g_scale[b]));
    return bad;
  }
};

template <class S, class T> struct Renoise {  // x + √(σ_next² − σ²)·z
  S* out; const S* x; const S* z; PerSample<T> sigma, sigma_next;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t) const {
    T s = sigma[b], sn = sigma_next[b];
    unsigned bad = nonnegative(s, kSigma) | nonnegative(sn - s, kSigmaNext);
    out[i] = S(renoise(T(x[i]), T(z[i]), s, sn));
    return bad;
  }
};

template <class S, class T> struct MaskProject {  // m⊙(y + σ·z) + (1−m)⊙x
  S* out; const S* x; Projection<S, T> proj; PerSample<T> sigma;
  AID_HD unsigned operator()(int64_t i, int64_t b, int64_t mi) const {
    T s = sigma[b];
    unsigned bad = nonnegative(s, kSigma);
    out[i] = S(proj.apply(T(x[i]), i, mi, s, bad));
    return bad;
  }
};

}  // namespace aid::kern
