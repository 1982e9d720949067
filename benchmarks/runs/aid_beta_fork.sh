#!/usr/bin/env bash
# A fine-tune of a fidelity run (benchmarks/runs/aid_fidelity.sh) at another β: its actor (the EMA) and critic as
# they are now, 100 critic-only iterations to refit the critic to the new β, then the actor at half the recipe's
# rate on its own cosine. Compare its snapshots on the validation split with the parent's at the same number of
# further iterations. Resumable (rerun the same command). Usage: bash benchmarks/runs/aid_beta_fork.sh RUN BETA [CORE]
# e.g. bash benchmarks/runs/aid_beta_fork.sh aid_b05_s0 0.25 1
set -euo pipefail
RUN=${1:?run name under runs/}; BETA=${2:?beta}; CORE=${3:-1}
cd "$(dirname "$0")/../.."
FORK=runs/${RUN}_fork_b$BETA
if [ ! -e "$FORK.init/state.pt" ]; then  # the parent's state.pt and actor.safetensors are written together
  mkdir -p "$FORK.init" && cp "runs/$RUN/state.pt" "runs/$RUN/actor.safetensors" "$FORK.init/"
fi
python - "$FORK.init" <<'PY'
import sys, torch
from aid.core.checkpoint import read_metadata
d = sys.argv[1]
it_state = torch.load(f"{d}/state.pt", map_location="cpu", weights_only=False)["iter"]
it_actor = read_metadata(f"{d}/actor.safetensors")[2]["iterations"]
assert it_state == it_actor, f"{d}: state.pt is at iteration {it_state}, actor.safetensors at {it_actor}; copy again"
print(f"fork from iteration {it_state}")
PY
. benchmarks/runs/recipe.sh
S=0  # the fork's own seed (its batches), whatever the parent's
train --run-dir "$FORK" --iters 1000 --beta "$BETA" --lr-actor 1.5e-4 --lr-decay-iters 1000 --snapshot-every 100 \
  --keep-snapshots --ema-halflife 100 --ema-rampup 0.1 --init-actor "$FORK.init/actor.safetensors" --init-critic "$FORK.init/state.pt"
