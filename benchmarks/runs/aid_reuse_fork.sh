#!/usr/bin/env bash
# A fork of aid_warm.sh's stage 2 that takes N actor steps per rollout (--actor-updates N) instead of 1: the same
# run from where it is now (its state.pt: weights, Adam states, EMA, generators, iteration, so the same data and the
# same learning-rate schedule), each rollout's backbone calls reused N times by the actor. Compare its snapshots on the
# validation split with the parent's at the same iterations. Resumable (rerun the same command).
# Usage: bash benchmarks/runs/aid_reuse_fork.sh SEED N [CORE]   e.g. bash benchmarks/runs/aid_reuse_fork.sh 0 4 1
set -euo pipefail
S=${1:?seed}; N=${2:?actor steps per rollout}; CORE=${3:-1}
cd "$(dirname "$0")/../.."
. benchmarks/runs/recipe.sh
PARENT=runs/aid_b05_dsm${RUN_TAG}_s$S; FORK=${PARENT}_a$N
if [ ! -e "$FORK/state.pt" ]; then  # state.pt is written atomically; the log is trimmed to its iteration on resume
  mkdir -p "$FORK" && cp "$PARENT/state.pt" "$PARENT/log.jsonl" "$FORK/"
fi
exec env OMP_NUM_THREADS=1 taskset -c "$CORE" python -m aid.guidance.train --seed "$S" "${RECIPE[@]}" \
  --run-dir "$FORK" --init-actor "runs/aid_dsm${RUN_TAG}_s$S/warm.safetensors" "${STAGE2[@]}" --actor-updates "$N"
