// CPU backend: at::parallel_for over rows of contiguous elements (see run_rows).
#include <ATen/Parallel.h>
#include <atomic>
#include "../ops_impl.h"

namespace aid::ops {

// One row: the sample's coefficients once, then a plain loop over contiguous elements.
// Outputs are always freshly allocated, so no iteration depends on another (ivdep); two
// loops so that neither has a variable mask stride. Cloned per ISA and picked at load time
// (the default build targets baseline x86-64, i.e. 4-wide SSE).
template <class F>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
unsigned run_rows(const F& f, const kern::Layout& L, int64_t r0, int64_t r1) {
  const F fl = f;  // a local copy: stores through its pointers cannot change the pointers
  unsigned bad = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * L.len, m0 = (r / L.mask_div) * L.mask_mul;
    const auto c = fl.coefs(r / L.rows_per_sample, bad);
    if (L.mask_step) {
#pragma GCC ivdep
      for (int64_t j = 0; j < L.len; ++j) bad |= fl(base + j, m0 + j, c);
    } else {
#pragma GCC ivdep
      for (int64_t j = 0; j < L.len; ++j) bad |= fl(base + j, m0, c);
    }
  }
  return bad;
}

struct CpuBackend {
  static constexpr bool kSpecialize = true;  // branch-free loops per combination of optional arguments
  template <class F> static unsigned run(const kern::Layout& L, const F& f, const at::Tensor&) {
    std::atomic<unsigned> bad{0};
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, L.len));
    at::parallel_for(0, L.rows, grain, [&](int64_t r0, int64_t r1) {
      bad.fetch_or(run_rows(f, L, r0, r1), std::memory_order_relaxed);
    });
    return bad.load();
  }
};

TORCH_LIBRARY_IMPL(aid_ext, CPU, m) { register_all<CpuBackend>(m); }

}  // namespace aid::ops
