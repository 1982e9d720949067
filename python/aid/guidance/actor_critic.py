"""The AID trainer: continuous-time actor–critic on the randomized (Gaussian) control
problem, exactly the loop of docs/method.md. The backbone is never differentiated.

Per iteration, for a minibatch (x0, m), y = m⊙x0:
  rollout   A_k = μ_φ(σ_k, X_k) + σ_λ·ξ_k,  X_{k+1} = Step_D(X_k) + Δr_k·A_k   (fused op, no_grad)
  values    V̂_k = NN_θ(σ_k, X_k) − λ·r_k,   V̂_K = Ψ(X_K; x0, m) − λ·T
  TD        δ_k = V̂_{k+1} − V̂_k + (β/2)‖A_k‖²·Δr_k
  critic    descend −Σ_k V̂_k·sg(δ_k)                       (semi-gradient TD)
  actor     descend  Σ_k sg(δ_k)·log π_φ(A_k | σ_k, X_k),   log π = −‖A_k − μ_φ‖²/(2σ_λ²)
with σ_λ² = 2λ/(β·d), r = σ_max − σ the sampling clock, T = σ_0 − σ_K.

Deviation, an option (actor_update="lookahead"): the guided step is additive in the action,
X_{k+1} = Step_D(X_k) + Δr_k·A, so ∂X_{k+1}/∂A = Δr_k·I without touching the backbone (for DDIM(η)
steps the gain is g_k = σ_k − √(1−η²)σ_{k+1} in place of Δr_k: the step taken with the denoiser D + σ_k·A). The actor
can then descend the one-step Bellman objective through the critic,
  Σ_k (β/2)Δr_k‖μ_φ(X_k)‖² + V̂_{k+1}(Step_D(X_k) + Δr_k·μ_φ(X_k))      (V̂_K = Ψ(·; x0)),
a deterministic policy gradient. Its minimizer is the discrete Riccati step when V̂ is exact
(u = −(β/2·I + Δr_k S)⁻¹(S·Step_D(X_k) − s)), so it keeps Δr, unlike regressing μ on −∇V̂/β.
The critic keeps the paper's semi-gradient update; its target is TD(0)'s V̂_{k+1} + c_k or, with
critic_trace = ℓ > 0, a λ-return (ℓ = 1: the Monte-Carlo cost-to-go, the default by measurement).
With critic_updates = n > 1 the critic takes n steps on each rollout: the lookahead actor follows
∇ₓV̂, and on the field oracle the critic, not the actor, is what limits learning as d grows
(docs/notes/results-notebook.md: an exact critic closes 98 % of the gap at d = 1,024 in 600 iterations).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from aid.edm.sampler import control_gain, edm_sigmas, guided_step
from aid_ext.reference import c_skip


@dataclass
class ACConfig:
    beta: float = 1.0             # weight of the control energy (β/2)‖u‖² in the running cost
    lam: float = 0.1              # auxiliary temperature λ: fixes σ_λ² = 2λ/(βd); not learned
    num_steps: int = 9            # K: rollout steps, on the deployment σ grid
    solver: str = "euler"         # rollout solver, as at deployment ("euler" or "heun")
    w_hole: float = 1.0           # Ψ = w_known·‖m⊙e‖² + w_hole·‖(1−m)⊙e‖², e = X_K − x0
    w_known: float = 1.0          # (with a projecting module the known pixels end exactly at y: no effect)
    lr_actor: float = 1e-3        # Adam, betas (0.9, 0.999); ART-RL published 1e-4 for both. These three
    lr_critic: float = 3e-3       # defaults are the best measured on the field oracle (docs/notes/results-notebook.md)
    critic_warmup: int = 100      # iterations of critic-only updates (actor frozen at its init, μ ≡ 0)
    lr_decay_iters: int = 0       # > 0: both learning rates follow a cosine from lr to 0 over so many iterations
    delta_norm: bool = False      # divide δ_k by its standard deviation over the batch, per step k
    critic_trace: float = 1.0     # ℓ of the critic's λ-return target: 0 = TD(0) (the spec), 1 = Monte Carlo
                                  # (the default: best measured on the field oracle, docs/notes/results-notebook.md)
    critic_updates: int = 4       # critic steps per rollout batch: 4 is the best measured per unit of time on the
                                  # field oracle (docs/notes/results-notebook.md); +22 % per iteration on the
                                  # bundled backbone
    actor_updates: int = 1        # actor steps per rollout batch, after the critic's; 4 measured worse on the field
                                  # oracle (the actor outruns its critic; docs/method.md)
    actor_update: str = "lookahead"  # or "likelihood_ratio", the paper's score-function step (module doc;
                                     # it diverged on the field oracle at d = 256, docs/notes/results-notebook.md)
    grad_clip: float = 0.0        # > 0: clip each network's gradient to this norm before its Adam step
    denoise_gamma: float = 0.0    # --objective denoising only: γ of its weight λ(σ)·(σ²/(σ² + σ_data²))^γ (aid.guidance
                                  # .denoise.sigma_weight): 0 is EDM's, 1 the x0 error itself (large σ dominate)
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0


# The range of every numeric ACConfig field: (test, what it must be). Every number must also be finite.
CONFIG_RANGES = {
    "beta": (lambda v: v > 0, "> 0"), "lam": (lambda v: v >= 0, ">= 0"), "num_steps": (lambda v: v >= 1, ">= 1"),
    "w_hole": (lambda v: v >= 0, ">= 0"), "w_known": (lambda v: v >= 0, ">= 0"),
    "lr_actor": (lambda v: v >= 0, ">= 0"), "lr_critic": (lambda v: v >= 0, ">= 0"),
    "critic_warmup": (lambda v: v >= 0, ">= 0"), "lr_decay_iters": (lambda v: v >= 0, ">= 0"),
    "critic_trace": (lambda v: 0 <= v <= 1, "in [0, 1]"), "critic_updates": (lambda v: v >= 1, ">= 1"),
    "actor_updates": (lambda v: v >= 1, ">= 1"),
    "grad_clip": (lambda v: v >= 0, ">= 0"), "denoise_gamma": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "sigma_min": (lambda v: v > 0, "> 0"),
    "sigma_max": (lambda v: v > 0, "> sigma_min"), "rho": (lambda v: v > 0, "> 0"),
}


def check_config(cfg: ACConfig) -> None:
    """A ValueError naming the first field of cfg out of its range (CONFIG_RANGES; NaN and inf never pass), with
    its flag of `aid train`, e.g. "ACConfig.beta (--beta) must be > 0 and finite, got nan"."""
    for name, (ok, rule) in CONFIG_RANGES.items():
        v = getattr(cfg, name)
        good = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and ok(v)
        if name == "sigma_max" and good:
            good = v > cfg.sigma_min
        if not good:
            raise ValueError(f"ACConfig.{name} (--{name.replace('_', '-')}) must be {rule} and finite, got {v!r}")
    if cfg.solver not in ("euler", "heun"):
        raise ValueError(f"ACConfig.solver must be 'euler' or 'heun', got {cfg.solver!r}")
    if cfg.actor_update not in ("likelihood_ratio", "lookahead"):
        raise ValueError(f"ACConfig.actor_update must be 'likelihood_ratio' or 'lookahead', "
                         f"got {cfg.actor_update!r}")


def sigma_lambda(cfg: ACConfig, d: int) -> float:
    """The fixed exploration standard deviation √(2λ/(βd))."""
    return (2 * cfg.lam / (cfg.beta * d)) ** 0.5


def terminal_cost(x: torch.Tensor, x0: torch.Tensor, mask: torch.Tensor, w_hole: float = 1.0,
                  w_known: float = 1.0) -> torch.Tensor:
    """Ψ per image [B]: w_known times the squared error on the known pixels plus w_hole times that in the hole."""
    e2 = (x - x0).square()
    return w_known * (mask * e2).flatten(1).sum(1) + w_hole * ((1 - mask) * e2).flatten(1).sum(1)


def psi(x, x0, mask, cfg: "ACConfig") -> torch.Tensor:
    """Ψ with the configured weights."""
    return terminal_cost(x, x0, mask, cfg.w_hole, cfg.w_known)


def projects(actor) -> bool:
    """Whether the actor is trained with the known pixels projected after every step (sample_aid's default)."""
    return bool(getattr(actor, "project", False))


def eta_of(actor) -> float:
    """The η of the DDIM(η) steps the actor steers (GuidanceModule(eta=...)); 0: the ODE's Euler steps."""
    return float(getattr(actor, "eta", 0.0))


def observed(x0, mask, y=None):
    """What the actor and critic are conditioned on: y = m⊙x0 by default; the latent pipeline passes
    the encoding of the masked image instead (aid.latent), which differs from m⊙x0 near holes."""
    return mask * x0 if y is None else y


@torch.no_grad()
def rollout(backbone, actor, x0, mask, sigmas, cfg: ACConfig, generator: torch.Generator, explore: bool = True,
            y=None):
    """Roll the controlled ODE from X_0 = σ_0·ε. Returns the per-step (σ_k, X_k, D_k, A_k) stacked as
    [K, B, ...] (detached) and X_K. With explore=False the control is the deterministic mean. A projecting
    actor (`projects`) rolls the sampler it deploys with: after each step the known pixels are set to
    m⊙x0 noised to σ_{k+1} (exactly m⊙x0 at the end). An actor with eta > 0 rolls DDIM(η) steps (fresh noise every
    step, aid.edm.sampler.guided_step)."""
    B, d = x0.shape[0], x0[0].numel()
    y = observed(x0, mask, y)
    known = dict(mask=mask, y=mask * x0) if projects(actor) else {}
    eta = eta_of(actor)
    eta_t = sigmas.new_full((B,), eta) if eta else None
    s_lam = sigma_lambda(cfg, d)
    x = sigmas[0] * torch.randn(x0.shape, generator=generator, device=x0.device)
    X, Ds, As = [], [], []
    for k in range(cfg.num_steps):
        s, sn = sigmas[k].expand(B), sigmas[k + 1].expand(B)
        D = backbone(x, s)
        a = actor(x, s, y, mask, D, sn)
        if explore:
            a = a + s_lam * torch.randn(x.shape, generator=generator, device=x.device)
        X.append(x), Ds.append(D), As.append(a)
        z = torch.randn(x.shape, generator=generator, device=x.device) if known else None
        stochastic = dict(eta=eta_t, z_eta=torch.randn(x.shape, generator=generator, device=x.device)) if eta else {}
        x = guided_step(backbone, x, D, s, sn, u=a, heun=cfg.solver == "heun" and k < cfg.num_steps - 1, z=z, **known,
                        **stochastic)
    return torch.stack(X), torch.stack(Ds), torch.stack(As), x


def _merge(t: torch.Tensor) -> torch.Tensor:
    """[K, B, ...] → [K·B, ...]: a rollout's steps as one batch."""
    return t.reshape(-1, *t.shape[2:])


def _tile(t: torch.Tensor, K: int) -> torch.Tensor:
    """[B, ...] → [K·B, ...]: per-image inputs (y, m, x0) repeated for each of K steps, step-major."""
    return t.expand(K, *t.shape).reshape(-1, *t.shape[1:])


def control_cost(actions: torch.Tensor, sigmas: torch.Tensor, beta: float) -> torch.Tensor:
    """(β/2)‖A_k‖²·Δr_k per step and image: [K, B]."""
    dr = (sigmas[:-1] - sigmas[1:]).view(-1, 1)
    return 0.5 * beta * actions.flatten(2).square().sum(2) * dr


def guided_costs(backbone, actor, x0, mask, sigmas, cfg: ACConfig, generator: torch.Generator, y=None):
    """The deterministic guided rollout's control energy Σ_k (β/2)Δr_k‖μ_k‖² and terminal cost Ψ, per image [B]."""
    _, _, As, x_final = rollout(backbone, actor, x0, mask, sigmas, cfg, generator, explore=False, y=y)
    return control_cost(As, sigmas, cfg.beta).sum(0), psi(x_final, x0, mask, cfg)


def share_optimizers(trainers: dict) -> dict:
    """Trainers of one actor and one critic on several grids (one per K) made to step one pair of optimizers, the
    first trainer's, so that the Adam state is that of one training run; returns trainers."""
    first = next(iter(trainers.values()))
    for t in trainers.values():
        t.opt_actor, t.opt_critic = first.opt_actor, first.opt_critic
    return trainers


class AIDTrainer:
    """Holds the actor μ_φ, the critic NN_θ and their optimizers; `step(x0, mask)` is one iteration."""

    METRICS = ("cost", "critic_loss", "actor_loss", "td_abs")  # what step() returns besides "iter"

    def __init__(self, backbone, actor, critic, cfg: ACConfig = ACConfig(), device="cpu"):
        check_config(cfg)
        if eta_of(actor) and cfg.solver != "euler":
            raise ValueError(f"AIDTrainer: an actor with eta > 0 rolls DDIM(η) steps, which replace Euler's; "
                             f"ACConfig.solver must be 'euler', got {cfg.solver!r}")
        self.backbone = backbone.eval().requires_grad_(False)
        self.actor, self.critic, self.cfg = actor, critic, cfg
        self.opt_actor = torch.optim.Adam(actor.parameters(), lr=cfg.lr_actor, betas=(0.9, 0.999))
        self.opt_critic = torch.optim.Adam(critic.parameters(), lr=cfg.lr_critic, betas=(0.9, 0.999))
        self.sigmas = edm_sigmas(cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho, device, torch.float32)
        self.r = self.sigmas[0] - self.sigmas  # the sampling clock r_k = σ_0 − σ_k; T = r_K
        self.critic_sees_D = getattr(critic, "sees_denoised", False)  # Critic(sees_denoised=True)
        self.iteration = 0

    def critic_out(self, X, Ds, k0: int, x0, mask, y=None):
        """NN_θ(σ_{k0+j}, X_j; y, m, x0, D_j) for states X and their denoised Ds [J, B, ...] at grid indices
        k0 … k0 + J − 1: [J, B]. Ds is read only by a critic that sees D (critic_sees_D; else it may be None)."""
        J, B = X.shape[:2]
        s, s_next = (self.sigmas[i:i + J].repeat_interleave(B) for i in (k0, k0 + 1))
        D = _merge(Ds) if self.critic_sees_D else None
        return self.critic(_merge(X), s, _tile(observed(x0, mask, y), J), _tile(mask, J), _tile(x0, J),
                           s_next, denoised=D).view(J, B)

    def mean_action(self, X, Ds, x0, mask, y=None):
        """μ_φ(σ_k, X_k; y, m, D_k, σ_{k+1}) for the rollout's states X, Ds [K, B, ...], with grad into the actor."""
        K, B = X.shape[:2]
        s, s_next = self.sigmas[:K].repeat_interleave(B), self.sigmas[1:K + 1].repeat_interleave(B)
        return self.actor(_merge(X), s, _tile(observed(x0, mask, y), K), _tile(mask, K), _merge(Ds),
                          s_next).view_as(X)

    def values(self, X, Ds, x0, mask, x_final, y=None):
        """V̂_k for k < K (with grad into the critic) and the anchored terminal V̂_K: [K + 1, B]."""
        K = X.shape[0]
        v = self.critic_out(X, Ds, 0, x0, mask, y) - self.cfg.lam * self.r[:K].view(K, 1)
        v_T = psi(x_final, x0, mask, self.cfg) - self.cfg.lam * self.r[K]
        return torch.cat([v, v_T[None]])

    def log_prob(self, X, Ds, As, x0, mask, y=None):
        """log π_φ(A_k | σ_k, X_k) up to a constant, with grad into the actor: [K, B]."""
        mu = self.mean_action(X, Ds, x0, mask, y)
        s_lam2 = sigma_lambda(self.cfg, x0[0].numel()) ** 2
        return -(As - mu).flatten(2).square().sum(2) / (2 * s_lam2)

    def lookahead_cost(self, X, Ds, As, x_final, x0, mask, y=None):
        """Per step and image [K, B]: (β/2)Δr_k‖μ_k‖² + V̂_{k+1}(X_{k+1} + g_k·(μ_k − A_k)), μ_k = μ_φ(X_k),
        g_k the step's gain on the control (Δr_k for Euler; aid.edm.sampler.control_gain for DDIM(η)),
        with V̂_K = Ψ(·; x0). The control is additive, so the step with μ_k in place of the rollout's A_k is
        read off the rollout and the backbone is not called again; a projecting actor's control moves the
        hole only (the known pixels are overwritten). A critic that sees D gets D at the moved state to first
        order, D_{k+1} + c_skip(σ_{k+1})·move: the Jacobian of the denoiser of data with variance σ_data² (c_skip
        → 1 as σ → 0, where D(x) → x). The −λ·r terms are constants and left out."""
        K = X.shape[0]
        shape = (K, 1, *([1] * (X.dim() - 2)))
        gain = control_gain(self.sigmas[:K], self.sigmas[1:K + 1], eta_of(self.actor))
        mu = self.mean_action(X, Ds, x0, mask, y)
        move = gain.view(shape) * (mu - As)
        if projects(self.actor):
            move = (1 - mask) * move
        x_next = torch.cat([X[1:], x_final[None]]) + move
        cost = control_cost(mu, self.sigmas[:K + 1], self.cfg.beta)
        future = psi(x_next[-1], x0, mask, self.cfg)[None]
        if K > 1:  # V̂_{k+1} = NN_θ(σ_{k+1}, ·) for k + 1 < K
            D_next = None
            if self.critic_sees_D:
                D_next = Ds[1:] + c_skip(self.sigmas[1:K], self.critic.sigma_data).view(K - 1, *shape[1:]) * move[:-1]
            future = torch.cat([self.critic_out(x_next[:-1], D_next, 1, x0, mask, y), future])
        return cost + future

    def actor_loss(self, X, Ds, As, x_final, x0, mask, y=None) -> torch.Tensor:
        """The lookahead actor's loss: the steps' costs summed, averaged over images. ∂/∂μ_k of step k's cost is
        Δr_k·(βμ_k + ∇V̂_{k+1}): each step is weighted by how far it moves the state, and the weights sum to
        Σ_k Δr_k = σ_0 on every grid, so the gradient's scale does not depend on K (the loss's value does; it is
        only logged). Measured: dividing each step by its Δr_k instead (every step alike) left the 8×8 field
        oracle's optimality gap at 0.67 after 400 iterations, against ≤ 0.35 with the sum
        (tests/guidance/test_ac_scaling.py), and J at +24 % of J* against +7 % (tests/guidance/test_aid_oracle.py)."""
        return self.lookahead_cost(X, Ds, As, x_final, x0, mask, y).sum(0).mean()

    def actor_step(self, delta, X, Ds, As, x_final, x0, mask, y=None) -> torch.Tensor:
        """One Adam step of the actor with the configured gradient estimator; returns its loss."""
        if self.cfg.actor_update == "lookahead":
            loss = self.actor_loss(X, Ds, As, x_final, x0, mask, y)
        else:
            loss = (delta * self.log_prob(X, Ds, As, x0, mask, y)).sum(0).mean()
        params = [p for p in self.actor.parameters() if p.requires_grad]  # all but what a fine-tune froze
        grads = torch.autograd.grad(loss, params)  # into the actor only (the lookahead also reaches the critic)
        for p, g in zip(params, grads):
            p.grad = g
        self.clip(params)
        self.opt_actor.step()
        return loss.detach()

    def lambda_returns(self, v: torch.Tensor, running: torch.Tensor) -> torch.Tensor:
        """The critic's targets G_k = c_k + (1 − ℓ)·V̂_{k+1} + ℓ·G_{k+1}, G_K = V̂_K (the anchored Ψ − λT),
        c_k the running cost, ℓ = cfg.critic_trace: [K, B]. ℓ = 0 is TD(0)'s V̂_{k+1} + c_k."""
        ell, G, out = self.cfg.critic_trace, v[-1], []
        for k in reversed(range(running.shape[0])):
            G = running[k] + (1 - ell) * v[k + 1] + ell * G
            out.insert(0, G)
        return torch.stack(out)

    def critic_step(self, X, Ds, x0, mask, x_final, running, y=None):
        """One Adam step of the critic on a rollout; returns the TD residuals δ [K, B] (before the step)
        and the critic's loss."""
        cfg = self.cfg
        v = self.values(X, Ds, x0, mask, x_final, y)
        delta = (v[1:] - v[:-1] + running).detach()  # [K, B]
        critic_delta = delta  # TD(0); with a trace, the λ-return's error
        if cfg.critic_trace > 0:
            critic_delta = (self.lambda_returns(v.detach(), running) - v[:-1]).detach()
        if cfg.delta_norm:
            delta, critic_delta = (t / (t.std(dim=1, keepdim=True) + 1e-8) for t in (delta, critic_delta))
        critic_loss = -(v[:-1] * critic_delta).sum(0).mean()
        self.opt_critic.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.clip(self.critic.parameters())
        self.opt_critic.step()
        return delta, critic_loss

    def clip(self, params) -> None:
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)

    def set_learning_rates(self):
        """Cosine decay from the configured rates to 0 over cfg.lr_decay_iters (a function of the
        iteration count alone, so resuming needs no scheduler state)."""
        if self.cfg.lr_decay_iters <= 0:
            return
        f = 0.5 * (1 + math.cos(math.pi * min(self.iteration / self.cfg.lr_decay_iters, 1.0)))
        for opt, lr in ((self.opt_actor, self.cfg.lr_actor), (self.opt_critic, self.cfg.lr_critic)):
            for group in opt.param_groups:
                group["lr"] = lr * f

    def step(self, x0: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, y=None) -> dict:
        """One actor–critic iteration on a minibatch; returns the running numbers for the log.
        y: the observation the actor sees, m⊙x0 if None (see `observed`)."""
        cfg = self.cfg
        self.set_learning_rates()
        X, Ds, As, x_final = rollout(self.backbone, self.actor, x0, mask, self.sigmas, cfg, generator, y=y)
        running = control_cost(As, self.sigmas, cfg.beta)
        for _ in range(cfg.critic_updates):
            delta, critic_loss = self.critic_step(X, Ds, x0, mask, x_final, running, y)
        actor_loss = torch.zeros(())
        if self.iteration >= cfg.critic_warmup:
            for _ in range(cfg.actor_updates):
                actor_loss = self.actor_step(delta, X, Ds, As, x_final, x0, mask, y)
        self.iteration += 1
        cost = running.sum(0) + psi(x_final, x0, mask, cfg)
        return {"iter": self.iteration, "cost": cost.mean().item(), "critic_loss": critic_loss.item(),
                "actor_loss": actor_loss.item(), "td_abs": delta.abs().mean().item()}

    @torch.no_grad()
    def evaluate(self, x0, mask, generator, y=None) -> float:
        """J(μ): the deterministic guided cost E[∫(β/2)‖μ‖²dr + Ψ], estimated on a batch."""
        energy, psi = guided_costs(self.backbone, self.actor, x0, mask, self.sigmas, self.cfg, generator, y)
        return (energy + psi).mean().item()

    def config(self) -> dict:
        return asdict(self.cfg)

    def state_dict(self) -> dict:
        """Everything an iteration changes: actor, critic, both Adam states and the iteration count."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "opt_actor": self.opt_actor.state_dict(), "opt_critic": self.opt_critic.state_dict(),
                "iteration": self.iteration}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict() (strictly), so the next step() continues the run exactly."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt_actor.load_state_dict(state["opt_actor"])
        self.opt_critic.load_state_dict(state["opt_critic"])
        self.iteration = int(state["iteration"])
