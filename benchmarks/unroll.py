"""Rolled vs unrolled ``lax.scan`` for a 10-step conv FISTA: forward and gradient time.

    python -m benchmarks.unroll [--quick] [--out DIR]
    python -m benchmarks.unroll --quick --out=benchmarks/results   # the committed result

Problem: batch 64 of 32×32×3 signals, 64 atoms of 3×3 (circular, stride 1), λ = 0.1, step 1/L
(closed-form L), 10 FISTA steps; the gradient is of the reconstruction loss ½‖D·z(x) − x‖²
with respect to the kernel (as when training a conv sparse autoencoder). Cases: ``unroll=1``
(rolled scan), ``unroll=10`` (full unroll) and ``unroll=None`` (the library default for this
backend, ``solvers.resolve_unroll``), timed round-robin; ratios are medians of per-round ratios.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from sparse_ae.sparse_coding import dictionaries, operators, solvers

BATCH, SIZE, CHANNELS, ATOMS, KERNEL, ITERS, LAM = 64, 32, 3, 64, 3, 10, 0.1


def problem(seed: int = 0, batch: int = BATCH, size: int = SIZE) -> tuple[jax.Array, jax.Array, float]:
    """(kernel (3, 3, 64, 3) unit-norm atoms, signals (batch, size, size, 3) in [0, 1], step 1/L)."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    kernel = dictionaries.normalize_atoms(jax.random.normal(k1, (KERNEL, KERNEL, ATOMS, CHANNELS)))
    x = jax.random.uniform(k2, (batch, size, size, CHANNELS))
    step = 1.0 / float(operators.circular_lipschitz(kernel, (size, size)))
    return kernel, x, step


def functions(unroll, step: float):
    """(jitted forward codes, jitted gradient of the reconstruction loss w.r.t. the kernel)."""
    def codes(kernel, x):
        return solvers.fista(operators.conv_operator(kernel), x, LAM, step, ITERS, unroll=unroll)

    def loss(kernel, x):
        z = codes(kernel, x)
        return 0.5 * jnp.sum(jnp.square(operators.conv_synthesis(kernel, z) - x))

    return jax.jit(codes), jax.jit(jax.grad(loss))


def measure(kernel: jax.Array, x: jax.Array, step: float, repeats: int
            ) -> tuple[list[dict], dict[str, list[float]], int | bool]:
    """Times every variant's forward and gradient round-robin on one problem of :func:`problem`;
    returns (a row per variant and what, the seconds of each case's rounds, the default unroll)."""
    default = solvers.resolve_unroll(None, ITERS)
    variants = {"rolled (unroll=1)": 1, f"full unroll (unroll={ITERS})": ITERS,
                f"library default (unroll=None -> {default})": None}
    cases = {}
    for name, unroll in variants.items():
        forward, grad = functions(unroll, step)
        cases[f"{name}|forward"] = (forward, (kernel, x))
        cases[f"{name}|gradient"] = (grad, (kernel, x))
    times, first = common.time_interleaved(cases, repeats=repeats)
    full = f"full unroll (unroll={ITERS})"
    rows = []
    for name in variants:
        for what in ("forward", "gradient"):
            key = f"{name}|{what}"
            ratio = np.median(np.array(times[key]) / np.array(times[f"{full}|{what}"]))
            rows.append({"variant": name, "what": what, "median_s": float(np.median(times[key])),
                         "min_s": float(np.min(times[key])), "first_call_s": first[key],
                         "vs_full_unroll": float(ratio)})
    return rows, times, default


def main() -> None:
    args = common.base_parser(__doc__.split("\n\n")[0]).parse_args()
    repeats = 3 if args.quick else 7
    rows, times, default = measure(*problem(), repeats=repeats)
    common.print_table(f"10-step conv FISTA, batch {BATCH}, {SIZE}x{SIZE}x{CHANNELS}, {ATOMS} atoms "
                       f"{KERNEL}x{KERNEL}, backend {jax.default_backend()}", rows)
    if args.out:
        common.write_json(args.out, "unroll", {
                "quick": args.quick, "repeats": repeats, "default_unroll": default,
                "problem": {"batch": BATCH, "size": SIZE, "channels": CHANNELS, "atoms": ATOMS,
                            "kernel": KERNEL, "iters": ITERS, "lam": LAM, "boundary": "circular"},
                "rows": rows, "times": times})


if __name__ == "__main__":
    main()
