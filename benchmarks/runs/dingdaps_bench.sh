#!/usr/bin/env bash
# Issue 23's 1,000-image test cells for DING and DAPS (tuned settings at 5/9/19/35 NFE and their defaults; the
# public settings at 9/19 NFE and their defaults), one CPU core. Chunk-resumable: rerun the same command. The cells
# already measured are kept in benchmarks/results/partial/ (copied there as they finish, so that another machine can
# resume); copy them back first: cp -rn benchmarks/results/partial/sq1k_* runs/
# Usage: bash benchmarks/runs/dingdaps_bench.sh [CORE]
set -euo pipefail
CORE=${1:-1}
cd "$(dirname "$0")/../.."
S="--images 1000 --fd-min-images 1000 --expensive-cost 150 --expensive-images 64"
run() { env OMP_NUM_THREADS=1 taskset -c "$CORE" python benchmarks/speed_quality.py $S --resume "$@"; }
run --out runs/sq1k_dingdaps --methods ding daps --nfe 5 9 19 35
run --out runs/sq1k_public --methods ding_public daps_public --nfe 9 19
