"""Sparsity regularisers on hidden representations, selected per layer by a spec string.

A generator's last layer is a convolutional dictionary applied to its last hidden
representation (CSC); a stack of such layers is multi-layer CSC. Each hidden layer may carry
one of these (``spec`` strings in configs, one per layer):

  "none"        identity
  "l1:<w>"      identity, plus the penalty w · mean|h| (mean over all entries) for the loss
  "l0:<k>"      keep the k largest-|h| entries of each example (all non-batch axes), zero the rest
  "l0inf:<k>"   keep the k largest-|h| channels of each needle h[b, i, j, :] (last axis)
  "l0:<p>%", "l0inf:<p>%"   the same with k = max(1, round(p/100 · entries)), resolved per shape

"ML" (multi-layer) is simply several layers with a non-"none" spec. The projections pass
gradients to the kept entries unchanged and give zero to the dropped ones (the Jacobian of a
fixed selection, i.e. straight-through on the support). Every layer reports
:class:`LayerStats`; :func:`total_penalty` and :func:`log_metrics` turn a dict of them into
the loss term and the logged scalars. :func:`spatial_map` is a layer's sparsity per pixel.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae.sparse_coding import prox

KINDS = ("none", "l1", "l0", "l0inf")


@dataclasses.dataclass(frozen=True)
class SparsitySpec:
    """One layer's regulariser: ``kind`` in KINDS; l0 / l0inf keep ``k`` entries or the share
    ``fraction`` in (0, 1] of them (exactly one of the two); l1 has ``weight`` λ ≥ 0."""

    kind: str = "none"
    k: int = 0
    weight: float = 0.0
    fraction: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"sparsity kind {self.kind!r} is not one of {KINDS}")
        if self.kind in ("l0", "l0inf"):
            if self.fraction:
                if not 0 < self.fraction <= 1 or self.k:
                    raise ValueError(f"sparsity {self.kind}: fraction={self.fraction!r} must be in (0, 1] "
                                     "and k unset (give either k or a percentage)")
            elif isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
                raise ValueError(f"sparsity {self.kind}: k={self.k!r} must be an integer >= 1 "
                                 "(the number of entries kept)")
        elif self.k or self.fraction:
            raise ValueError(f"sparsity {self.kind}: k / fraction are only meaningful for l0 / l0inf")
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"sparsity {self.kind}: λ (weight)={self.weight!r} must be a finite number >= 0")
        if self.weight and self.kind != "l1":
            raise ValueError(f"sparsity {self.kind}: a weight is only meaningful for l1")

    def __str__(self) -> str:
        if self.kind == "l1":
            return f"l1:{self.weight:g}"
        if self.fraction:
            return f"{self.kind}:{100 * self.fraction:g}%"
        return f"{self.kind}:{self.k}" if self.k else self.kind

    def resolve(self, size: int) -> int:
        """Entries kept out of ``size`` (per example for l0, per needle for l0inf)."""
        return max(1, round(self.fraction * size)) if self.fraction else self.k


def parse_spec(spec: str | SparsitySpec, field: str = "sparsity") -> SparsitySpec:
    """``"none" | "l1:<λ>" | "l0:<k>" | "l0inf:<k>" | "l0:<p>%" | "l0inf:<p>%"`` -> :class:`SparsitySpec`;
    errors name ``field``."""
    if isinstance(spec, SparsitySpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{field}={spec!r} must be a string like 'none', 'l1:0.01', 'l0:64' or 'l0inf:8'")
    kind, sep, value = spec.strip().partition(":")
    try:
        if kind == "none" and not sep:
            return SparsitySpec()
        if kind == "l1" and sep:
            return SparsitySpec("l1", weight=float(value))
        if kind in ("l0", "l0inf") and sep:
            value = value.strip()
            if value.endswith("%"):
                fraction = float(value[:-1]) / 100
                if not 0 < fraction <= 1:
                    raise ValueError(f"sparsity {kind}: fraction={fraction!r} must be in (0, 1] (a percentage "
                                     "in (0, 100])")
                return SparsitySpec(kind, fraction=fraction)
            if not value.lstrip("-").isdigit():
                raise ValueError(f"sparsity {kind}: k={value!r} must be an integer >= 1")
            return SparsitySpec(kind, k=int(value))
    except ValueError as err:
        raise ValueError(f"{field}={spec!r}: {err}") from None
    raise ValueError(f"{field}={spec!r} is not 'none', 'l1:<λ>', 'l0:<k>' or 'l0inf:<k>' (e.g. 'l0inf:8')")


def parse_specs(specs: Sequence[str], num_layers: int, field: str) -> tuple[SparsitySpec, ...]:
    """One spec per hidden layer; a clear error when the count is wrong."""
    if isinstance(specs, str) or not isinstance(specs, Sequence):
        raise TypeError(f"{field}={specs!r} must be a sequence of {num_layers} spec strings")
    if len(specs) != num_layers:
        raise ValueError(f"{field} has {len(specs)} entries {tuple(specs)}; the model has {num_layers} "
                         "regularisable layer(s): give one spec per layer ('none' for no regulariser)")
    return tuple(parse_spec(s, f"{field}[{i}]") for i, s in enumerate(specs))


def kept_entries(spec: SparsitySpec, shape: Sequence[int], name: str = "layer") -> int:
    """k for a layer of ``shape`` (batch first); ValueError when k exceeds the entries offered."""
    if spec.kind == "l0":
        size, what = math.prod(shape[1:]), "entries per example"
    elif spec.kind == "l0inf":
        size, what = shape[-1], "channels per needle"
    else:
        return 0
    k = spec.resolve(size)
    if k > size:
        raise ValueError(f"sparsity at layer {name!r}: {spec.kind} k={k} is larger than the {size} {what} "
                         f"of its representation {tuple(shape[1:])}; choose k <= {size}")
    return k


def project(h: jax.Array, spec: SparsitySpec, name: str = "layer") -> jax.Array:
    """The layer's projection (identity for none / l1); ``h``: (B, ..., C)."""
    k = kept_entries(spec, h.shape, name)
    if spec.kind == "l0":
        return prox.top_k(h, k)
    if spec.kind == "l0inf":
        return prox.needle_top_k(h, k)
    return h


