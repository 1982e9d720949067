#!/usr/bin/env bash
# The issue-24 recipe with a denoising warm start, one seed per call on one CPU core. Stage 1 trains the actor alone
# by denoising regression (aid train --objective denoising: WARM iterations of batch 64, one backbone call per image,
# no critic; ~1 s per iteration); its last snapshot is copied once to RUN/warm.safetensors. Stage 2 is
# aid_fidelity.sh's actor–critic (β = 0.5) started from it, its fresh critic fitted alone for 200 iterations first.
# ROUNDS=R > 1: stage 1 in R denoising rounds (aid_sharp.sh), stage 2 from the last one, into
# runs/aid_b05_dsm_rR_sSEED. Both stages resume: rerun the same command (STAGE1_ONLY=1: stage 1 alone).
# Usage: [WARM=4000] [ROUNDS=1] bash benchmarks/runs/aid_warm.sh SEED [CORE]   (CORE: one core, or a list, "0,1")
set -euo pipefail
S=${1:?seed}; CORE=${2:-0}; WARM=${WARM:-4000}
cd "$(dirname "$0")/../.."
. benchmarks/runs/recipe.sh
W=runs/aid_dsm${STAGE1_TAG}_s$S
if [ ! -e "$W/warm.safetensors" ]; then  # stage 2's init_actor: a file stage 1 never rewrites (its sha is recorded)
  train "${DENOISE[@]}" --run-dir "$W" --iters "$WARM" --lr-actor 1e-3 --lr-decay-iters "$WARM"
  cp "$W/actor_$(printf %06d "$WARM").safetensors" "$W/warm.safetensors"
fi
[ -z "${STAGE1_ONLY:-}" ] || exit 0  # aid_sharp.sh: the denoising stage alone
INIT=$W/warm.safetensors
if [ "${ROUNDS:-1}" -gt 1 ]; then  # stage 2 from round ROUNDS of the sharp module (its default networks)
  CRITIC_SEES_D= WIDE_TOP= ANCESTRAL= bash benchmarks/runs/aid_sharp.sh "$S" "$CORE"
  INIT=$(round_dir "$S" "$ROUNDS")/actor_004000.safetensors RUN_TAG=${RUN_TAG}_r$ROUNDS
fi
train --run-dir "runs/aid_b05_dsm${RUN_TAG}_s$S" --init-actor "$INIT" "${STAGE2[@]}"
