"""Learned unrolled solvers for the LASSO over a dense dictionary: LISTA, LISTA-CP, ALISTA.

Shapes: dictionary D (n, K); signals y (..., n); codes z (..., K); T = number of layers.
Every network starts from z_0 = 0 and applies T layers; parameters are plain dicts of arrays
(optax-ready). An untied leaf carries a leading layer axis T (scanned over), a tied leaf is
shared by all layers; ``tied`` at init picks which. With the initial values below, LISTA and
LISTA-CP compute exactly T ISTA steps with step 1/L (L = ‖D‖₂²) and threshold λ/L.

- LISTA (Gregor & LeCun 2010): z_{t+1} = h_θ(W_e y + S z_t),
  init W_e = Dᵀ/L (K, n), S = I − DᵀD/L (K, K), θ = λ/L.
- LISTA-CP (Chen et al. 2018, coupled weights): z_{t+1} = h_θ(z_t + W_tᵀ(y − D z_t)),
  init W = D/L (n, K), θ = λ/L.
- ALISTA (Liu et al. 2019): z_{t+1} = h_θt(z_t − γ_t Wᵀ(D z_t − y)) with the analytic W of
  :func:`alista_weight` fixed; only γ_t (init 1) and θ_t (init λ/L) are learned.

h_θ is the soft threshold with a scalar θ per layer. ``support=(p, p_max)`` turns on
support selection (Chen et al. 2018): at layer t (1-based) the min(p·t, p_max) fraction of
entries with the largest magnitude (and above θ) bypass the shrinkage; e.g. (0.012, 0.13).
``return_all=True`` returns the stack (T, ..., K) of z_1 … z_T instead of z_T.
"""

from __future__ import annotations

from typing import Callable, Collection

import jax
import jax.numpy as jnp
import numpy as np

from sparse_ae.sparse_coding import operators, prox, solvers

Params = dict[str, jax.Array]
Support = tuple[float, float] | None


# ----------------------------------------------------------------------------------------------
# Checks and shared pieces
# ----------------------------------------------------------------------------------------------

def _check_dictionary(D: jax.Array, lam: float | None = None, num_layers: int | None = None) -> None:
    if jnp.ndim(D) != 2:
        raise ValueError(f"D must be a dense dictionary of shape (n, K), got shape {jnp.shape(D)}")
    if lam is not None:
        operators.check_positive(lam, "lam")
    if num_layers is not None:
        operators.check_count(num_layers, "num_layers")


def _check_signal(y: jax.Array, n: int, name: str = "y (signal)") -> None:
    if jnp.ndim(y) < 1 or jnp.shape(y)[-1] != n:
        raise ValueError(f"{name} must have shape (..., n) with n = {n} (the dictionary's rows), "
                         f"got shape {jnp.shape(y)}")
    operators.check_finite(y, name)


def lipschitz_constant(D: jax.Array) -> jax.Array:
    """L = ‖D‖₂² (largest eigenvalue of DᵀD), the Lipschitz constant of ∇ ½‖Dz − y‖²."""
    return jnp.linalg.norm(D, ord=2) ** 2


def _split_layers(params: Params, base_ndim: dict[str, int], num_layers: int | None) -> tuple[Params, Params, int]:
    """(per_layer, shared, T): a leaf with one more axis than ``base_ndim`` is per layer (untied).

    T comes from the per-layer leaves (which must agree, and match ``num_layers`` if given);
    with every leaf shared, ``num_layers`` is required.
    """
    if set(params) != set(base_ndim):
        raise ValueError(f"params must have the keys {sorted(base_ndim)}, got {sorted(params)}")
    per_layer, shared = {}, {}
    for key, value in params.items():
        ndim = jnp.ndim(value)
        if ndim not in (base_ndim[key], base_ndim[key] + 1):
            raise ValueError(f"params[{key!r}] must have {base_ndim[key]} dimensions (tied) or "
                             f"{base_ndim[key] + 1} (untied, leading layer axis), got shape {jnp.shape(value)}")
        (per_layer if ndim > base_ndim[key] else shared)[key] = value
    depths = {key: jnp.shape(value)[0] for key, value in per_layer.items()}
    if num_layers is not None:
        operators.check_count(num_layers, "num_layers")
        depths["num_layers"] = num_layers
    if not depths:
        raise ValueError("num_layers is required when all parameters are tied (shared by all layers)")
    if len(set(depths.values())) > 1:
        raise ValueError(f"inconsistent numbers of layers: {depths}")
    return per_layer, shared, next(iter(depths.values()))


