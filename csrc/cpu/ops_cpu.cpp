// CPU backend: at::parallel_for over rows, a plain inner loop over each row's contiguous
// elements (so the compiler can vectorize the functor), validity bits OR-ed per chunk.
#include <ATen/Parallel.h>
#include <atomic>
#include "../ops_impl.h"

namespace aid::ops {

struct CpuBackend {
  template <class F> static unsigned run(const kern::Layout& L, const F& f, const at::Tensor&) {
    std::atomic<unsigned> bad{0};
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, L.len));
    at::parallel_for(0, L.rows, grain, [&](int64_t r0, int64_t r1) {
      unsigned local = 0;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / L.rows_per_sample, base = r * L.len, m0 = (r / L.mask_div) * L.mask_mul;
        if (L.mask_step)  // two loops so neither has a variable stride
          for (int64_t j = 0; j < L.len; ++j) local |= f(base + j, b, m0 + j);
        else
          for (int64_t j = 0; j < L.len; ++j) local |= f(base + j, b, m0);
      }
      bad.fetch_or(local, std::memory_order_relaxed);
    });
    return bad.load();
  }
};

TORCH_LIBRARY_IMPL(aid_ext, CPU, m) { register_all<CpuBackend>(m); }

}  // namespace aid::ops
