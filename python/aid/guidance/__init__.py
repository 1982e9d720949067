"""AID's guidance module μ_φ: its networks (the actor that ships, the critic that trains it), the
continuous-time actor–critic, the resumable trainer, and the sampler that deploys it."""
from aid.guidance.actor_critic import ACConfig, AIDTrainer
from aid.guidance.networks import Critic, GuidanceModule, parameter_ratio
from aid.guidance.sample import DEFAULT_GUIDANCE, load_actor, sample_aid

# The trainer (aid.guidance.train.train_aid) is not imported here: `python -m aid.guidance.train` runs it as a
# script, which must not find it imported already.
__all__ = ["ACConfig", "AIDTrainer", "Critic", "GuidanceModule", "parameter_ratio", "DEFAULT_GUIDANCE", "load_actor",
           "sample_aid"]
