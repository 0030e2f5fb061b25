"""One entry point for convolutional BPDN to a tolerance: ADMM in the DFT domain, or FISTA in space.

min_z ½‖Σ_m d_m ∗ z_m − s‖² + λ‖z‖₁, kernel (kh, kw, M, C), codes (..., H, W, M), signal (..., H, W, C),
stride 1; all leading batch axes form one problem (objective summed, one stopping test).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_ae.sparse_coding import admm, operators, solvers

METHODS = ("admm", "fista")
FISTA_CHECK_EVERY = 50  # FISTA steps between stopping tests (the momentum restarts at each test)


class Convergence(NamedTuple):
    """How a :func:`solve_csc` run went (host values)."""

    method: str            # "admm" | "fista"
    objective: np.ndarray  # (iterations,) after each step; ADMM: at its sparse variable y
    residual: np.ndarray   # (tests,) the stopping measure at each test (ADMM: max(r, s) every step)
    iterations: int        # steps taken
    converged: bool        # the last residual < tol


def _fista_residual(op: operators.LinearOperator, signal: jax.Array, z: jax.Array, lam, step) -> jax.Array:
    """Relative proximal-gradient residual ‖T(z) − z‖ / ‖T(z)‖, T one ISTA step (0 iff z is optimal)."""
    t = solvers.ista(op, signal, lam, step, 1, z0=z)
    norm = jnp.sqrt(jnp.sum(jnp.square(t)))
    return jnp.sqrt(jnp.sum(jnp.square(t - z))) / jnp.where(norm == 0, 1, norm)


@functools.partial(jax.jit, static_argnames=("num_iters", "boundary"))
def _fista_chunk(kernel, signal, z, lam, step, num_iters: int, boundary: str):
    """``num_iters`` FISTA steps from z (momentum from rest): (z, objective per step, residual at z)."""
    op = operators.conv_operator(kernel, boundary=boundary)
    # Forward only: a rolled scan runs as fast as the backend's unrolled default and compiles ~3x faster.
    z, history = solvers.fista(op, signal, lam, step, num_iters, z0=z, return_history=True, unroll=1)
    return z, history, _fista_residual(op, signal, z, lam, step)


def _solve_fista(kernel, signal, lam, tol, max_iters: int, boundary: str) -> tuple[jax.Array, Convergence]:
    kh, kw = kernel.shape[:2]
    height, width = signal.shape[-3:-1]
    # The zero-boundary operator is a restriction of the circular one on a grid grown by the kernel
    # (no wrap-around), so that grid's exact constant bounds its norm.
    grid = (height, width) if boundary == "circular" else (height + kh - 1, width + kw - 1)
    step = 1 / operators.circular_lipschitz(kernel, grid)
    code = jax.eval_shape(operators.conv_operator(kernel, boundary=boundary).adjoint, signal)
    z = jnp.zeros(code.shape, code.dtype)
    done, objectives, residuals = 0, [], []
    while done < max_iters and not (residuals and residuals[-1] < tol):
        chunk = min(FISTA_CHECK_EVERY, max_iters - done)
        z, history, residual = _fista_chunk(kernel, signal, z, lam, step, chunk, boundary)
        objectives.append(np.asarray(history))
        residuals.append(float(residual))
        done += chunk
    return z, Convergence("fista", np.concatenate(objectives), np.asarray(residuals), done, residuals[-1] < tol)


def _solve_admm(kernel, signal, lam, tol, max_iters: int, devices) -> tuple[jax.Array, Convergence]:
    z, record = admm.cbpdn(kernel, signal, lam, max_iters, tol=tol, devices=devices)
    record = jax.device_get(record)
    n = int(record.iterations)
    residual = np.maximum(record.primal_residual[:n], record.dual_residual[:n])
    return z, Convergence("admm", record.objective[:n], residual, n, bool(record.converged))


def solve_csc(kernel: jax.Array, signal: jax.Array, lam, *, tol: float = 1e-4, max_iters: int = 1000,
              boundary: str = "circular", method: str | None = None, devices=None
              ) -> tuple[jax.Array, Convergence]:
    """Solve convolutional BPDN to ``tol``: codes (..., H, W, M) and a :class:`Convergence` record.

    kernel (kh, kw, M, C), signal (..., H, W, C), ``lam`` > 0 (scalar; FISTA also takes per-atom (M,)),
    ``boundary`` "circular" | "zero" as ``operators.conv_operator``. ``method``:

    - None: "admm" for the circular boundary — the DFT diagonalises the operator, so ADMM's X-step is
      exact and cheap and it needs far fewer iterations than FISTA — and "fista" otherwise (a zero
      boundary is not diagonalised by the DFT).
    - "admm": :func:`admm.cbpdn` (SPORCO's ConvBPDN iteration); circular boundary only. Stops when both
      normalised residuals r, s < tol.
    - "fista": ``solvers.fista`` with ``operators.conv_operator`` and step 1/L (L from
      ``operators.circular_lipschitz``: exact for circular, an upper bound for zero). Every
      ``FISTA_CHECK_EVERY`` steps it stops if the relative proximal-gradient residual ‖T(z) − z‖/‖T(z)‖
      (T one ISTA step) < tol, else continues from z with the momentum restarted.

    At most ``max_iters`` steps. ``devices`` (ADMM only; e.g. ``jax.devices()``): the ADMM's codes are split
    over them by images or atoms (``admm.split_for``), which on a multi-core CPU run as several CPU devices
    (``jax_num_cpu_devices``) is what puts every core to work; one device without. Not for use under jit (host
    loop and host record).
    """
    if method not in (None, *METHODS):
        raise ValueError(f"method must be None or one of {METHODS}, got {method!r}")
    if boundary not in operators.BOUNDARIES:
        raise ValueError(f"boundary must be one of {operators.BOUNDARIES}, got {boundary!r}")
    if method == "admm" and boundary != "circular":
        raise ValueError(f"method 'admm' solves the circular boundary only (its X-step is exact in the DFT domain), "
                         f"got boundary={boundary!r}; use boundary='circular' or method='fista'")
    operators.check_count(max_iters, "max_iters")
    operators.check_positive(tol, "tol")
    operators.check_conv_inputs(kernel, signal, 1, boundary)
    operators.check_positive(lam, "lam")
    if method is None:
        method = "admm" if boundary == "circular" else "fista"
    if devices is not None and method != "admm":
        raise ValueError(f"devices splits the ADMM's codes only, and this solve uses {method!r} (boundary="
                         f"{boundary!r}); leave devices=None or use method='admm' with boundary='circular'")
    if method == "admm":
        return _solve_admm(kernel, signal, lam, tol, max_iters, devices)
    dtype = jnp.result_type(kernel, signal)
    return _solve_fista(jnp.asarray(kernel, dtype), jnp.asarray(signal, dtype), lam, tol, max_iters, boundary)