def _init_layers(params: Params, num_layers: int, tied: bool | Collection[str]) -> Params:
    """Stack the leaves that are not tied along a new leading layer axis."""
    shared = set(params) if tied is True else set() if tied is False else set(tied)
    if not shared <= set(params):
        raise ValueError(f"tied must be a bool or a subset of {sorted(params)}, got {tied!r}")
    return {k: v if k in shared else jnp.broadcast_to(v, (num_layers, *v.shape)) for k, v in params.items()}


def support_fractions(support: Support, num_layers: int) -> np.ndarray:
    """Per-layer support-selection fractions min(p·t, p_max), t = 1..T ((T,) float64)."""
    p, p_max = support
    if not (0 <= p <= 1 and 0 <= p_max <= 1):
        raise ValueError(f"support=(p, p_max) must be fractions in [0, 1], got {support}")
    return np.minimum(p * np.arange(1, num_layers + 1), p_max)


def _kth_largest(a: jax.Array, count: jax.Array) -> jax.Array:
    """Largest τ with #{a ≥ τ} ≥ count along the last axis (a ≥ 0, 1 ≤ count ≤ K), shape (..., 1).

    Bisection on the value down to the dtype's resolution: on XLA:CPU ~15× faster than
    ``lax.top_k`` for K = 500 (it only counts), and exact unless two entries tie to within
    one ulp of the maximum.
    """
    hi = jnp.max(a, axis=-1, keepdims=True) * 2 + jnp.finfo(a.dtype).tiny  # #{a ≥ hi} = 0
    lo = jnp.zeros_like(hi)  # #{a ≥ 0} = K ≥ count

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        enough = jnp.sum(a >= mid, axis=-1, keepdims=True) >= count
        return jnp.where(enough, mid, lo), jnp.where(enough, hi, mid)

    lo, _ = jax.lax.fori_loop(0, jnp.finfo(a.dtype).nmant + 3, body, (lo, hi), unroll=True)
    return lo


def shrink_support(v: jax.Array, theta: jax.Array, count: jax.Array) -> jax.Array:
    """Soft threshold except on the ``count`` largest-|v| entries of each code (last axis) that
    also exceed θ: those pass unchanged (support selection). ``count`` may be traced; 0 gives
    the plain soft threshold."""
    magnitude = jax.lax.stop_gradient(jnp.abs(v))
    cutoff = jnp.where(count > 0, _kth_largest(magnitude, jnp.maximum(count, 1)), jnp.inf)
    keep = (magnitude >= cutoff) & (magnitude > theta)
    return jnp.where(keep, v, prox.soft_threshold(v, theta))


def _unroll(layer: Callable, z0: jax.Array, per_layer: Params, shared: Params, num_layers: int,
            support: Support, return_all: bool, unroll: int | bool | None) -> jax.Array:
    """Scan ``layer(z, layer_params, shrink) -> z`` over T layers from z0; ``layer_params`` merges
    the shared leaves with this layer's slice of the per-layer ones."""
    if support is None:
        counts = None
        shrink_fn = lambda count: prox.soft_threshold  # noqa: E731
    else:
        counts = np.round(support_fractions(support, num_layers) * z0.shape[-1]).astype(np.int32)
        shrink_fn = lambda count: lambda v, theta: shrink_support(v, theta, count)  # noqa: E731

    def body(z, xs):
        layer_params, count = xs
        shrink = shrink_fn(count)
        z = layer(z, {**shared, **layer_params}, shrink)
        return z, z if return_all else None

    z, history = jax.lax.scan(body, z0, (per_layer, counts), length=num_layers,
                              unroll=solvers.resolve_unroll(unroll, num_layers))
    return history if return_all else z


