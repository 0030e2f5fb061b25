"""ADMM for convolutional BPDN: the iteration of SPORCO's ``admm.cbpdn.ConvBPDN`` with its default options.

Problem: min_z ½‖Σ_m d_m ∗ z_m − s‖² + λ‖z‖₁, circular boundary, stride 1: kernel (kh, kw, M, C), codes
(..., H, W, M), signals (..., H, W, C) at :func:`cbpdn`, the layouts of ``fourier``. All leading batch axes form
one problem (SPORCO's multi-image problem: objective summed, one ρ, residual norms over everything).

Speed (float32 on XLA:CPU; each changes rounding only): everything inside is channel-major, codes (..., M, H, W)
and spectra (..., M, H, W//2 + 1), as XLA's FFT transforms the two minor axes (no transposes); the X- to U-steps
run over chunks of images of at most :data:`CHUNK_BYTES` of codes (``lax.map``), so that a chunk's FFTs and
passes stay in cache (on a 2-core EPYC with 32 MiB L3, 32 codes (32, 128, 128) per step took 0.15 s in chunks,
0.22 s at once), and the residual norms and objective are summed over the chunks.

Split x = y (x the least-squares side, y the ℓ1 side) with scaled dual u; one step (Wohlberg,
"Efficient algorithms for convolutional sparse representations", 2016; Boyd et al. 2010, §3.4.3;
Wohlberg, "ADMM penalty parameter selection by residual balancing", 2015):

- X-step: x = argmin ½‖Dx − s‖² + ρ/2‖x − v‖², v = y − u, exact per frequency ω in the DFT domain:
  (ρI + Σ_c a_c a_cᴴ) x̂ = D̂ᴴŝ + ρv̂ with a_c = conj(D̂[c, :, ω]) (an M-vector), solved in its residual form
  x̂ = v̂ + (ρI + Σ_c a_c a_cᴴ)⁻¹ D̂ᴴ(ŝ − D̂v̂): for C = 1 by Sherman–Morrison, x̂ = v̂ + a (ŝ − aᴴv̂) / (ρ + ‖a‖²),
  for C > 1 by iterated Sherman–Morrison over the C channels (SPORCO's ``solvemdbi_ism``). This is ConvBPDN's
  solve rearranged (equal in exact arithmetic): no M-channel right-hand side D̂ᴴŝ is kept or read.
- Relaxation: x_r = α x + (1 − α) y with α = :data:`RELAX` = 1.8.
- Y-step: y = soft_threshold(x_r + u, λ/ρ).   U-step: u = u + x_r − y.
- Residuals (normalised, SPORCO's ``StdResiduals=False``): r = ‖x − y‖ / max(‖x‖, ‖y‖),
  s = ‖ρ(y_prev − y)‖ / (ρ‖u‖) (a zero denominator counts as 1).
- ρ update from the second step on (``AutoRho``: Period 1, AutoScaling): with target ξ = 1 + 18.3^(log₁₀λ + 1),
  ratio μ = :data:`RSDL_RATIO` = 1.2 and multiplier τ = min(√(r/(ξs)) or its inverse (≥ 1), :data:`RHO_SCALING`
  = 1000): ρ <- τρ if r > ξμs, ρ <- ρ/τ if s > (μ/ξ)r; u is divided by the same factor.

Starts at y = u = 0 and ρ = 50λ + 1; stops when r and s are both below ``tol`` (``RelStopTol``,
``AbsStopTol`` = 0). The codes are y (SPORCO returns Y by default) and the objective is reported at y, a
LASSO iterate (SPORCO's ``AuxVarObj=True``; its default evaluates at x, which is not one); it costs an FFT of
the codes per step, which ``record_objective=False`` saves. float32 or float64, following the inputs.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sparse_ae.sparse_coding import prox
from sparse_ae.sparse_coding.fourier import kernel_spectrum
from sparse_ae.sparse_coding.operators import check_conv_inputs, check_count, check_positive

RELAX = 1.8          # over-relaxation α (RelaxParam)
RSDL_RATIO = 1.2     # μ (AutoRho RsdlRatio)
RHO_SCALING = 1000.0  # largest ρ multiplier τ (AutoRho Scaling, with AutoScaling)
CHUNK_BYTES = 2 ** 22  # most bytes of codes per chunk of images in a step (module docstring)


class Problem(NamedTuple):
    """Constants of one CBPDN problem, a pytree (build with :func:`make_problem`); channel-major layouts."""

    spectrum: jax.Array      # (C, M, H, W//2 + 1) kernel spectrum D̂
    signal_hat: jax.Array    # (..., C, H, W//2 + 1) ŝ
    signal: jax.Array        # (..., C, H, W) s
    lam: jax.Array           # () λ
    target: jax.Array        # () ξ, the residual ratio the ρ update aims at


class State(NamedTuple):
    """The iterate after ``iteration`` steps and the statistics of the last step; codes channel-major."""

    y: jax.Array                # (..., M, H, W) sparse variable: the codes
    u: jax.Array                # (..., M, H, W) scaled dual variable
    rho: jax.Array              # () penalty for the next step
    iteration: jax.Array        # () int32, steps taken
    objective: jax.Array        # () ½‖Dy − s‖² + λ‖y‖₁ (NaN when the step did not record it)
    primal_residual: jax.Array  # () r (inf before the first step)
    dual_residual: jax.Array    # () s (inf before the first step)


class Record(NamedTuple):
    """Per-step statistics (num_iters,) of :func:`run`; entries past ``iterations`` (an early stop) are NaN."""

    objective: jax.Array        # at y after each step (NaN throughout without ``record_objective``)
    primal_residual: jax.Array  # r
    dual_residual: jax.Array    # s
    rho: jax.Array              # ρ the step used
    iterations: jax.Array       # () int32, steps taken
    converged: jax.Array        # () bool, r < tol and s < tol at the end


def make_problem(kernel: jax.Array, signal: jax.Array, lam) -> Problem:
    """Problem constants for ``kernel`` (kh, kw, M, C), ``signal`` (..., H, W, C) and scalar λ = ``lam`` > 0."""
    check_conv_inputs(kernel, signal)
    check_positive(lam, "lam")
    if jnp.ndim(lam) != 0:
        raise ValueError(f"lam must be a scalar for ADMM, got shape {jnp.shape(lam)}")
    dtype = jnp.result_type(kernel, signal)
    signal = jnp.moveaxis(jnp.asarray(signal, dtype), -1, -3)
    spectrum = jnp.transpose(kernel_spectrum(jnp.asarray(kernel, dtype), signal.shape[-2:]), (3, 2, 0, 1))
    lam = jnp.asarray(lam, dtype)
    return Problem(spectrum, jnp.fft.rfft2(signal), signal, lam, 1 + 18.3 ** (jnp.log10(lam) + 1))


def objective(problem: Problem, z: jax.Array) -> jax.Array:
    """½‖Σ_m d_m ∗ z_m − s‖² + λ‖z‖₁ summed over everything; z (..., M, H, W)."""
    synthesis = jnp.sum(problem.spectrum * jnp.fft.rfft2(z)[..., None, :, :, :], axis=-3)
    residual = jnp.fft.irfft2(synthesis, s=z.shape[-2:]) - problem.signal
    return 0.5 * jnp.sum(jnp.square(residual)) + problem.lam * jnp.sum(jnp.abs(z))


def init_state(problem: Problem, rho=None) -> State:
    """y = u = 0 and ρ = ``rho`` (default 50λ + 1, as ConvBPDN)."""
    codes = problem.signal.shape[:-3] + problem.spectrum.shape[1:2] + problem.signal.shape[-2:]
    zeros = jnp.zeros(codes, problem.signal.dtype)
    rho = 50 * problem.lam + 1 if rho is None else jnp.asarray(rho, problem.signal.dtype)
    inf = jnp.asarray(jnp.inf, problem.signal.dtype)
    return State(zeros, zeros, rho, jnp.int32(0), objective(problem, zeros), inf, inf)


def _inner(a: jax.Array, v: jax.Array) -> jax.Array:
    """Σ_m a[m] v[..., m] per frequency, keeping the atom axis: (M, H, F), (..., M, H, F) -> (..., 1, H, F)."""
    return jnp.sum(a * v, axis=-3, keepdims=True)


def _iterated_sherman_morrison(spectrum: jax.Array, rho: jax.Array, b: jax.Array) -> jax.Array:
    """(ρI + Σ_c a_c a_cᴴ) x = b per frequency, a_c = conj(D̂[c]), by one Sherman–Morrison update per
    channel c (SPORCO's ``solvemdbi_ism``): γ_c = A_{c−1}⁻¹a_c, δ_c = 1 + a_cᴴγ_c; b, x (..., M, H, W//2 + 1)."""
    gammas, deltas = [], []
    x = b / rho
    for c in range(spectrum.shape[0]):
        gamma = jnp.conj(spectrum[c]) / rho
        for l, (gamma_l, delta_l) in enumerate(zip(gammas, deltas)):
            gamma = gamma - gamma_l * _inner(spectrum[l], gamma) / delta_l
        delta = 1 + _inner(spectrum[c], gamma)
        x = x - gamma * _inner(spectrum[c], x) / delta
        gammas.append(gamma)
        deltas.append(delta)
    return x


def x_step(problem: Problem, v: jax.Array, rho: jax.Array) -> jax.Array:
    """argmin_x ½‖Dx − s‖² + ρ/2‖x − v‖², exact in the DFT domain: v (..., M, H, W) -> x (..., M, H, W)."""
    spectrum, v_hat = problem.spectrum, jnp.fft.rfft2(v)
    residual = problem.signal_hat - jnp.sum(spectrum * v_hat[..., None, :, :, :], axis=-3)  # ŝ − D̂v̂, (..., C, H, F)
    if spectrum.shape[0] == 1:
        d = spectrum[0]
        power = jnp.sum(jnp.square(d.real) + jnp.square(d.imag), axis=-3, keepdims=True)
        update = jnp.conj(d) * (residual / (power + rho))
    else:
        update = _iterated_sherman_morrison(spectrum, rho, jnp.sum(jnp.conj(spectrum) * residual[..., None, :, :],
                                                                   axis=-4))
    return jnp.fft.irfft2(v_hat + update, s=v.shape[-2:])


def _nonzero(a: jax.Array) -> jax.Array:
    return jnp.where(a == 0, 1, a)


def _rho_factor(r: jax.Array, s: jax.Array, target: jax.Array) -> jax.Array:
    """Residual balancing: τ if r > ξμs, 1/τ if s > (μ/ξ)r, else 1; τ = min(√(r/(ξs)) or √(ξs/r), RHO_SCALING)."""
    both = (r > 0) & (s > 0)
    r_, s_ = jnp.where(both, r, 1), jnp.where(both, s, 1)
    ratio = jnp.where(r_ > s_ * target, r_ / (s_ * target), (s_ * target) / r_)
    tau = jnp.where(both, jnp.minimum(jnp.sqrt(ratio), RHO_SCALING), RHO_SCALING)
    return jnp.where(r > target * RSDL_RATIO * s, tau, jnp.where(s > (RSDL_RATIO / target) * r, 1 / tau, 1))


def images_per_chunk(shape: tuple[int, ...], dtype) -> int:
    """Images per chunk of :func:`step` for codes of ``shape`` (..., M, H, W): the largest divisor of their count
    (the leading axes' product) whose codes fit in :data:`CHUNK_BYTES` (at least 1)."""
    count = math.prod(shape[:-3])
    fit = max(1, CHUNK_BYTES // (math.prod(shape[-3:]) * jnp.dtype(dtype).itemsize))
    return max(k for k in range(1, min(count, fit) + 1) if count % k == 0)


def _chunk_step(problem: Problem, y: jax.Array, u: jax.Array, rho: jax.Array, record_objective: bool
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """X-, Y- and U-steps on a chunk of images, y and u (k, M, H, W), ``problem`` holding their signals: (y, u,
    sums), sums (6,) = ‖x‖², ‖x − y‖², ‖y‖², ‖y_prev − y‖², ‖u‖² and the objective at y (0 if not recorded)."""
    x = x_step(problem, y - u, rho)
    relaxed = RELAX * x + (1 - RELAX) * y
    y_new = prox.soft_threshold(relaxed + u, problem.lam / rho)
    u_new = u + relaxed - y_new
    value = objective(problem, y_new) if record_objective else jnp.zeros((), y.dtype)
    squares = [jnp.sum(jnp.square(a)) for a in (x, x - y_new, y_new, y - y_new, u_new)]
    return y_new, u_new, jnp.stack([*squares, value])


@functools.partial(jax.jit, static_argnames="record_objective")
def step(problem: Problem, state: State, record_objective: bool = True) -> State:
    """One ADMM step: X-step, relaxation, Y-step, U-step, residuals, ρ update (module docstring).

    The images (leading axes flattened) go through X- to U-step in chunks of :func:`images_per_chunk`.
    ``record_objective=False`` skips the objective at y (an extra FFT of the codes; State.objective is then NaN)
    and changes no iterate. ``functools.partial(step, problem)`` is the jitted state -> state map."""
    rho, shape = state.rho, state.y.shape
    count, size = math.prod(shape[:-3]), images_per_chunk(shape, state.y.dtype)

    def chunk_step(y, u, signal_hat, signal):
        return _chunk_step(problem._replace(signal_hat=signal_hat, signal=signal), y, u, rho, record_objective)

    arrays = [a.reshape((count // size, size) + a.shape[-3:])
              for a in (state.y, state.u, problem.signal_hat, problem.signal)]
    if size == count:  # one chunk: no loop
        y, u, sums = chunk_step(*(a[0] for a in arrays))
    else:
        y, u, sums = jax.lax.map(lambda a: chunk_step(*a), arrays)
        sums = jnp.sum(sums, axis=0)
    xx, dd, yy, dy, uu, value = sums
    r = jnp.sqrt(dd) / _nonzero(jnp.sqrt(jnp.maximum(xx, yy)))
    s = rho * jnp.sqrt(dy) / _nonzero(rho * jnp.sqrt(uu))
    factor = jnp.where(state.iteration > 0, _rho_factor(r, s, problem.target), 1).astype(rho.dtype)
    value = value if record_objective else jnp.full((), jnp.nan, value.dtype)
    return State(y.reshape(shape), u.reshape(shape) / factor, rho * factor, state.iteration + 1, value, r, s)


@functools.partial(jax.jit, static_argnames=("num_iters", "record_objective"))
def run(problem: Problem, state: State, num_iters: int, tol=0.0, record_objective: bool = True
        ) -> tuple[State, Record]:
    """Up to ``num_iters`` steps from ``state``, stopping once r < tol and s < tol; (final state, record).

    ``record_objective`` as :func:`step`."""
    def done(state):
        return (state.primal_residual < tol) & (state.dual_residual < tol)

    def body(carry):
        state, record = carry
        new = step(problem, state, record_objective)
        i = state.iteration - start
        record = record._replace(objective=record.objective.at[i].set(new.objective),
                                 primal_residual=record.primal_residual.at[i].set(new.primal_residual),
                                 dual_residual=record.dual_residual.at[i].set(new.dual_residual),
                                 rho=record.rho.at[i].set(state.rho))
        return new, record

    start = state.iteration
    nan = jnp.full((num_iters,), jnp.nan, state.objective.dtype)
    record = Record(nan, nan, nan, nan, start, jnp.asarray(False))
    state, record = jax.lax.while_loop(lambda c: (c[0].iteration - start < num_iters) & ~done(c[0]), body,
                                       (state, record))
    return state, record._replace(iterations=state.iteration - start, converged=done(state))


def cbpdn(kernel: jax.Array, signal: jax.Array, lam, num_iters: int, tol=0.0, rho=None,
          record_objective: bool = True) -> tuple[jax.Array, Record]:
    """Convolutional BPDN by ADMM from zero: codes y (..., H, W, M) and the :class:`Record`.

    kernel (kh, kw, M, C), signal (..., H, W, C), scalar ``lam`` > 0; at most ``num_iters`` steps, fewer when
    both normalised residuals fall below ``tol`` (0: exactly ``num_iters``); ``rho`` the initial penalty
    (default 50λ + 1); ``record_objective=False`` leaves Record.objective NaN and saves an FFT per step.
    Runs under jit too (the NaN check of the signal then is skipped).
    """
    check_count(num_iters, "num_iters")
    problem = make_problem(kernel, signal, lam)
    state, record = run(problem, init_state(problem, rho), num_iters, tol, record_objective)
    return jnp.moveaxis(state.y, -3, -1), record
