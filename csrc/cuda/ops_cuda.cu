// CUDA backend: one grid-stride kernel per op (the op's functor from kernels.h), launched
// on the current stream. Nothing here waits for the device: the functor's validity bits
// (step.h's Bad) are checked on the device, where an out-of-range value is a device-side
// assertion (the way torch._assert_async works) naming the bits, reported by CUDA at the
// next synchronisation. The same call on the CPU raises an error naming the argument.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <limits>
#include "../ops_impl.h"

namespace aid::ops {

// 32-bit index arithmetic when it fits: the per-element divisions are much cheaper.
template <class I, class F>
__global__ void for_each_kernel(I n, I len, I rows_per_sample, I mask_div, I mask_mul, I mask_step, F f) {
  unsigned local = 0;
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += I(gridDim.x) * blockDim.x) {
    const I r = i / len, j = i - r * len;
    local |= f(int64_t(i), int64_t((r / mask_div) * mask_mul + j * mask_step), f.coefs(int64_t(r / rows_per_sample), local));
  }
  CUDA_KERNEL_ASSERT_PRINTF(local == 0u,
                            "aid_ext: an argument value is out of range, validity bits 0x%x (1: sigma, 2: sigma_next "
                            "(negative, NaN or inf), "
                            "4: mask outside [0, 1], 8: eta outside [0, 1], 16: z missing where eta > 0); "
                            "the same call on the CPU names the argument",
                            local);
}

struct CudaBackend {
  static constexpr bool kSpecialize = false;  // one kernel per op; optional arguments checked at run time
  // Returns 0: the values are checked on the device (see the file's comment), never read back.
  template <class F> static unsigned run(const kern::Layout& L, const F& f, const at::Tensor& like) {
    const int64_t n = L.rows * L.len;
    if (n == 0) return 0;
    c10::cuda::CUDAGuard guard(like.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
    if (n <= std::numeric_limits<uint32_t>::max())
      for_each_kernel<uint32_t><<<blocks, threads, 0, stream>>>(
          uint32_t(n), uint32_t(L.len), uint32_t(L.rows_per_sample), uint32_t(L.mask_div), uint32_t(L.mask_mul),
          uint32_t(L.mask_step), f);
    else
      for_each_kernel<int64_t><<<blocks, threads, 0, stream>>>(n, L.len, L.rows_per_sample, L.mask_div, L.mask_mul,
                                                               L.mask_step, f);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return 0;
  }
};

TORCH_LIBRARY_IMPL(aid_ext, CUDA, m) { register_all<CudaBackend>(m); }

}  // namespace aid::ops
