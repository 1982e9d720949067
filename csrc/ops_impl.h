// Host side of every op, written once and instantiated per backend: checks, layout,
// dtype dispatch, one launch of the op's functor, then the value report. A Backend has
//   template <class F> static unsigned run(const kern::Layout&, const F&, const at::Tensor& like);
// returning the OR of the functor's validity bits (the CUDA backend checks them on the device and
// returns 0, so that no op waits for the GPU: see cuda/).
#pragma once
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <torch/library.h>
#include <optional>
#include <tuple>
#include <type_traits>
#include "checks.h"
#include "kernels.h"

namespace aid::ops {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using checks::cptr;
using checks::Images;
using checks::report;
using namespace aid::step;

#define AID_DISPATCH(x, op, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, (x).scalar_type(), op, __VA_ARGS__)

// Calls f with one compile-time presence tag (kern::Has) per flag: yes/no where the backend
// specializes its loops (CPU), runtime everywhere otherwise (CUDA). Flags are "tensor given".
template <bool kSpecialize, class F> void with_presence(F&& f) { f(); }
template <bool kSpecialize, class F, class... B> void with_presence(F&& f, bool first, B... rest) {
  using kern::Has;
  auto next = [&](auto tag) { with_presence<kSpecialize>([&](auto... tags) { f(tag, tags...); }, rest...); };
  if constexpr (!kSpecialize) next(std::integral_constant<Has, Has::runtime>{});
  else if (first) next(std::integral_constant<Has, Has::yes>{});
  else next(std::integral_constant<Has, Has::no>{});
}
#define AID_HAS(tag) decltype(tag)::value

template <class T> struct Coef {  // a per-sample coefficient kept alive for the launch
  Tensor storage;
  kern::PerSample<T> view;
};
template <class T> Coef<T> coef(const Images& im, const char* name, const Tensor& t) {
  auto [s, stride] = im.per_sample(name, t, c10::CppTypeToScalarType<T>::value);
  return {s, {s.template const_data_ptr<T>(), stride}};
}
template <class T> Coef<T> coef_or(const Images& im, const char* name, const OptTensor& t, double fallback) {
  return coef<T>(im, name, t.has_value() ? *t : at::full({}, fallback, im.options().dtype(at::kDouble)));
}

template <class Backend>
Tensor edm_scale_input(const Tensor& x, const Tensor& sigma, double sigma_data) {
  static constexpr const char* op = "edm_scale_input";
  Images im(op, x);
  Tensor xc = im.image("x", x), out = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma);
    bad = Backend::run(im.layout(), kern::ScaleInput<scalar_t, T>{
        .out = out.mutable_data_ptr<scalar_t>(), .x = cptr<scalar_t>(xc), .sigma = s.view, .sd = T(sigma_data)}, x);
  });
  report(op, bad, {{kSigma, "'sigma' must be >= 0 and finite"}});
  return out;
}

template <class Backend>
Tensor edm_denoise(const Tensor& x, const Tensor& F, const Tensor& sigma, double sigma_data, const OptTensor& u) {
  static constexpr const char* op = "edm_denoise";
  Images im(op, x);
  Tensor xc = im.image("x", x), Fc = im.image("F", F), uc = im.image("u", u), out = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma);
    with_presence<Backend::kSpecialize>([&](auto U) {
      bad = Backend::run(im.layout(), kern::Denoise<scalar_t, T, AID_HAS(U)>{
          .out = out.mutable_data_ptr<scalar_t>(), .x = cptr<scalar_t>(xc), .F = cptr<scalar_t>(Fc),
          .u = {cptr<scalar_t>(uc)}, .sigma = s.view, .sd = T(sigma_data)}, x);
    }, uc.defined());
  });
  report(op, bad, {{kSigma, "'sigma' must be >= 0 and finite"}});
  return out;
}

// The mask projection's three arguments, checked together: y comes with mask, z needs mask.
struct ProjArgs {
  Tensor m, y, z;
  ProjArgs(const char* op, Images& im, const OptTensor& mask, const OptTensor& y_, const OptTensor& z_)
      : m(im.mask("mask", mask)), y(im.image("y", y_)), z(im.image("z", z_)) {
    checks::require_with(op, mask.has_value(), "mask", y_.has_value(), "y");
    TORCH_CHECK_VALUE(mask.has_value() || !z_.has_value(), "aid_ext.", op,
                      ": argument 'z' (projection noise) is only meaningful with 'mask' and 'y'");
  }
  template <class S, class T, kern::Has M, kern::Has Z> kern::Projection<S, T, M, Z> view() const {
    return {.m = {cptr<S>(m)}, .y = {cptr<S>(y)}, .z = {cptr<S>(z)}};
  }
};