def _zeros_code(y: jax.Array, num_atoms: int, dtype) -> jax.Array:
    return jnp.zeros((*jnp.shape(y)[:-1], num_atoms), dtype)


# ----------------------------------------------------------------------------------------------
# LISTA
# ----------------------------------------------------------------------------------------------

LISTA_NDIM = {"W_e": 2, "S": 2, "theta": 0}
LISTA_CP_NDIM = {"W": 2, "theta": 0}
ALISTA_NDIM = {"gamma": 0, "theta": 0}


def _lipschitz(D: jax.Array, lipschitz: float | None) -> jax.Array:
    return lipschitz_constant(D) if lipschitz is None else jnp.asarray(lipschitz, D.dtype)


def lista_init(D: jax.Array, lam: float, num_layers: int, tied: bool | Collection[str] = False,
               lipschitz: float | None = None) -> Params:
    """LISTA parameters equal to ISTA: {"W_e": (K, n), "S": (K, K), "theta": ()}.

    tied: True shares every leaf across layers, False stacks every leaf along a leading layer
    axis T, or a collection of keys to share (e.g. ("W_e", "S") with per-layer thresholds).
    lipschitz: L, defaults to ‖D‖₂².
    """
    _check_dictionary(D, lam, num_layers)
    L = _lipschitz(D, lipschitz)
    params = {"W_e": D.T / L, "S": jnp.eye(D.shape[1], dtype=D.dtype) - D.T @ D / L,
              "theta": jnp.asarray(lam, D.dtype) / L}
    return _init_layers(params, num_layers, tied)


def lista_apply(params: Params, y: jax.Array, num_layers: int | None = None, support: Support = None,
                return_all: bool = False, unroll: int | bool | None = None) -> jax.Array:
    """LISTA codes (..., K) of signals y (..., n) (see the module docstring).

    num_layers: required when every leaf is tied, else taken from the per-layer leaves.
    """
    per_layer, shared, depth = _split_layers(params, LISTA_NDIM, num_layers)
    _check_signal(y, params["W_e"].shape[-1])
    shared_bias = y @ shared["W_e"].T if "W_e" in shared else None  # W_e y once for all layers

    def layer(z, p, shrink):
        bias = y @ p["W_e"].T if shared_bias is None else shared_bias
        return shrink(bias + z @ p["S"].T, p["theta"])

    z0 = _zeros_code(y, params["S"].shape[-1], params["S"].dtype)
    return _unroll(layer, z0, per_layer, shared, depth, support, return_all, unroll)


def lista_from_coupled(W: jax.Array, theta: jax.Array, D: jax.Array) -> Params:
    """LISTA parameters computing the same layers as the coupled form h_θ(z + Wᵀ(y − D z)):
    W_e = Wᵀ, S = I − WᵀD. W (n, K) or per layer (T, n, K); theta () or (T,).

    LISTA-CP is ``lista_from_coupled(p["W"], p["theta"], D)`` and ALISTA
    ``lista_from_coupled(p["gamma"][:, None, None] * W, p["theta"], D)``: a warm start for LISTA.
    """
    _check_dictionary(D)
    if jnp.shape(W)[-2:] != D.shape:
        raise ValueError(f"W must have the dictionary's shape {D.shape} (optionally per layer), got {jnp.shape(W)}")
    W_e = jnp.swapaxes(W, -1, -2)
    return {"W_e": W_e, "S": jnp.eye(D.shape[1], dtype=W_e.dtype) - W_e @ D, "theta": jnp.asarray(theta)}


