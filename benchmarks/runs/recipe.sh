# The issue-24 fidelity recipe's networks and batch, sourced by aid_fidelity.sh and aid_beta_fork.sh: a fork must
# build the same actor and critic as the run it starts from. Variants being measured, each set in the environment and
# each giving the run folder its own tag (RUN_TAG): CRITIC_SEES_D=1, a critic that also sees the backbone's D
# (Critic(sees_denoised=True)); WIDE_TOP=1, an actor with more of the budget at full resolution (width 24, one block,
# then levels of 12 channels: FiLMUNet's level_width); ANCESTRAL=1, an actor–critic on ancestral steps (DDIM(η = 1)
# from the guided denoiser: "eta": 1.0), which shares the denoising stage (STAGE1_TAG) of the Euler recipe.
STAGE1_TAG=${CRITIC_SEES_D:+_critd}${WIDE_TOP:+_wide}
RUN_TAG=$STAGE1_TAG${ANCESTRAL:+_anc}
ACTOR_BODY='"width": 16, "depth": 2, "levels": 2'
[ -z "${WIDE_TOP:-}" ] || ACTOR_BODY='"width": 24, "depth": 1, "levels": 2, "level_width": 12'
RECIPE=(--batch 16 --steps 5,9,19,35
        --actor "{$ACTOR_BODY, \"step_aware\": true, \"project\": true${ANCESTRAL:+, \"eta\": 1.0}}"
        --critic '{"width": 16, "levels": 2, "step_aware": true'"${CRITIC_SEES_D:+, \"sees_denoised\": true}"'}' --grad-clip 1.0)
EMA=(--ema-halflife 200 --ema-rampup 0.1 --keep-snapshots)
# The actor–critic's schedule: aid_fidelity.sh from scratch, and stage 2 of aid_warm.sh from the denoising warm start
FIDELITY=(--iters 5000 --beta 0.5 --lr-actor 3e-4 --lr-decay-iters 5000 --snapshot-every 250 "${EMA[@]}")
STAGE2=(--critic-warmup 200 "${FIDELITY[@]}")
# One training call of seed S on core CORE (both set by the sourcing script), with the recipe's networks and batch.
# CORE may list several cores ("0,1": a run alone on the machine), one thread each.
train() {
  env OMP_NUM_THREADS="$(tr ',' '\n' <<< "$CORE" | wc -l)" taskset -c "$CORE" \
    python -m aid.guidance.train --seed "$S" "${RECIPE[@]}" "$@"
}
# The denoising objective's settings shared by aid_warm.sh's stage 1 and aid_sharp.sh's later rounds
DENOISE=(--objective denoising --batch 64 --snapshot-every 500 "${EMA[@]}")
# The run folder of round R >= 2 of seed S's denoising rounds (aid_sharp.sh): runs/aid_dsm_sS_cont, _cont2, ...
round_dir() { echo "runs/aid_dsm_s$1_cont$([ "$2" -gt 2 ] && echo $(($2 - 1)) || true)"; }
