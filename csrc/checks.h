// Argument checks shared by every op and both backends. Errors name the op and the
// argument: TypeError for dtypes, ValueError for shapes, devices and values.
#pragma once
#include <ATen/ATen.h>
#include <initializer_list>
#include <string>
#include <utility>
#include "kernels.h"

namespace aid::checks {

// channels_last inputs stay channels_last; every other strided input is made contiguous.
inline at::MemoryFormat layout_of(const at::Tensor& x) {
  bool cl = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  return cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

inline std::string shape_str(at::IntArrayRef s) { return c10::str(s); }

// The image x = [B, C, H, W] that fixes the batch, shape, dtype, device and layout of one
// op call; every other argument is checked and laid out against it.
class Images {
 public:
  Images(const char* op, const at::Tensor& x) : op_(op), x_(x) {
    TORCH_CHECK_TYPE(x.defined(), "aid_ext.", op, ": argument 'x' is required");
    TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "aid_ext.", op,
                     ": argument 'x' must be float64, float32, float16 or bfloat16; got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.dim() == 4, "aid_ext.", op, ": argument 'x' must be [B, C, H, W]; got shape ",
                      shape_str(x.sizes()));
    fmt_ = layout_of(x);
  }

  int64_t batch() const { return x_.size(0); }
  at::MemoryFormat format() const { return fmt_; }
  at::TensorOptions options() const { return x_.options(); }
  at::Tensor empty() const { return at::empty(x_.sizes(), x_.options(), fmt_); }

  // An image argument: same shape, dtype and device as x, laid out like x.
  at::Tensor image(const char* name, const at::Tensor& t) const {
    same_kind(name, t);
    TORCH_CHECK_VALUE(t.sizes() == x_.sizes(), "aid_ext.", op_, ": argument '", name, "' must have shape ",
                      shape_str(x_.sizes()), " like x; got ", shape_str(t.sizes()));
    return t.contiguous(fmt_);
  }
  at::Tensor image(const char* name, const std::optional<at::Tensor>& t) const {
    return t.has_value() ? image(name, *t) : at::Tensor();
  }

  // The mask: [B, 1, H, W] (broadcast over channels) or [B, C, H, W], values in [0, 1].
  at::Tensor mask(const char* name, const std::optional<at::Tensor>& t) {
    if (!t.has_value()) return at::Tensor();
    same_kind(name, *t);
    auto s = x_.sizes();
    bool ok = t->dim() == 4 && t->size(0) == s[0] && (t->size(1) == 1 || t->size(1) == s[1]) &&
              t->size(2) == s[2] && t->size(3) == s[3];
    TORCH_CHECK_VALUE(ok, "aid_ext.", op_, ": argument '", name, "' must have shape [B, 1, H, W] or [B, C, H, W] with ",
                      "[B, C, H, W] = ", shape_str(s), "; got ", shape_str(t->sizes()));
    mask_channels_ = t->size(1);
    return mask_channels_ == 1 ? t->contiguous() : t->contiguous(fmt_);
  }

  // Walk order for this call; depends on the layout and on the mask's channel count.
  kern::Layout layout() const {
    int64_t B = x_.size(0), C = x_.size(1), HW = x_.size(2) * x_.size(3);
    if (fmt_ == at::MemoryFormat::ChannelsLast) {
      bool per_pixel = mask_channels_ == 1;
      return {B * HW, C, HW, 1, per_pixel ? 1 : C, per_pixel ? 0 : 1};
    }
    bool per_pixel = mask_channels_ == 1;
    return {B * C, HW, C, per_pixel ? C : 1, HW, 1};
  }

  // A per-sample coefficient: shape [], [1], [B] or [B, 1, 1, 1], any float dtype, on
  // x's device. Returned in the accumulation dtype so kernels read it directly.
  std::pair<at::Tensor, int64_t> per_sample(const char* name, const at::Tensor& t, at::ScalarType acc) const {
    TORCH_CHECK_TYPE(t.defined(), "aid_ext.", op_, ": argument '", name, "' is required");
    TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), "aid_ext.", op_, ": argument '", name,
                     "' must be a floating-point tensor; got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.device() == x_.device(), "aid_ext.", op_, ": argument '", name, "' is on ", t.device(),
                      " but x is on ", x_.device());
    int64_t B = batch();
    bool scalar = t.dim() == 0 || (t.dim() == 1 && t.size(0) == 1);
    bool per_b = (t.dim() == 1 && t.size(0) == B) ||
                 (t.dim() == 4 && t.size(0) == B && t.size(1) == 1 && t.size(2) == 1 && t.size(3) == 1);
    TORCH_CHECK_VALUE(scalar || per_b, "aid_ext.", op_, ": argument '", name, "' must have shape [B] = [", B,
                      "] (or [B, 1, 1, 1], or be a one-element tensor shared by the batch); got ",
                      shape_str(t.sizes()));
    return {t.to(acc).contiguous().view(-1), (scalar && B != 1) ? 0 : 1};
  }

 private:
  void same_kind(const char* name, const at::Tensor& t) const {
    TORCH_CHECK_TYPE(t.scalar_type() == x_.scalar_type(), "aid_ext.", op_, ": argument '", name, "' must have dtype ",
                     x_.scalar_type(), " like x; got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.device() == x_.device(), "aid_ext.", op_, ": argument '", name, "' is on ", t.device(),
                      " but x is on ", x_.device());
  }

  const char* op_;
  const at::Tensor& x_;
  at::MemoryFormat fmt_;
  int64_t mask_channels_ = 1;
};

// `requires` is only set when `when` is: e.g. y must come with mask.
inline void require_with(const char* op, bool when, const char* when_name, bool present, const char* name) {
  TORCH_CHECK_VALUE(!when || present, "aid_ext.", op, ": argument '", name, "' is required when '", when_name,
                    "' is given");
  TORCH_CHECK_VALUE(when || !present, "aid_ext.", op, ": argument '", name, "' is only meaningful with '", when_name,
                    "'; pass both or neither");
}

// Turn the kernels' validity bits into one error naming each offending argument.
inline void report(const char* op, unsigned bad, std::initializer_list<std::pair<unsigned, const char*>> meaning) {
  if (!bad) return;
  std::string msg;
  for (auto& [bit, text] : meaning)
    if (bad & bit) msg += std::string(msg.empty() ? "" : "; ") + text;
  TORCH_CHECK_VALUE(false, "aid_ext.", op, ": ", msg);
}

template <class S> const S* cptr(const at::Tensor& t) { return t.defined() ? t.const_data_ptr<S>() : nullptr; }

}  // namespace aid::checks
