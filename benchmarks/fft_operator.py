"""FFT vs spatial convolution inside a differentiable 10-step conv FISTA: forward and gradient time.

    python -m benchmarks.fft_operator [--quick] [--out DIR]
    python -m benchmarks.fft_operator --out=benchmarks/results   # the committed result

Problem: batch 8 of 64×64 single-channel signals in [0, 1], 32 unit-norm atoms of k×k for k in
(5, 8, 11) (circular, stride 1), λ = 0.1, step 1/L (closed-form L), 10 FISTA steps at the library's
default unroll; the gradient is of the reconstruction loss ½‖D·z(x) − x‖² with respect to the
kernel, as when training ``csc_ae``. Operators: ``operators.conv_operator`` (spatial) and
``fourier.fourier_operator`` (real FFTs, what ``csc_ae``'s ``model.operator="fft"`` uses), timed
round-robin; the speed-up is the median of per-round ratios. ``--quick``: batch 2, k in (5, 11).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from sparse_ae.sparse_coding import dictionaries, fourier, operators, solvers

SIZE, ATOMS, ITERS, LAM = 64, 32, 10, 0.1
OPERATORS = {"spatial": lambda kernel: operators.conv_operator(kernel),
             "fft": lambda kernel: fourier.fourier_operator(kernel, (SIZE, SIZE))}


def problem(batch: int, k: int, seed: int = 0) -> tuple[jax.Array, jax.Array, float]:
    """(kernel (k, k, 32, 1) unit-norm atoms, signals (batch, 64, 64, 1) in [0, 1], step 1/L)."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    kernel = dictionaries.normalize_atoms(jax.random.normal(k1, (k, k, ATOMS, 1)))
    x = jax.random.uniform(k2, (batch, SIZE, SIZE, 1))
    return kernel, x, 1.0 / float(operators.circular_lipschitz(kernel, (SIZE, SIZE)))


def functions(make_operator, step: float):
    """(jitted forward codes, jitted gradient of the reconstruction loss w.r.t. the kernel)."""
    def codes(kernel, x):
        return solvers.fista(make_operator(kernel), x, LAM, step, ITERS)

    def loss(kernel, x):
        return 0.5 * jnp.sum(jnp.square(make_operator(kernel).forward(codes(kernel, x)) - x))

    return jax.jit(codes), jax.jit(jax.grad(loss))


def main() -> None:
    args = common.base_parser(__doc__.split("\n\n")[0]).parse_args()
    batch, sizes, repeats = (2, (5, 11), 3) if args.quick else (8, (5, 8, 11), 7)
    cases = {}
    for k in sizes:
        kernel, x, step = problem(batch, k)
        for name, make_operator in OPERATORS.items():
            forward, grad = functions(make_operator, step)
            cases[f"{k}|{name}|forward"] = (forward, (kernel, x))
            cases[f"{k}|{name}|gradient"] = (grad, (kernel, x))
    times, first = common.time_interleaved(cases, repeats=repeats)
    agreement = {}   # largest gradient difference, relative to the largest spatial gradient entry
    for k in sizes:
        spatial, fft = (np.asarray(fn(*fn_args)) for fn, fn_args in (cases[f"{k}|{name}|gradient"]
                                                                     for name in ("spatial", "fft")))
        agreement[k] = float(np.abs(fft - spatial).max() / np.abs(spatial).max())
    rows = []
    for k in sizes:
        for what in ("forward", "gradient"):
            spatial, fft = (np.array(times[f"{k}|{name}|{what}"]) for name in ("spatial", "fft"))
            rows.append({"kernel": f"{k}x{k}", "what": what, "spatial_s": float(np.median(spatial)),
                         "fft_s": float(np.median(fft)), "fft_speed-up": float(np.median(spatial / fft)),
                         "fft_first_call_s": first[f"{k}|fft|{what}"],
                         "grad_rel_diff": agreement[k] if what == "gradient" else ""})
    common.print_table(f"10-step conv FISTA, batch {batch}, {SIZE}x{SIZE}x1, {ATOMS} atoms, "
                       f"backend {jax.default_backend()}", rows)
    if args.out:
        common.write_json(args.out, "fft_operator", {
                "quick": args.quick, "repeats": repeats,
                "problem": {"batch": batch, "size": SIZE, "atoms": ATOMS, "kernels": list(sizes), "iters": ITERS,
                            "lam": LAM, "boundary": "circular", "unroll": solvers.resolve_unroll(None, ITERS)},
                "rows": rows, "times": times})


if __name__ == "__main__":
    main()