constexpr const char* kMaskRange = "'mask' values must lie in [0, 1] (1 = known pixel, 0 = hole)";

template <class Backend>
std::tuple<Tensor, Tensor> edm_euler_step(const Tensor& x, const Tensor& D, const Tensor& sigma,
                                          const Tensor& sigma_next, const OptTensor& u, const OptTensor& mask,
                                          const OptTensor& y, const OptTensor& z) {
  static constexpr const char* op = "edm_euler_step";
  Images im(op, x);
  Tensor xc = im.image("x", x), Dc = im.image("denoised", D), uc = im.image("u", u);
  ProjArgs p(op, im, mask, y, z);
  Tensor x_next = im.empty(), d = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma), sn = coef<T>(im, "sigma_next", sigma_next);
    with_presence<Backend::kSpecialize>([&](auto U, auto M, auto Z) {
      bad = Backend::run(im.layout(), kern::EulerStep<scalar_t, T, AID_HAS(U), AID_HAS(M), AID_HAS(Z)>{
          .x_next = x_next.mutable_data_ptr<scalar_t>(), .d_out = d.mutable_data_ptr<scalar_t>(),
          .x = cptr<scalar_t>(xc), .D = cptr<scalar_t>(Dc), .u = {cptr<scalar_t>(uc)},
          .proj = p.view<scalar_t, T, AID_HAS(M), AID_HAS(Z)>(), .sigma = s.view, .sigma_next = sn.view}, x);
    }, uc.defined(), p.m.defined(), p.z.defined());
  });
  report(op, bad, {{kSigma, "'sigma' must be > 0 and finite (the slope divides by it)"},
                   {kSigmaNext, "'sigma_next' must be >= 0 and finite"}, {kMask, kMaskRange}});
  return {x_next, d};
}

template <class Backend>
Tensor edm_heun_correct(const Tensor& x, const Tensor& d, const Tensor& x_pred, const Tensor& D_pred,
                        const Tensor& sigma, const Tensor& sigma_next, const OptTensor& u, const OptTensor& mask,
                        const OptTensor& y, const OptTensor& z) {
  static constexpr const char* op = "edm_heun_correct";
  Images im(op, x);
  Tensor xc = im.image("x", x), dc = im.image("d", d), xpc = im.image("x_pred", x_pred),
         Dpc = im.image("denoised_pred", D_pred), uc = im.image("u", u);
  ProjArgs p(op, im, mask, y, z);
  Tensor x_next = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma), sn = coef<T>(im, "sigma_next", sigma_next);
    with_presence<Backend::kSpecialize>([&](auto U, auto M, auto Z) {
      bad = Backend::run(im.layout(), kern::HeunCorrect<scalar_t, T, AID_HAS(U), AID_HAS(M), AID_HAS(Z)>{
          .x_next = x_next.mutable_data_ptr<scalar_t>(), .x = cptr<scalar_t>(xc), .d = cptr<scalar_t>(dc),
          .x_pred = cptr<scalar_t>(xpc), .D_pred = cptr<scalar_t>(Dpc), .u = {cptr<scalar_t>(uc)},
          .proj = p.view<scalar_t, T, AID_HAS(M), AID_HAS(Z)>(), .sigma = s.view, .sigma_next = sn.view}, x);
    }, uc.defined(), p.m.defined(), p.z.defined());
  });
  report(op, bad, {{kSigma, "'sigma' must be >= 0 and finite"},
                   {kSigmaNext, "'sigma_next' must be > 0 and finite (the corrector's slope divides by it; skip "
                                "the correction on the last step)"},
                   {kMask, kMaskRange}});
  return x_next;
}

