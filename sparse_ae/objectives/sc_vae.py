"""Losses of SC-VAE and its baselines (VQ-VAE, plain autoencoder) as pure functions.

Shapes: images x, x̂ (B, H, W, C); latent grid E and its bottleneck version Ẽ (B, h, w, n);
sparse codes Z (B, h, w, K).

Scaling (the balance between the terms):
- the image term is a per-pixel mean, ``loss/recon`` = (1/(B·H·W·C)) Σ (x̂ − x)² (the MSE);
- latent terms are sums over one latent vector averaged over the B·h·w grid positions, as the
  paper's (1/hw) Σ_ij: ``loss/latent`` = β·mean_ij ‖E_ij − Ẽ_ij‖², ``loss/l1`` = β·α·mean_ij ‖Z_ij‖₁.
  β (``latent_weight``) = 1 is the paper's loss read with a per-pixel-mean image term (as VQGAN-
  style code computes it); reading its ‖G(Ẽ) − x‖² as a sum over pixels instead corresponds to
  β = 1/(H·W·C) (with the loss divided by H·W·C).
- VQ-VAE uses the same β and the same per-vector sums: ``loss/codebook`` = β·mean_ij ‖sg(E) − e‖²
  (absent with EMA codebook updates) and ``loss/commit`` = β·γ·mean_ij ‖E − sg(e)‖² (γ: commitment).
Every function returns its terms already weighted: the loss is the sum of the values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Terms = dict[str, jax.Array]


def reconstruction_loss(x: jax.Array, x_hat: jax.Array) -> jax.Array:
    """Per-pixel mean squared error (scalar)."""
    return jnp.mean(jnp.square(x_hat - x))


def vector_mean(values: jax.Array) -> jax.Array:
    """Sum over the last (vector) axis, mean over all other axes (grid positions and batch)."""
    return jnp.mean(jnp.sum(values, axis=-1))


def sc_vae_terms(x: jax.Array, x_hat: jax.Array, latent: jax.Array, synthesis: jax.Array, code: jax.Array,
                 alpha: jax.Array, latent_weight: float = 1.0) -> Terms:
    """SC-VAE: MSE + β·mean_ij(‖E_ij − D Z_ij‖² + α‖Z_ij‖₁); ``synthesis`` = D Z (B, h, w, n)."""
    return {"loss/recon": reconstruction_loss(x, x_hat),
            "loss/latent": latent_weight * vector_mean(jnp.square(latent - synthesis)),
            "loss/l1": latent_weight * alpha * vector_mean(jnp.abs(code))}


def vq_terms(x: jax.Array, x_hat: jax.Array, latent: jax.Array, quantized: jax.Array,
             latent_weight: float = 1.0, commitment: float = 0.25, ema: bool = False) -> Terms:
    """VQ-VAE: MSE + β·(mean_ij ‖sg(E) − e‖² [without EMA] + γ·mean_ij ‖E − sg(e)‖²).

    ``quantized`` e (B, h, w, n) are the selected codebook vectors (not the straight-through sum).
    """
    sg = jax.lax.stop_gradient
    terms = {"loss/recon": reconstruction_loss(x, x_hat),
             "loss/commit": latent_weight * commitment * vector_mean(jnp.square(latent - sg(quantized)))}
    if not ema:
        terms["loss/codebook"] = latent_weight * vector_mean(jnp.square(sg(latent) - quantized))
    return terms


def autoencoder_terms(x: jax.Array, x_hat: jax.Array) -> Terms:
    """Plain continuous autoencoder: the MSE only."""
    return {"loss/recon": reconstruction_loss(x, x_hat)}
