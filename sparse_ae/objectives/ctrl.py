"""CTRL closed-loop transcription game (Dai et al., 2022; U-CTRL sample-wise form).

With Z = f(X), X̂ = g(Z), Ẑ = f(X̂) (rows on the unit sphere), the encoder f maximises and the
decoder g minimises the game value T:

- ``"multiclass"`` (labels, Π one-hot):  T = ΔR(Z, Π) + ΔR(Ẑ, Π) + Σ_j ΔR(Z_j, Ẑ_j).
- ``"binary"`` (no labels; real vs reconstructed are the two groups): T = ΔR(Z, Ẑ) =
  R(Z ∪ Ẑ) − ½(R(Z) + R(Ẑ)), i.e. the multiclass value with every sample in one class (the
  ΔR(Z, Π) terms are then identically 0).
- ``"samplewise"`` (no labels; every sample its own class, as U-CTRL):
  T = [R(Z) − mean_i R(z_i)] + [R(Ẑ) − mean_i R(ẑ_i)] + Σ_i ΔR(z_i, ẑ_i), with the per-sample
  terms in closed form (2 × 2 Grams) instead of n classes of d × d Grams.

Any form may add ``samplewise_weight`` · Σ_i ΔR(z_i, ẑ_i) (per-sample reconstruction
consistency in feature space, a game term like the others). The augmentation-consistency term
Σ_i ΔR(z_i, z'_i) between features of two views of a sample is returned separately: only the
encoder minimises it.

Every sum over samples is a sum of per-sample or per-shard statistics, so with ``axis_name``
(inside ``shard_map`` over the data axis) the value is that of the global batch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from sparse_ae.objectives import rate_reduction as rr

FORMS = ("multiclass", "binary", "samplewise")


def _psum(x: jax.Array, axis_name: str | None) -> jax.Array:
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def _grouped_terms(z, z_hat, membership, eps_sq, method, axis_name) -> dict[str, jax.Array]:
    """ΔR(Z, Π), ΔR(Ẑ, Π), Σ_j ΔR(Z_j, Ẑ_j) with one batched logdet over 3k + 2 Grams."""
    d = z.shape[1]
    sz = rr.group_stats(z, membership, axis_name)
    sh = rr.group_stats(z_hat, membership, axis_name)
    tz, th = rr.total_stats(sz), rr.total_stats(sh)
    k = sz.counts.shape[0]
    grams = jnp.concatenate([tz.grams, th.grams, sz.grams, sh.grams, sz.grams + sh.grams])
    counts = jnp.concatenate([tz.counts, th.counts, sz.counts, sh.counts, sz.counts + sh.counts])
    rates = rr.rate_from_gram(grams, counts, eps_sq, d, method)
    r_z, r_h = rates[0], rates[1]
    r_zj, r_hj, r_uj = rates[2:2 + k], rates[2 + k:2 + 2 * k], rates[2 + 2 * k:]
    return {
        "rr_z": r_z - rr.compressed_rate_from_rates(r_zj, sz.counts),
        "rr_zhat": r_h - rr.compressed_rate_from_rates(r_hj, sh.counts),
        "rr_pair": jnp.sum(r_uj - 0.5 * (r_zj + r_hj)),
        "rate_z": r_z,
    }


def _single_rates(z: jax.Array, eps_sq: float) -> jax.Array:
    """R(z_i) = ½ log(1 + d/ε² ‖z_i‖²) per row -> (n,)."""
    return 0.5 * jnp.log1p(z.shape[1] / eps_sq * jnp.sum(z * z, axis=1))


def _samplewise_terms(z, z_hat, eps_sq, method, axis_name) -> dict[str, jax.Array]:
    d = z.shape[1]
    ones = jnp.ones((z.shape[0], 1), z.dtype)
    sz, sh = rr.group_stats(z, ones, axis_name), rr.group_stats(z_hat, ones, axis_name)
    rates = rr.rate_from_gram(jnp.concatenate([sz.grams, sh.grams]),
                              jnp.concatenate([sz.counts, sh.counts]), eps_sq, d, method)
    mean_single = lambda x, s: _psum(jnp.sum(_single_rates(x, eps_sq)), axis_name) / jnp.maximum(s.counts[0], 1.0)
    return {
        "rr_z": rates[0] - mean_single(z, sz),
        "rr_zhat": rates[1] - mean_single(z_hat, sh),
        "rr_pair": _psum(jnp.sum(rr.samplewise_rate_reduction(z, z_hat, eps_sq)), axis_name),
        "rate_z": rates[0],
    }


def ctrl_terms(z: jax.Array, z_hat: jax.Array, membership: jax.Array | None, *, form: str,
               eps_sq: float, samplewise_weight: float = 0.0, method: str = rr.DEFAULT_LOGDET,
               axis_name: str | None = None) -> dict[str, jax.Array]:
    """Game terms and value ``"T"`` for features ``z``, ``z_hat`` (n, d).

    ``membership`` (n, k) one-hot class weights for ``"multiclass"`` (ignored otherwise).
    Returns scalars ``T``, ``rr_z`` (ΔR(Z)), ``rr_zhat`` (ΔR(Ẑ)), ``rr_pair`` (Σ_j ΔR(Z_j, Ẑ_j)),
    ``rate_z`` (R(Z)) and, when ``samplewise_weight`` > 0, ``rr_sample`` (Σ_i ΔR(z_i, ẑ_i)).
    """
    if form not in FORMS:
        raise ValueError(f"CTRL form={form!r} is not one of {FORMS}")
    if z.shape != z_hat.shape:
        raise ValueError(f"z {z.shape} and z_hat {z_hat.shape} must have the same shape")
    if form == "samplewise":
        terms = _samplewise_terms(z, z_hat, eps_sq, method, axis_name)
    else:
        if form == "binary":
            membership = jnp.ones((z.shape[0], 1), z.dtype)
        elif membership is None:
            raise ValueError("the multiclass CTRL form needs class membership (labels)")
        terms = _grouped_terms(z, z_hat, membership, eps_sq, method, axis_name)
    value = terms["rr_z"] + terms["rr_zhat"] + terms["rr_pair"]
    if samplewise_weight:
        if form == "samplewise":
            terms["rr_sample"] = terms["rr_pair"]
        else:
            terms["rr_sample"] = _psum(jnp.sum(rr.samplewise_rate_reduction(z, z_hat, eps_sq)), axis_name)
        value = value + samplewise_weight * terms["rr_sample"]
    return {"T": value, **terms}


def augmentation_consistency(z: jax.Array, z_aug: jax.Array, eps_sq: float,
                             axis_name: str | None = None) -> jax.Array:
    """Σ_i ΔR(z_i, z'_i) between two views' features (n, d); the encoder minimises it."""
    return _psum(jnp.sum(rr.samplewise_rate_reduction(z, z_aug, eps_sq)), axis_name)


def over_global_batch(fn: Callable[..., dict[str, jax.Array]], axis: str = "data") -> Callable:
    """Runs ``fn(*arrays, axis_name=...)`` on the global batch.

    Under a context mesh (``jax.set_mesh``) whose ``axis`` has more than one device, ``fn`` runs
    per shard in ``jax.shard_map`` (leading axis of every array split over ``axis``) and its
    statistics are ``psum``-ed; otherwise it is called with ``axis_name=None``. Outputs are
    replicated scalars.
    """

    def wrapped(*arrays):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty or axis not in mesh.axis_names or mesh.shape[axis] == 1:
            return fn(*arrays, axis_name=None)
        per_shard = lambda *xs: fn(*xs, axis_name=axis)
        return jax.shard_map(per_shard, mesh=mesh, in_specs=tuple(P(axis) for _ in arrays),
                             out_specs=P(), axis_names={axis})(*arrays)

    return wrapped
