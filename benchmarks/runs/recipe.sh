# The issue-24 fidelity recipe's networks and batch, sourced by aid_fidelity.sh and aid_beta_fork.sh: a fork must
# build the same actor and critic as the run it starts from. CRITIC_SEES_D=1 in the environment: the critic also sees
# the backbone's D (Critic(sees_denoised=True)), in its own run folder (RUN_TAG).
RUN_TAG=${CRITIC_SEES_D:+_critd}
RECIPE=(--batch 16 --steps 5,9,19,35
        --actor '{"width": 16, "depth": 2, "levels": 2, "step_aware": true, "project": true}'
        --critic '{"width": 16, "levels": 2, "step_aware": true'"${CRITIC_SEES_D:+, \"sees_denoised\": true}"'}' --grad-clip 1.0)
