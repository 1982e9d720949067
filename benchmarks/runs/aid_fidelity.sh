#!/usr/bin/env bash
# The issue-24 fidelity recipe being measured: β = 0.5 from scratch (a β = 0.5 fine-tune of the β = 1 run beat it on
# every validation cell), one seed per call on one CPU core. Resumable: rerunning the same command continues from
# RUN_DIR/state.pt (saved every 250 iterations and every 10 minutes). Usage: [CRITIC_SEES_D=1] bash benchmarks/runs/aid_fidelity.sh SEED [CORE]
set -euo pipefail
S=${1:?seed}; CORE=${2:-0}
cd "$(dirname "$0")/../.."
. benchmarks/runs/recipe.sh
train --run-dir "runs/aid_b05${RUN_TAG}_s$S" "${FIDELITY[@]}"
