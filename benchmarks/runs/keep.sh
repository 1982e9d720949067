#!/usr/bin/env bash
# Keep the long runs' progress in git, so that another machine can resume them (runs/ is git-ignored and lost with
# the machine): each training run's state.pt, actor.safetensors (DEFT's: h.safetensors), warm.safetensors
# (aid_warm.sh), log.jsonl and newest actor snapshot, and each benchmark folder's measured cells (results.json,
# examples.safetensors; the chunks of a cell in progress are not kept), are copied to benchmarks/results/partial/ and
# committed. Resume on a new machine: mkdir -p runs && cp -rn benchmarks/results/partial/* runs/
# then rerun each run's script (benchmarks/runs/*.sh). Usage: bash benchmarks/runs/keep.sh RUN...   (e.g. aid_b05_s0 sq1k_dingdaps)
set -euo pipefail
cd "$(dirname "$0")/../.."
for r in "$@"; do
  src=runs/$r dst=benchmarks/results/partial/$r
  mkdir -p "$dst"
  for f in state.pt actor.safetensors h.safetensors warm.safetensors log.jsonl results.json examples.safetensors; do
    if [ -e "$src/$f" ]; then cp "$src/$f" "$dst/"; fi
  done
  newest=$(ls "$src"/actor_*.safetensors 2>/dev/null | tail -1 || true)
  if [ -n "$newest" ]; then rm -f "$dst"/actor_*.safetensors; cp "$newest" "$dst/"; fi
done
git add benchmarks/results/partial
git commit -qm "partial: the long runs' progress ($*)" && git log --oneline -1 || echo "nothing new to keep"