template <class Backend>
Tensor edm_ddim_step(const Tensor& x, const Tensor& D, const Tensor& sigma, const Tensor& sigma_next,
                     const Tensor& eta, const OptTensor& z, const OptTensor& mask, const OptTensor& y,
                     const OptTensor& weight, const OptTensor& g, const OptTensor& g_scale) {
  static constexpr const char* op = "edm_ddim_step";
  Images im(op, x);
  Tensor xc = im.image("x", x), Dc = im.image("denoised", D), zc = im.image("z", z), mc = im.mask("mask", mask),
         yc = im.image("y", y), gc = im.image("g", g);
  checks::require_with(op, mask.has_value(), "mask", y.has_value(), "y");
  TORCH_CHECK_VALUE(mask.has_value() || !weight.has_value(), "aid_ext.", op,
                    ": argument 'dc_weight' is only meaningful with 'mask' and 'y'");
  TORCH_CHECK_VALUE(g.has_value() || !g_scale.has_value(), "aid_ext.", op,
                    ": argument 'g_scale' is only meaningful with 'g'");
  Tensor x_next = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma), sn = coef<T>(im, "sigma_next", sigma_next), e = coef<T>(im, "eta", eta),
         w = coef_or<T>(im, "dc_weight", weight, 1.0), k = coef_or<T>(im, "g_scale", g_scale, 1.0);
    with_presence<Backend::kSpecialize>([&](auto Z, auto M, auto G) {
      bad = Backend::run(im.layout(), kern::DdimStep<scalar_t, T, AID_HAS(Z), AID_HAS(M), AID_HAS(G)>{
          .x_next = x_next.mutable_data_ptr<scalar_t>(), .x = cptr<scalar_t>(xc), .D = cptr<scalar_t>(Dc),
          .z = {cptr<scalar_t>(zc)}, .m = {cptr<scalar_t>(mc)}, .y = {cptr<scalar_t>(yc)}, .g = {cptr<scalar_t>(gc)},
          .sigma = s.view, .sigma_next = sn.view, .eta = e.view, .weight = w.view, .g_scale = k.view}, x);
    }, zc.defined(), mc.defined(), gc.defined());
  });
  report(op, bad, {{kSigma, "'sigma' must be > 0 and finite (the step divides by it)"},
                   {kSigmaNext, "'sigma_next' must be >= 0 and finite"}, {kEta, "'eta' must lie in [0, 1]"},
                   {kNoiseMissing, "'z' is required where 'eta' > 0"}, {kMask, kMaskRange}});
  return x_next;
}

template <class Backend>
Tensor edm_renoise(const Tensor& x, const Tensor& sigma, const Tensor& sigma_next, const Tensor& z) {
  static constexpr const char* op = "edm_renoise";
  Images im(op, x);
  Tensor xc = im.image("x", x), zc = im.image("z", z), out = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma), sn = coef<T>(im, "sigma_next", sigma_next);
    bad = Backend::run(im.layout(), kern::Renoise<scalar_t, T>{
        .out = out.mutable_data_ptr<scalar_t>(), .x = cptr<scalar_t>(xc), .z = cptr<scalar_t>(zc), .sigma = s.view,
        .sigma_next = sn.view}, x);
  });
  report(op, bad, {{kSigma, "'sigma' must be >= 0 and finite"},
                   {kSigmaNext, "'sigma_next' must be >= 'sigma' (renoising only adds noise) and finite"}});
  return out;
}

template <class Backend>
Tensor mask_project(const Tensor& x, const Tensor& mask, const Tensor& y, const Tensor& sigma, const OptTensor& z) {
  static constexpr const char* op = "mask_project";
  Images im(op, x);
  Tensor xc = im.image("x", x);
  ProjArgs p(op, im, mask, y, z);
  Tensor out = im.empty();
  unsigned bad = 0;
  AID_DISPATCH(x, op, [&] {
    using T = at::opmath_type<scalar_t>;
    auto s = coef<T>(im, "sigma", sigma);
    with_presence<Backend::kSpecialize>([&](auto Z) {
      bad = Backend::run(im.layout(), kern::MaskProject<scalar_t, T, AID_HAS(Z)>{
          .out = out.mutable_data_ptr<scalar_t>(), .x = cptr<scalar_t>(xc),
          .proj = p.view<scalar_t, T, kern::Has::yes, AID_HAS(Z)>(), .sigma = s.view}, x);
    }, p.z.defined());
  });
  report(op, bad, {{kSigma, "'sigma' must be >= 0 and finite"}, {kMask, kMaskRange}});
  return out;
}

// Registers this backend's implementation of every op (called inside TORCH_LIBRARY_IMPL).
template <class Backend> void register_all(torch::Library& m) {
  m.impl("edm_scale_input", &edm_scale_input<Backend>);
  m.impl("edm_denoise", &edm_denoise<Backend>);
  m.impl("edm_euler_step", &edm_euler_step<Backend>);
  m.impl("edm_heun_correct", &edm_heun_correct<Backend>);
  m.impl("edm_ddim_step", &edm_ddim_step<Backend>);
  m.impl("edm_renoise", &edm_renoise<Backend>);
  m.impl("mask_project", &mask_project<Backend>);
}

}  // namespace aid::ops
