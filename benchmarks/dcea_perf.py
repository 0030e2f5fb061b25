"""DCEA speed at the authors' Poisson network (169 filters 11×11, stride 7, T = 15, their 49-shift
layout): denoising one 256×256 image (counts to exp(η), as the authors' forward), and one batch-1 training step on a 128×128 crop (the task's
jitted train_step: forward, backward, Adam), for DCEA-C and DCEA-UC, on the patch-GEMM fast path
and (without --quick) the core's conv operators; against the authors' computation in PyTorch.

    python -m benchmarks.dcea_perf [--quick] [--peer-python=PYTHON] [--out=benchmarks/results/dcea_perf.json]

FLOPs are the useful multiply-adds of the convolutions (``benchmarks.flops.dcea_conv_flops``:
2T + 1 convs per canvas forward, training ≈ 3× forward); GFLOP/s is set against a large 3×3
convolution (8×128×128×64 -> 64, XLA's conv) timed right before each row as the machine's ceiling.
``--peer-python``: an interpreter with torch; it runs ``benchmarks/dcea_torch_peer.py`` (the
authors' forward and supervised step, checked against their published outputs) in the same run,
right after this project's rows, and the table gains its seconds and the speed-up.
"""

from __future__ import annotations

import json
import subprocess

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from benchmarks import common
from benchmarks.flops import dcea_conv_flops
from sparse_ae import data as data_lib
from sparse_ae.models import dcea as dcea_model
from sparse_ae.train.state import split_module
from sparse_ae.train.tasks import dcea as dcea_task

CONFIG = "configs/dcea_poisson_denoise.py"
PEER = common.REPO / "benchmarks" / "dcea_torch_peer.py"


def conv_ceiling(repeats: int) -> float:
    """GFLOP/s of a large 3×3 'SAME' convolution."""
    key = jax.random.key(0)
    x = jax.random.normal(key, (8, 128, 128, 64))
    w = jax.random.normal(key, (3, 3, 64, 64))
    conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return 2 * 8 * 128 * 128 * 64 * 64 * 9 / common.time_fn(conv, x, w, repeats=repeats) / 1e9


def measure(variant: str, fast: bool, repeats: int) -> list[dict]:
    config = common.load_config(f"{CONFIG}:{variant},shift_average=true")
    config.model.fast = fast
    config.data.batch_size = 1
    task = dcea_task.make_task(config)
    cfg = dcea_task.dcea_config(config.model, eval_mode=True)
    graphdef, _, rest = split_module(dcea_model.DCEA(cfg, rngs=nnx.Rngs(0)))
    rng = jax.random.key(0)
    crop = {"image": jax.random.uniform(rng, (1, 128, 128, 1))}
    state = jax.jit(task.init)(rng, crop)
    counts = jax.random.poisson(rng, 4.0 * jax.random.uniform(rng, (1, 256, 256, 1))).astype(jnp.float32)
    # The estimate exp(η) of Poisson counts, as the authors' forward (noise drawn outside).
    denoise = jax.jit(lambda p, y: jnp.exp(nnx.merge(graphdef, p, rest)(y).natural))
    step = jax.jit(task.train_step)
    rows = []
    for kind, fn, args, flops in (
            ("denoise 256x256", denoise, (state.params, counts), dcea_conv_flops(cfg, (256, 256))["forward"]),
            ("train step 128x128", step, (state, crop, rng), dcea_conv_flops(cfg, (128, 128))["train_step"])):
        ceiling = conv_ceiling(repeats=3)  # right before each row: the machine's load drifts
        secs = common.time_fn(fn, *args, repeats=repeats)
        rows.append({"model": f"DCEA-{'C' if variant == 'tied' else 'UC'}", "path": "patch-GEMM" if fast else "core conv",
                     "what": kind, "params": optax.tree_utils.tree_size(state.params), "seconds": round(secs, 3), "GFLOP": round(flops / 1e9, 1),
                     "GFLOP/s": round(flops / secs / 1e9, 1), "3x3 conv GFLOP/s": round(ceiling, 1),
                     "% of 3x3 conv": round(100 * flops / secs / 1e9 / ceiling, 1),
                     "unroll": "full (backend default)" if cfg.unroll is None else cfg.unroll})
    return rows


def peer_seconds(python: str, repeats: int) -> dict:
    """The PyTorch peer's median seconds per row (one process, ``python``)."""
    data = data_lib.shared_data_dir() / "dcea_official"
    command = [python, str(PEER), f"--repeats={repeats}", *([f"--check={data}"] if data.exists() else [])]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", default=None, help="a Python with torch for the authors' computation")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    rows = []
    for variant in ("tied", "untied"):
        for fast in ((True,) if args.quick else (True, False)):
            rows += measure(variant, fast, repeats)
    columns = ["model", "path", "what", "params", "seconds", "GFLOP", "GFLOP/s", "3x3 conv GFLOP/s",
               "% of 3x3 conv", "unroll"]
    peer = {}
    if args.peer_python:
        peer = peer_seconds(args.peer_python, repeats)
        for row in rows:
            theirs = peer[f"{row['model']} {row['what']}"]
            row.update({"authors' code s": round(theirs, 3), "speed-up": round(theirs / row["seconds"], 2)})
        columns += ["authors' code s", "speed-up"]
    common.print_table(rows, columns)
    if args.out:
        common.write_json(args.out, {"machine": common.machine_info(), "quick": args.quick, "rows": rows, "peer": peer})


if __name__ == "__main__":
    main()
