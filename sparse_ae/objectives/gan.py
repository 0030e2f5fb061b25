"""GAN losses as pure functions of discriminator logits (means over the batch).

  "nonsaturating"  D: softplus(−D(x)) + softplus(D(G(z)));  G: softplus(−D(G(z)))
  "hinge"          D: relu(1 − D(x)) + relu(1 + D(G(z)));  G: −D(G(z))
  "wgan_gp"        D: D(G(z)) − D(x) + λ·E[(‖∇D(x̂)‖₂ − 1)²], x̂ = εx + (1 − ε)G(z);  G: −D(G(z))
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

LOSSES = ("nonsaturating", "hinge", "wgan_gp")


def check_loss(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"config.objective.loss={kind!r} is not one of {LOSSES}")


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array, kind: str) -> jax.Array:
    """The discriminator's loss without the gradient penalty (added by the caller for wgan_gp)."""
    check_loss(kind)
    if kind == "nonsaturating":
        return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
    if kind == "hinge":
        return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def generator_loss(fake_logits: jax.Array, kind: str) -> jax.Array:
    check_loss(kind)
    if kind == "nonsaturating":
        return jnp.mean(jax.nn.softplus(-fake_logits))
    return -jnp.mean(fake_logits)


def gradient_penalty(discriminator: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     key: jax.Array) -> jax.Array:
    """E[(‖∇_x D(x̂)‖₂ − 1)²] at random interpolates x̂ = εx + (1 − ε)x̃, ε ~ U(0, 1) per example."""
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    mixed = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(discriminator(x)))(mixed)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))
