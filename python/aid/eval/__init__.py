"""Evaluation: image metrics (PSNR, SSIM, FD/KD in feature spaces, LPIPS), the feature networks, the
linear-Gaussian oracle with its exact posterior and optimal control, and the plots."""
