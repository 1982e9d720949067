#!/usr/bin/env bash
# AID's sharp module (method aid_sharp): the denoising objective in rounds of 4,000 iterations of batch 64 on one CPU
# core. Round 1 is aid_warm.sh's stage 1 (Adam 1e-3, cosine to 0; runs/aid_dsm_sSEED); each further round starts from
# the last round's final weights with fresh Adam moments and a new cosine from 3e-4 (runs/aid_dsm_sSEED_cont,
# _cont2, ...), because the objective was still gaining at the end of each cosine (docs/training.md). A finished
# round is never rerun (the next round records its file's sha256); an unfinished one resumes: rerun the same
# command. Usage: [ROUNDS=5] [GAMMA=G] bash benchmarks/runs/aid_sharp.sh SEED [CORE]; the module is the last round's
# actor_004000.safetensors (the bundled one: seed 0, 5 rounds). GAMMA (a variant being measured) trains the last
# round with --denoise-gamma G, into the round's folder + _gG, from the standard earlier rounds.
set -euo pipefail
S=${1:?seed}; CORE=${2:-0}; ROUNDS=${ROUNDS:-5}; GAMMA=${GAMMA:-}
cd "$(dirname "$0")/../.."
[ -z "${CRITIC_SEES_D:-}${WIDE_TOP:-}${ANCESTRAL:-}" ] || { echo "aid_sharp.sh: the recipe's default networks only" >&2; exit 2; }
. benchmarks/runs/recipe.sh
W=runs/aid_dsm_s$S
[ -e "$W/warm.safetensors" ] || STAGE1_ONLY=1 bash benchmarks/runs/aid_warm.sh "$S" "$CORE"
prev=$W/warm.safetensors
for r in $(seq 2 "$ROUNDS"); do
  run=$(round_dir "$S" "$r"); variant=()
  if [ "$r" = "$ROUNDS" ] && [ -n "$GAMMA" ]; then run=${run}_g$GAMMA; variant=(--denoise-gamma "$GAMMA"); fi
  if [ ! -e "$run/actor_004000.safetensors" ]; then
    train "${DENOISE[@]}" "${variant[@]}" --run-dir "$run" --iters 4000 --lr-actor 3e-4 --lr-decay-iters 4000 \
      --init-actor "$prev"
  fi
  prev=$run/actor_004000.safetensors
done
echo "$prev"
