"""Regression test for issue 9: the actor–critic with the default settings closes most of the optimality gap on
the image-shaped field oracle (8×8, centre box) in a few hundred iterations; the paper's likelihood-ratio loop
does not (docs/notes/results-notebook.md has the full study)."""
from aid.guidance.actor_critic import ACConfig
from aid.guidance.networks import Critic
from benchmarks import ac_oracle

DEFAULTS = ["--actor-update", "lookahead", "--critic-head", "pixel_sum", "--critic-x0", "--lr-actor", "1e-3",
            "--lr-critic", "3e-3", "--warmup", "100", "--critic-trace", "1", "--critic-updates", "4"]


def test_the_flags_below_are_the_package_defaults():
    cfg, critic = ACConfig(), Critic(1)
    assert (cfg.actor_update, cfg.lr_actor, cfg.lr_critic, cfg.critic_warmup, cfg.critic_trace, cfg.critic_updates) == \
        ("lookahead", 1e-3, 3e-3, 100, 1.0, 4)
    assert (critic.config["head"], critic.config["sees_x0"]) == ("pixel_sum", True)


def test_default_actor_critic_closes_most_of_the_gap_on_the_8x8_field_oracle():
    args = ac_oracle.parser().parse_args(["--oracle", "field", "--res", "8", "--mask", "center_box", "--steps", "5",
                                          "--iters", "400", "--every", "200", "--eval-batch", "256", "--quiet"]
                                         + DEFAULTS)
    out = ac_oracle.run(args)
    assert out["J_star"] < 0.5 * out["J0"]  # the problem has a lot to gain
    gaps = [row["gap"] for row in out["rows"]]
    assert gaps[-1] < 0.35, gaps  # measured 0.10 (0.18 with critic_updates = 1; a gap of 1 = no better than unguided)
