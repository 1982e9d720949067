"""What encoding costs in a latent AID training iteration (`aid train --vae`, aid.latent.LatentProblem), measured on
networks of the real shapes with random weights (nothing downloaded): the SD VAE (stabilityai/sd-vae-ft-mse's
config: 4 levels of 128/256/512/512 channels, 2 blocks each) and EDM2-XS (128 channels, multipliers 1-2-3-4, 3
blocks, attention at 16 and 8) autoguided by a second XS net, at a small pixel size on the CPU.

    OMP_NUM_THREADS=1 python benchmarks/latent_encoding_cost.py --res 64 128 --batch 2 --steps 9

Per iteration: the encodes (E(x) and E(m⊙x) of the batch, aid.latent.encode_problem), and the actor–critic step
on the latents (AIDTrainer.step: the K-step rollout, 2 network evaluations per step, and the actor and critic
updates). Prints one line per size; docs/edm2-latent.md quotes them."""
from __future__ import annotations

import argparse
import time

import torch


def sd_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2,
                         norm_num_groups=32).eval().requires_grad_(False)


def edm2_xs(res: int, seed: int):
    from aid.edm2 import Precond
    torch.manual_seed(seed)
    net = Precond(res, 4, 0, model_channels=128, channel_mult=[1, 2, 3, 4], num_blocks=3, attn_resolutions=[16, 8])
    return net.eval().requires_grad_(False).precompute()


def seconds(fn, reps: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main(argv=None):
    from aid.edm2 import Denoiser
    from aid.edm2.vae import LatentCodec
    from aid.guidance.actor_critic import ACConfig, AIDTrainer
    from aid.guidance.networks import Critic, GuidanceModule
    from aid.latent import encode_problem
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--res", type=int, nargs="+", default=[64, 128], help="pixel sizes (multiples of 64)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=9, help="K, the rollout's steps")
    p.add_argument("--reps", type=int, default=2)
    a = p.parse_args(argv)
    codec = LatentCodec(sd_vae(), batch_size=a.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {a.batch}, K = {a.steps}")
    for res in a.res:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(a.batch, 3, res, res, generator=g) * 2 - 1
        mask = torch.ones(a.batch, 1, res, res)
        mask[..., res // 4:3 * res // 4, res // 4:3 * res // 4] = 0
        D = Denoiser(edm2_xs(res // 8, 0), edm2_xs(res // 8, 1), guidance=2.0)
        trainer = AIDTrainer(D, GuidanceModule(4), Critic(4), ACConfig(num_steps=a.steps, critic_warmup=0))
        x0, m, y = encode_problem(codec, x, mask)
        t_encode = seconds(lambda: encode_problem(codec, x, mask), a.reps)
        t_clean = seconds(lambda: codec.encode(x, "mean"), a.reps)
        t_step = seconds(lambda: trainer.step(x0, m, g, y=y), a.reps)
        total = t_encode + t_step
        print(f"{res}×{res} pixels ({res // 8}×{res // 8} latents): encoding {t_encode:.3g} s (E(x) alone "
              f"{t_clean:.3g} s), actor–critic step {t_step:.3g} s; encoding = {t_encode / total:.0%} of an "
              f"iteration, caching E(x) would save {t_clean / total:.0%}")


if __name__ == "__main__":
    main()
