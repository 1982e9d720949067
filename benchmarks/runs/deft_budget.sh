#!/usr/bin/env bash
# DEFT's h-transform (the baseline) trained with the budget of AID's sharp module, so that aid_sharp against deft
# compares the networks and the σ grid at equal training rather than the budgets: 12,000 iterations of batch 64
# (768,000 noisy images; the bundled deft_fmnist32.safetensors had 2,000), otherwise the bundled DEFT's command
# (python/aid/assets/README.md). Resumes: rerun the same command. Usage: bash benchmarks/runs/deft_budget.sh [CORE]
set -euo pipefail
CORE=${1:-0}
cd "$(dirname "$0")/../.."
env OMP_NUM_THREADS=1 taskset -c "$CORE" python -m aid.baselines.deft --run-dir runs/deft_12k --iters 12000 --batch 64