class LayerStats(NamedTuple):
    """Scalars of one layer: ``l1`` = mean|h| before projection; ``penalty`` = weight · l1;
    ``nonzero`` = fraction of non-zeros after it; ``needle_max`` = the largest fraction of
    non-zero channels of any needle (position) in the batch."""

    l1: jax.Array
    penalty: jax.Array
    nonzero: jax.Array
    needle_max: jax.Array


def layer_stats(h: jax.Array, out: jax.Array, spec: SparsitySpec) -> LayerStats:
    l1 = jnp.mean(jnp.abs(h))
    needles = jnp.mean((out != 0).astype(jnp.float32), axis=-1)
    return LayerStats(l1=l1, penalty=spec.weight * l1, nonzero=jnp.mean(needles), needle_max=jnp.max(needles))


MAP_KINDS = ("nonzero", "mean_abs")


def spatial_map(h: jax.Array, kind: str = "nonzero") -> jax.Array:
    """Per pixel of a layer's map ``h`` (B, H, W, C): the fraction of non-zero channels ("nonzero")
    or the mean |h| over channels ("mean_abs"), averaged over the batch -> (H, W)."""
    if h.ndim != 4:
        raise ValueError(f"spatial_map needs a (batch, height, width, channels) map, got shape {tuple(h.shape)}")
    if kind not in MAP_KINDS:
        raise ValueError(f"spatial_map kind={kind!r} is not one of {MAP_KINDS}")
    values = (h != 0).astype(jnp.float32) if kind == "nonzero" else jnp.abs(h)
    return jnp.mean(values, axis=(0, 3))


class Sparsify(nnx.Module):
    """A sparsity layer: ``(h) -> (projected h, LayerStats)``; no parameters."""

    def __init__(self, spec: str | SparsitySpec, name: str = "layer"):
        self.spec = parse_spec(spec, f"sparsity of layer {name!r}")
        self.name = name

    def __call__(self, h: jax.Array) -> tuple[jax.Array, LayerStats]:
        out = project(h, self.spec, self.name)
        return out, layer_stats(h, out, self.spec)


def total_penalty(stats: Mapping[str, LayerStats]) -> jax.Array:
    """Σ over layers of the L1 penalties (0 when no layer is l1)."""
    return sum((s.penalty for s in stats.values()), jnp.zeros((), jnp.float32))


def log_metrics(stats: Mapping[str, LayerStats], prefix: str = "sparsity") -> dict[str, jax.Array]:
    """``{prefix/<layer>: fraction non-zero, prefix/<layer>_needle_max: ..., prefix/<layer>_l1: ...}``."""
    metrics = {}
    for name, s in stats.items():
        metrics.update({f"{prefix}/{name}": s.nonzero, f"{prefix}/{name}_needle_max": s.needle_max,
                        f"{prefix}/{name}_l1": s.l1})
    return metrics
