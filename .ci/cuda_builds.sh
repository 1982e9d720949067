#!/usr/bin/env bash
# The install on a machine whose torch is a CUDA build (what `pip install torch` brings on an ordinary
# Linux box), with and without nvcc; no GPU needed. Run by .ci/run after the README's test command.
#   1. nvcc on PATH, the README's install command (AID_EXT_CUDA=AUTO, default archs): CUDA kernels with
#      SASS for sm_80/sm_90 and PTX for compute_90 (checked with cuobjdump), then the op tests on the CPU;
#   2. nvcc hidden (a mount namespace hides the CUDA toolkit): a CPU-only build whose build_info() says
#      why, then the same tests.
# The CUDA torch here is the 2.14.1 (cu130) wheel on this machine's disk; the environment is kept in
# ~/.cache/aid-ext/venv-cuda between runs, the build folders under build/.
set -euo pipefail
cd "$(dirname "$0")/.."
V="${AID_CUDA_VENV:-$HOME/.cache/aid-ext/venv-cuda}"  # outside the clone: kept between CI runs
[ -x "$V/bin/python" ] || python3 -m venv "$V"
"$V/bin/pip" install -q torch==2.14.1 cmake ninja scikit-build-core pybind11 numpy pillow matplotlib safetensors tqdm \
  pytest nvidia-cuda-cuobjdump
TESTS="tests/ops"

build_and_test() {  # $1: a name for the build folder; the rest: a command prefix that runs the build
  local name=$1; shift
  local t0=$SECONDS
  "$@" "$V/bin/pip" install -q --no-build-isolation -C build-dir="build/$name" -e .
  echo "cuda_builds: $name built in $((SECONDS - t0)) s"
  "$V/bin/python" -c "import aid_ext; print('cuda_builds: $name:', aid_ext.build_info())"
  "$V/bin/python" -m pytest -q -p no:cacheprovider $TESTS
}

which nvcc
build_and_test cuda-nvcc
"$V/bin/python" -c "import aid_ext, sys; sys.exit(not aid_ext.build_info()['with_cuda'])"

# Without the toolkit: tmpfs over nvcc's folders, in a private mount namespace (root; nothing outside changes).
NVCC_BIN=$(dirname "$(which nvcc)")
CUDA_DIR=$(readlink -f "$(dirname "$(readlink -f "$(which nvcc)")")/..")
if [ "$(head -c2 "$(which nvcc)")" = "#!" ]; then  # a wrapper script (as here): hide what it runs too
  CUDA_DIR=$(readlink -f "$(dirname "$(grep -o '/[^ ]*nvcc' "$(which nvcc)" | head -1)")/..")
fi
hide_nvcc() {  # run "$@" with nvcc's folders hidden
  unshare --mount -- bash -c 'mount -t tmpfs none "$1" && mount -t tmpfs none "$2" && shift 2 && \
    ! command -v nvcc && exec "$@"' _ "$NVCC_BIN" "$CUDA_DIR" "$@"
}
build_and_test cuda-no-nvcc hide_nvcc
"$V/bin/python" -c "import aid_ext, sys; i = aid_ext.build_info(); sys.exit(i['with_cuda'] or 'nvcc' not in i['cuda_note'])"
