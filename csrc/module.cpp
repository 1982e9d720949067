// The pybind11 module aid_ext._C. It includes no torch header (it compiles in seconds)
// and only reports how the package was built; aid_ext/__init__.py compares that with
// the running torch before it loads the ops library, so a mismatch is a readable error.
#include <pybind11/pybind11.h>

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "aid_ext build information; the ops live in the library named by ops_library()";
  m.def("build_info", [] {
    py::dict d;
    d["torch_version"] = AID_TORCH_VERSION;
    d["with_cuda"] = bool(AID_WITH_CUDA);
    d["cuda_version"] = AID_CUDA_VERSION;
    d["cuda_archs"] = AID_CUDA_ARCHS;
    d["cuda_note"] = AID_CUDA_NOTE;
    d["compiler"] = AID_COMPILER;
    d["cxx11_abi"] = bool(AID_CXX11_ABI);
    return d;
  }, "How this build was configured: torch it was built against, CUDA on/off (and why off, where CUDA was possible), versions, archs, compiler.");
  m.def("ops_library", [] { return AID_OPS_LIBRARY; }, "File name of the shared library that registers the ops.");
}
