// Every op schema of aid_ext, in one place. Shapes: images [B, C, H, W]; mask [B, 1, H, W]
// or [B, C, H, W] with 1 = known; per-sample coefficients (sigma, eta, ...) [B] or one
// element. The math of each op is in step.h; its Python twin in aid_ext/reference.py.
#include <torch/library.h>

TORCH_LIBRARY(aid_ext, m) {
  // c_in(σ)·x: the backbone's input scaling.
  m.def("edm_scale_input(Tensor x, Tensor sigma, float sigma_data) -> Tensor");
  // D = c_skip(σ)·x + c_out(σ)·F (+ σ·u): the preconditioned denoiser from the raw output F.
  m.def("edm_denoise(Tensor x, Tensor F, Tensor sigma, float sigma_data, Tensor? u=None) -> Tensor");
  // Guided Euler step σ → σ_next with optional mask projection; returns (x_next, d).
  m.def("edm_euler_step(Tensor x, Tensor denoised, Tensor sigma, Tensor sigma_next, Tensor? u=None, "
        "Tensor? mask=None, Tensor? y=None, Tensor? z=None) -> (Tensor, Tensor)");
  // Heun correction from the predictor (x_pred, denoised_pred) at σ_next; guided, projected.
  m.def("edm_heun_correct(Tensor x, Tensor d, Tensor x_pred, Tensor denoised_pred, Tensor sigma, "
        "Tensor sigma_next, Tensor? u=None, Tensor? mask=None, Tensor? y=None, Tensor? z=None) -> Tensor");
  // DDIM(η) step with data consistency on x̂0 and an additive guidance term κ·g.
  m.def("edm_ddim_step(Tensor x, Tensor denoised, Tensor sigma, Tensor sigma_next, Tensor eta, "
        "Tensor? z=None, Tensor? mask=None, Tensor? y=None, Tensor? dc_weight=None, Tensor? g=None, "
        "Tensor? g_scale=None) -> Tensor");
  // x + √(σ_next² − σ²)·z: forward noising (RePaint's undo, EDM's churn).
  m.def("edm_renoise(Tensor x, Tensor sigma, Tensor sigma_next, Tensor z) -> Tensor");
  // m⊙(y + σ·z) + (1−m)⊙x: replace the known pixels (σ = 0 pastes them).
  m.def("mask_project(Tensor x, Tensor mask, Tensor y, Tensor sigma, Tensor? z=None) -> Tensor");
}
