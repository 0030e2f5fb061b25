"""Achieved GFLOP/s of the conv FISTA forward and gradient next to a single large convolution.

    python -m benchmarks.conv_gflops [--quick] [--out DIR]
    python -m benchmarks.conv_gflops --quick --out=benchmarks/results   # the committed result

FLOPs are counted analytically as the useful multiply-adds (2 FLOPs each) of the dictionary
convolutions, ignoring element-wise work: one synthesis or analysis costs
F_conv = 2·B·H·W·M·C·k²/s² (every code entry meets every tap once). FISTA from z0 = 0 with T
steps plus the final reconstruction D·z is (2T + 1)·F_conv forward; the gradient of the
reconstruction loss w.r.t. the kernel adds two convolutions per forward one (input and kernel
gradients): 3·(2T + 1)·F_conv. The ceiling is one large 3×3 'SAME' convolution
(8×128×128×64 -> 64, XLA's conv) timed in the same run; the single synthesis / analysis rows
show what one operator call of each problem achieves. All cases are timed round-robin.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from sparse_ae.sparse_coding import dictionaries, operators, solvers

CEILING_SHAPE = (8, 128, 128, 64)  # NHWC input of the reference conv, 64 -> 64 channels, 3×3


class Problem(NamedTuple):
    name: str
    batch: int
    size: int
    channels: int
    atoms: int
    kernel: int
    stride: int
    iters: int
    lam: float


PROBLEMS = (
    Problem("rgb 32x32 (unroll benchmark)", 64, 32, 3, 64, 3, 1, 10, 0.1),
    Problem("gray 128x128, 8x8 filters (SPORCO-like)", 8, 128, 1, 32, 8, 1, 10, 0.05),
    Problem("rgb 32x32, stride 2, 4x4", 64, 32, 3, 64, 4, 2, 10, 0.1),
)


def conv_flops(p: Problem) -> float:
    """Useful FLOPs of one synthesis (or analysis): 2·B·H·W·M·C·k²/s²."""
    return 2.0 * p.batch * p.size ** 2 * p.atoms * p.channels * p.kernel ** 2 / p.stride ** 2


def cases_for(p: Problem) -> dict[str, tuple]:
    """name -> (jitted fn, args, FLOPs) for one problem."""
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    kernel = dictionaries.normalize_atoms(jax.random.normal(k1, (p.kernel, p.kernel, p.atoms, p.channels)))
    x = jax.random.uniform(k2, (p.batch, p.size, p.size, p.channels))
    z = jax.random.normal(k3, operators.code_shape(x.shape, kernel.shape, p.stride))
    v0 = jax.random.normal(k3, (1, *z.shape[1:]))
    lipschitz, _ = operators.power_iteration(operators.conv_operator(kernel, p.stride), v0, 50)
    step = 1.0 / float(lipschitz)

    def loss(kernel, x):
        op = operators.conv_operator(kernel, p.stride)
        codes = solvers.fista(op, x, p.lam, step, p.iters)
        return 0.5 * jnp.sum(jnp.square(op.forward(codes) - x))

    f = conv_flops(p)
    forwards = 2 * p.iters + 1
    return {
        "synthesis (1 conv)": (jax.jit(lambda k, z: operators.conv_synthesis(k, z, p.stride)), (kernel, z), f),
        "analysis (1 conv)": (jax.jit(lambda k, x: operators.conv_analysis(k, x, p.stride)), (kernel, x), f),
        f"FISTA forward ({forwards} convs)": (jax.jit(loss), (kernel, x), forwards * f),
        f"FISTA gradient ({3 * forwards} convs)": (jax.jit(jax.grad(loss)), (kernel, x), 3 * forwards * f),
    }


def main() -> None:
    args = common.base_parser(__doc__.split("\n\n")[0]).parse_args()
    repeats = 3 if args.quick else 7
    problems = PROBLEMS[:2] if args.quick else PROBLEMS
    xc = jax.random.normal(jax.random.key(1), CEILING_SHAPE)
    wc = jax.random.normal(jax.random.key(2), (3, 3, CEILING_SHAPE[-1], CEILING_SHAPE[-1]))
    ceiling_flops = 2.0 * np.prod(CEILING_SHAPE) * CEILING_SHAPE[-1] * 9
    ceiling = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    cases = {("ceiling", "single 3x3 conv 8x128x128x64 -> 64"): (ceiling, (xc, wc), ceiling_flops)}
    for p in problems:
        cases.update({(p.name, what): case for what, case in cases_for(p).items()})
    times, _ = common.time_interleaved({key: (fn, a) for key, (fn, a, _) in cases.items()}, repeats=repeats)
    ceiling_gflops = ceiling_flops / np.median(times[("ceiling", "single 3x3 conv 8x128x128x64 -> 64")]) / 1e9
    rows = []
    for (problem, what), (_, _, flops) in cases.items():
        seconds = float(np.median(times[(problem, what)]))
        gflops = flops / seconds / 1e9
        rows.append({"problem": problem, "what": what, "GFLOP": flops / 1e9, "seconds": seconds,
                     "GFLOP/s": gflops, "% of ceiling": 100 * gflops / ceiling_gflops})
    common.print_table(f"conv FISTA throughput, backend {jax.default_backend()}", rows)
    if args.out:
        common.write_json(args.out, "conv_gflops", {
                "quick": args.quick, "repeats": repeats, "ceiling_gflops": ceiling_gflops,
                "flop_count": ("useful multiply-adds x2 of the dictionary convolutions; one conv = "
                               "2*B*H*W*M*C*k^2/s^2; FISTA forward (T steps from z0=0, plus the final "
                               "reconstruction) = (2T+1) convs; gradient w.r.t. the kernel = 3(2T+1) convs; "
                               "element-wise work not counted"),
                "problems": [p._asdict() for p in problems], "rows": rows})


if __name__ == "__main__":
    main()