# ----------------------------------------------------------------------------------------------
# LISTA-CP
# ----------------------------------------------------------------------------------------------

def lista_cp_init(D: jax.Array, lam: float, num_layers: int, tied: bool | Collection[str] = False,
                  lipschitz: float | None = None) -> Params:
    """LISTA-CP parameters equal to ISTA: {"W": (n, K), "theta": ()} (``tied`` as in lista_init)."""
    _check_dictionary(D, lam, num_layers)
    L = _lipschitz(D, lipschitz)
    return _init_layers({"W": D / L, "theta": jnp.asarray(lam, D.dtype) / L}, num_layers, tied)


def lista_cp_apply(params: Params, y: jax.Array, D: jax.Array, num_layers: int | None = None,
                   support: Support = None, return_all: bool = False,
                   unroll: int | bool | None = None) -> jax.Array:
    """LISTA-CP codes (..., K) of y (..., n) over the (fixed) dictionary D (n, K)."""
    _check_dictionary(D)
    per_layer, shared, depth = _split_layers(params, LISTA_CP_NDIM, num_layers)
    if params["W"].shape[-2:] != D.shape:
        raise ValueError(f"params['W'] must have the dictionary's shape {D.shape}, got {params['W'].shape}")
    _check_signal(y, D.shape[0])

    def layer(z, p, shrink):
        return shrink(z + (y - z @ D.T) @ p["W"], p["theta"])

    z0 = _zeros_code(y, D.shape[1], params["W"].dtype)
    return _unroll(layer, z0, per_layer, shared, depth, support, return_all, unroll)


# ----------------------------------------------------------------------------------------------
# ALISTA
# ----------------------------------------------------------------------------------------------

def alista_weight(D: jax.Array) -> jax.Array:
    """Analytic weight W (n, K): argmin ‖WᵀD‖_F subject to diag(WᵀD) = 1.

    The problem separates over columns: w_i minimises w_iᵀ(DDᵀ)w_i subject to w_iᵀd_i = 1, so
    w_i = (DDᵀ)⁺d_i / (d_iᵀ(DDᵀ)⁺d_i) (pseudo-inverse: also valid when n > K).
    """
    _check_dictionary(D)
    direction = jnp.linalg.pinv(D @ D.T, hermitian=True) @ D  # (n, K)
    return direction / jnp.sum(direction * D, axis=0, keepdims=True)


def alista_init(D: jax.Array, lam: float, num_layers: int, tied: bool | Collection[str] = False,
                lipschitz: float | None = None) -> Params:
    """ALISTA parameters {"gamma": 1, "theta": λ/L} (Liu et al.'s initial values), per layer (T,)
    unless tied (``tied`` as in lista_init)."""
    _check_dictionary(D, lam, num_layers)
    L = _lipschitz(D, lipschitz)
    return _init_layers({"gamma": jnp.ones((), D.dtype), "theta": jnp.asarray(lam, D.dtype) / L},
                        num_layers, tied)


def alista_apply(params: Params, y: jax.Array, D: jax.Array, W: jax.Array, num_layers: int | None = None,
                 support: Support = None, return_all: bool = False,
                 unroll: int | bool | None = None) -> jax.Array:
    """ALISTA codes (..., K) of y (..., n) with dictionary D and analytic weight W (both (n, K))."""
    _check_dictionary(D)
    if jnp.shape(W) != D.shape:
        raise ValueError(f"W must have the dictionary's shape {D.shape}, got {jnp.shape(W)}")
    per_layer, shared, depth = _split_layers(params, ALISTA_NDIM, num_layers)
    _check_signal(y, D.shape[0])

    def layer(z, p, shrink):
        return shrink(z - p["gamma"] * ((z @ D.T - y) @ W), p["theta"])

    z0 = _zeros_code(y, D.shape[1], W.dtype)
    return _unroll(layer, z0, per_layer, shared, depth, support, return_all, unroll)
