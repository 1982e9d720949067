"""What encoding costs in a latent AID training iteration (`aid train --vae`, aid.latent.LatentProblem), measured on
networks of the real shapes with random weights (nothing downloaded): the SD VAE (stabilityai/sd-vae-ft-mse's
config: 4 levels of 128/256/512/512 channels, 2 blocks each) and EDM2-XS (128 channels, multipliers 1-2-3-4, 3
blocks, attention at 16 and 8) autoguided by a second XS net, at a small pixel size on the CPU.

    OMP_NUM_THREADS=1 python benchmarks/latent_encoding_cost.py --res 64 128 --batch 2 --steps 9

Per iteration: the encodes of the batch, E(m⊙x) (done every iteration) and E(x) (what LatentProblem's cache
saves), and the actor–critic step on the latents (AIDTrainer.step: the K-step rollout, 2 network evaluations per
step, and the actor and critic updates). Prints one line per size, then the FLOPs at ImageNet-512's real size
(counted on the meta device, nothing computed): docs/edm2-latent.md quotes them."""
from __future__ import annotations

import argparse
import time

import torch


def sd_vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2,
                         norm_num_groups=32).eval().requires_grad_(False)


def edm2_xs(res: int, seed: int, model_channels: int = 128):
    """EDM2-XS (model_channels 192: S) on res×res latents, random weights."""
    from aid.edm2 import Precond
    torch.manual_seed(seed)
    net = Precond(res, 4, 0, model_channels=model_channels, channel_mult=[1, 2, 3, 4], num_blocks=3,
                  attn_resolutions=[16, 8])
    return net.eval().requires_grad_(False).precompute()


def flops_at_512() -> str:
    """FLOPs (2 per multiply–add) of one SD-VAE encode of a 512×512 image and of one XS and S evaluation on its
    64×64 latents."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(fn) -> float:
        with FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops() / 1e9
    vae = sd_vae().to("meta")
    xs, s = (edm2_xs(64, 0, width).to("meta").precompute() for width in (128, 192))
    z, sigma = torch.zeros(1, 4, 64, 64, device="meta"), torch.ones(1, device="meta")
    enc = count(lambda: vae.encode(torch.zeros(1, 3, 512, 512, device="meta")).latent_dist.mean)
    f_xs, f_s = count(lambda: xs(z, sigma)), count(lambda: s(z, sigma))
    return (f"at 512×512, per image: SD-VAE encode {enc:.0f} GFLOP, EDM2-XS evaluation {f_xs:.0f}, EDM2-S {f_s:.0f}; "
            f"an encode costs {enc / (f_s + f_xs):.1f} autoguided (S + XS) evaluations")


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
    from aid.latent import encode_known
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
        x0, (y, m) = codec.encode(x, "mean"), encode_known(codec, x, mask)
        t_known = seconds(lambda: encode_known(codec, x, mask), a.reps)
        t_clean = seconds(lambda: codec.encode(x, "mean"), a.reps)
        t_step = seconds(lambda: trainer.step(x0, m, g, y=y), a.reps)
        fly = t_known + t_clean + t_step
        print(f"{res}×{res} pixels ({res // 8}×{res // 8} latents): E(m⊙x) {t_known:.3g} s, E(x) {t_clean:.3g} s, "
              f"actor–critic step {t_step:.3g} s; encoding is {(t_known + t_clean) / fly:.0%} of an iteration "
              f"encoded on the fly, {t_known / (t_known + t_step):.0%} with E(x) cached (an iteration "
              f"{fly / (t_known + t_step):.2f}× faster)")
    print(flops_at_512())


if __name__ == "__main__":
    main()
