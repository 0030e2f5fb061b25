"""ISTA / FISTA for the LASSO ½‖Az − y‖² + Σ λ|z| as ``lax.scan`` over iterations.

FISTA is Beck & Teboulle's: x_k = prox_{step·g}(y_k − step·∇f(y_k)),
t_{k+1} = (1 + √(1 + 4 t_k²)) / 2 (t_1 = 1), y_{k+1} = x_k + (t_k − 1)/t_{k+1} · (x_k − x_{k−1}),
started at x_0 = y_1 = z0 — the iteration of SPORCO's ``pgm`` solvers with a fixed step 1/L.
Objectives are summed over everything (all examples), as in SPORCO.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sparse_ae.sparse_coding import prox
from sparse_ae.sparse_coding.operators import LinearOperator, check_count, check_finite, check_positive

# XLA:CPU runs a rolled scan over convolutions far slower in the backward pass than the same
# steps unrolled (benchmarks/unroll.py), so CPU unrolls fully up to this many steps; longer
# (forward-only) solves keep chunks of this size so compilation stays short.
CPU_MAX_UNROLL = 32


def resolve_unroll(unroll: int | bool | None, num_iters: int) -> int | bool:
    """``lax.scan`` unroll for ``num_iters`` steps. None -> backend default: CPU full unroll
    (chunks of ``CPU_MAX_UNROLL`` beyond that), GPU/TPU 1 (rolled). Else an int >= 1 or a bool."""
    if unroll is None:
        if jax.default_backend() == "cpu":
            return max(1, min(num_iters, CPU_MAX_UNROLL))
        return 1
    if not isinstance(unroll, (bool, int, np.integer)) or (not isinstance(unroll, bool) and unroll < 1):
        raise ValueError(f"unroll must be None, a bool or an integer >= 1, got {unroll!r}")
    return unroll


def fista_momentum(num_iters: int) -> np.ndarray:
    """(num_iters,) float64 coefficients β_k = (t_k − 1)/t_{k+1} of Nesterov/FISTA, t_1 = 1."""
    betas = np.empty(num_iters)
    t = 1.0
    for k in range(num_iters):
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        betas[k] = (t - 1.0) / t_next
        t = t_next
    return betas


def proximal_gradient(grad_fn: Callable[[jax.Array], jax.Array],
                      prox_fn: Callable[[jax.Array, jax.Array], jax.Array],
                      z0: jax.Array, step, num_iters: int, accelerated: bool = True,
                      unroll: int | bool | None = None,
                      history_fn: Callable[[jax.Array], jax.Array] | None = None):
    """Generic (F)ISTA: ``num_iters`` steps z <- prox_fn(v − step·grad_fn(v), step).

    ``v`` is the previous iterate (ISTA) or the momentum point (FISTA, ``accelerated``). ``step``
    is a scalar or broadcasts against z0 (e.g. per example). Returns the final z, or
    (z, history) with history (num_iters, ...) = ``history_fn`` of each iterate when given.
    """
    check_count(num_iters, "num_iters")
    check_positive(step, "step")
    step = jnp.asarray(step, z0.dtype)

    def update(v):
        return prox_fn(v - step * grad_fn(v), step)

    def record(z):
        return None if history_fn is None else history_fn(z)

    unroll = resolve_unroll(unroll, num_iters)
    if accelerated:
        def body(carry, beta):
            z, v = carry
            z_new = update(v)
            return (z_new, z_new + beta * (z_new - z)), record(z_new)

        (z, _), history = jax.lax.scan(body, (z0, z0), jnp.asarray(fista_momentum(num_iters), z0.dtype),
                                       unroll=unroll)
    else:
        def body(z, _):
            z_new = update(z)
            return z_new, record(z_new)

        z, history = jax.lax.scan(body, z0, None, length=num_iters, unroll=unroll)
    return z if history_fn is None else (z, history)


def lasso_objective(op: LinearOperator, y: jax.Array, z: jax.Array, lam) -> jax.Array:
    """½‖op.forward(z) − y‖² + Σ lam·|z|, summed over everything; lam scalar or per-channel."""
    residual = op.forward(z) - y
    return 0.5 * jnp.sum(jnp.square(residual)) + jnp.sum(lam * jnp.abs(z))


def _lasso(op: LinearOperator, y: jax.Array, lam, step, num_iters: int, z0, nonneg: bool,
           unroll, return_history: bool, accelerated: bool):
    check_finite(y, "y (signal)")
    check_positive(lam, "lam")
    if z0 is None:
        code = jax.eval_shape(op.adjoint, y)
        z0 = jnp.zeros(code.shape, code.dtype)
    history_fn = (lambda z: lasso_objective(op, y, z, lam)) if return_history else None
    return proximal_gradient(lambda z: op.adjoint(op.forward(z) - y),
                             lambda v, t: prox.soft_threshold(v, lam * t, nonneg=nonneg),
                             z0, step, num_iters, accelerated=accelerated, unroll=unroll,
                             history_fn=history_fn)


def ista(op: LinearOperator, y: jax.Array, lam, step, num_iters: int, z0: jax.Array | None = None,
         nonneg: bool = False, unroll: int | bool | None = None, return_history: bool = False):
    """ISTA for min_z ½‖Az − y‖² + Σ lam·|z| (z ≥ 0 with ``nonneg``); ``step`` = 1/L.

    y: signal (e.g. (B, H, W, C) or (..., n)); lam scalar or per-channel (M,); z0 warm start
    (default zeros of the code shape). Returns z, or (z, objective per iteration (num_iters,)).
    """
    return _lasso(op, y, lam, step, num_iters, z0, nonneg, unroll, return_history, accelerated=False)


def fista(op: LinearOperator, y: jax.Array, lam, step, num_iters: int, z0: jax.Array | None = None,
          nonneg: bool = False, unroll: int | bool | None = None, return_history: bool = False):
    """FISTA for the same problem and with the same arguments and returns as ``ista``."""
    return _lasso(op, y, lam, step, num_iters, z0, nonneg, unroll, return_history, accelerated=True)
