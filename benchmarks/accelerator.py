"""Accelerator suite: rolled vs unrolled FISTA, and the train steps of CSC-CTRL, SC-VAE and DCEA
on one device: compile and step time, FLOPs, achieved TFLOP/s, MFU and peak memory.

    python -m benchmarks.accelerator --out DIR       # on a GPU: full size, at most 10 minutes
    python -m benchmarks.accelerator --quick [--peak_tflops X] [--out DIR]   # tiny sizes, runs on a CPU

Every part runs in its own worker process on this environment's first device (``JAX_PLATFORMS``
as set; the parent touches no device until the workers are done), so each model's peak memory is
its own and no process holds GPU memory another needs. A worker past its timeout (full size: FISTA
2 minutes, each model 2.5) is stopped and its row says so, which bounds a full run by 10 minutes.

1. FISTA: ``benchmarks.unroll``'s 10-step conv FISTA, forward and gradient with respect to the
   kernel, rolled (``unroll=1``), fully unrolled and at the library default on this backend
   (``solvers.resolve_unroll``: rolled on GPU/TPU, unrolled on CPU). Full size: unroll's own
   problem (batch 64 of 32×32×3, so a GPU row compares with its CPU table); quick: batch 8 of 16×16×3.
2. Train steps (``CASES``): CSC-CTRL at 128×128 (``configs/ctrl_csc.py:dataset=imagenet2012``,
   global batch 128, the paper's 1024 split over 8 devices), SC-VAE with the paper's architecture
   at 256×256 (``configs/sc_vae.py:paper``, the config's batch 16) and the DCEA Poisson denoiser
   (``configs/dcea_poisson_denoise.py``, the config's batch 4); quick: each config's ``runlocal``
   size. The run is built as ``sparse_ae.main`` builds it (``loop.build_run``: the jitted step with
   its shardings and donated state) on a random batch of the data source's shapes (floats uniform
   in [0, 1), other fields 0): no data is read, so the datasets need not be prepared. Per model:
   - ``trace_s`` / ``lower_s`` / ``compile_s`` of the step, and its first call;
   - ``step_ms``: mean of up to 100 timed steps (quick 5; fewer once 10 s, quick 3 s, have
     passed), dispatched as the training loop does, under ``jax.transfer_guard("disallow")``;
   - ``model_gflop``: 2 × the multiply-adds of every matmul and convolution in the step's jaxpr
     (forward and backward; a scan's body times its length, a linear solve its ``solve`` alone;
     only kernel taps that land on input, as XLA counts them); ``xla_gflop``: XLA's
     ``cost_analysis()`` of the compiled step (None if the backend gives none). XLA's count adds
     elementwise work but counts a while loop's body once, and a rolled scan — the GPU default
     for FISTA — compiles to one; so on a GPU it can fall far below ``model_gflop``;
   - ``tflops`` = model FLOPs / step time and ``mfu`` = tflops / peak;
   - ``peak_GiB``: the device's ``memory_stats()["peak_bytes_in_use"]`` where the backend keeps
     it (GPU, TPU: everything the worker allocated, the step's buffers at their largest),
     ``measured``; else (CPU) the compiled step's ``memory_analysis()`` (arguments + outputs +
     temporaries − donated aliases, ``benchmarks.memory.executable_bytes``), an ``estimate``.

Reading MFU: the fraction of the device's dense matmul peak that the model's matmuls and
convolutions achieve. The step runs in float32; at JAX's default precision an NVIDIA GPU runs
float32 matmuls and convolutions on TF32 tensor cores, so the peak is the TF32 rate (H100/H200
SXM: 495 TFLOP/s; BF16 would be 989, plain FP32 67); under ``jax_default_matmul_precision=highest``
it is the FP32 rate. ``PEAK_TFLOPS`` holds the rates by ``device_kind``; ``--peak_tflops``
overrides them; without either (a CPU, an unlisted device) ``mfu`` is None. Elementwise work is
not in the numerator (it runs off the tensor cores), so a step bound by memory traffic — FISTA's
thresholds, small convolutions — shows a low MFU however well it is compiled.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks import common, memory, unroll
from benchmarks.flops import model_flops
from sparse_ae import data as data_lib
from sparse_ae.train import loop, sharding

MODULE = "benchmarks.accelerator"
# name -> (config spec, global batch; 0 keeps the config's). Quick runs add ``runlocal``.
CASES = {
        "CSC-CTRL": ("configs/ctrl_csc.py:dataset=imagenet2012", 128),
        "SC-VAE paper": ("configs/sc_vae.py:paper,dataset=tfds:imagenet2012", 0),
        "DCEA Poisson": ("configs/dcea_poisson_denoise.py", 0),
}
QUICK_FISTA = (8, 16)  # batch, image size of the quick FISTA problem
# size -> (timed steps at most, seconds after which timing stops, worker timeouts: FISTA, model)
SIZES = {"quick": (5, 3.0, 300, 300), "full": (100, 10.0, 120, 150)}
# Dense (no sparsity) peak TFLOP/s of NVIDIA's datasheets by device_kind substring, first match
# wins (so "H100 PCIe" precedes "H100", whose SXM part reports "NVIDIA H100 80GB HBM3").
PEAK_TFLOPS = (
        ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),
        ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
        ("H100", {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}),
        ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
)
GIB = 2.0**30


def f32_matmul_precision() -> str | None:
    """The rate float32 matmuls run at on this backend: "tf32" on a GPU at JAX's default precision
    ("fp32" under ``jax_default_matmul_precision`` highest / float32), "bf16" on a TPU (one bf16
    pass), None on a CPU."""
    backend = jax.default_backend()
    if backend == "gpu":
        return "fp32" if jax.config.jax_default_matmul_precision in ("highest", "float32") else "tf32"
    return "bf16" if backend == "tpu" else None


def device_info() -> dict[str, Any]:
    """Backend, first device's kind and the float32 matmul precision of this process."""
    return {"backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
            "matmul_precision": f32_matmul_precision()}


def peak_tflops(device_kind: str, precision: str | None, override: float | None) -> tuple[float | None, str]:
    """(peak TFLOP/s, where it comes from): ``override`` if given, else ``PEAK_TFLOPS``, else None."""
    if override:
        return override, "--peak_tflops"
    for kind, rates in PEAK_TFLOPS:
        if kind in device_kind and precision in rates:
            return rates[precision], f"table: {kind}, {precision} dense"
    return None, f"none for {device_kind!r} at {precision}: give --peak_tflops"


def xla_flops(compiled) -> float | None:
    """FLOPs of a compiled executable by XLA's cost analysis (a dict, or a list of one per
    program in some versions); None where the backend reports none."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) and cost else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


def peak_memory(compiled) -> tuple[float | None, str]:
    """(bytes, "measured" | "estimate"): the first device's peak_bytes_in_use where it keeps one,
    else the compiled step's memory_analysis() total; (None, "unavailable") if neither exists."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return float(stats["peak_bytes_in_use"]), "measured"
    analysis = compiled.memory_analysis()
    return (None, "unavailable") if analysis is None else (float(memory.executable_bytes(analysis)), "estimate")


def random_batch(config, batch_size: int) -> dict[str, np.ndarray]:
    """A local train batch of ``config.data``'s example shapes and dtypes, leading axis
    ``batch_size``: floating fields uniform in [0, 1), every other field 0."""
    rng = np.random.default_rng(0)
    batch = {}
    for key, spec in data_lib.element_spec(config.data).items():
        shape = (batch_size, *spec.shape)
        floating = np.issubdtype(spec.dtype, np.floating)
        batch[key] = rng.random(shape).astype(spec.dtype) if floating else np.zeros(shape, spec.dtype)
    return batch


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(``fn(*args)`` with every output ready, its wall-clock seconds)."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args))
    return result, time.perf_counter() - start


def measure_fista(quick: bool) -> dict[str, Any]:
    """In a worker: ``unroll.measure`` on this device; adds the default and the fastest variants."""
    batch, size = QUICK_FISTA if quick else (unroll.BATCH, unroll.SIZE)
    rows, _, default = unroll.measure(*unroll.problem(batch=batch, size=size), repeats=3 if quick else 7)
    fastest = {what: min((r for r in rows if r["what"] == what), key=lambda r: r["median_s"])["variant"]
               for what in ("forward", "gradient")}
    return {"device": device_info(), "batch": batch, "size": size, "default_unroll": default, "fastest": fastest,
            "rows": rows}


def measure_model(spec: str, batch_size: int, max_steps: int, budget_s: float) -> dict[str, Any]:
    """In a worker: builds the run of ``spec`` (``batch_size`` 0: the config's) on a random batch,
    compiles and times its train step; FLOPs, TFLOP/s and peak memory as the module says."""
    config = common.load_config(spec)
    config.data.batch_size = batch_size or config.data.batch_size
    local = random_batch(config, config.data.batch_size)
    run = loop.build_run(config, local)
    with jax.set_mesh(run.mesh):
        rng = jax.device_put(jax.random.key(config.seed), sharding.replicated(run.mesh))
        batch = run.global_batch(local)
        state = jax.block_until_ready(run.init(rng, batch))
        traced, trace_s = _timed(run.train_step.trace, state, batch, rng)
        lowered, lower_s = _timed(traced.lower)
        compiled, compile_s = _timed(lowered.compile)
        with jax.transfer_guard("disallow"):
            (state, _, _), first_call_s = _timed(compiled, state, batch, rng)
            steps, step_s = common.time_steps(compiled, state, (batch, rng), max_steps, budget_s)
    flops, loops = model_flops(traced.jaxpr.jaxpr)
    xla = xla_flops(compiled)
    peak, source = peak_memory(compiled)
    return {"device": device_info(), "config": spec, "image": config.data.image_size, "batch": config.data.batch_size,
            "trace_s": trace_s, "lower_s": lower_s, "compile_s": compile_s, "first_call_s": first_call_s,
            "timed_steps": steps, "step_ms": 1e3 * step_s, "model_gflop": flops / 1e9,
            "xla_gflop": None if xla is None else xla / 1e9, "while_loops_with_matmuls": loops,
            "tflops": flops / step_s / 1e12, "peak_GiB": None if peak is None else peak / GIB, "memory": source,
            "note": f"{loops} while loop(s) with matmuls counted once" if loops else ""}


def quick_spec(spec: str) -> str:
    """``spec`` with the config argument ``runlocal`` added."""
    return f"{spec},runlocal" if ":" in spec else f"{spec}:runlocal"


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--peak_tflops", type=float, default=None,
                        help="peak TFLOP/s for MFU (default: PEAK_TFLOPS by device kind; none on CPU)")
    args = parser.parse_args()
    size = "quick" if args.quick else "full"
    max_steps, budget_s, fista_timeout, model_timeout = SIZES[size]
    fista = common.run_worker(MODULE, ["fista", int(args.quick)], None, fista_timeout)
    cases = {name: (quick_spec(spec), 0) if args.quick else (spec, batch) for name, (spec, batch) in CASES.items()}
    rows = [{"model": name, **common.run_worker(MODULE, ["model", spec, batch, max_steps, budget_s], None,
                                                model_timeout)}
            for name, (spec, batch) in cases.items()]
    info = next((r["device"] for r in (fista, *rows) if "device" in r), {})
    peak, peak_source = peak_tflops(info.get("device_kind", ""), info.get("matmul_precision"), args.peak_tflops)
    for row in rows:
        row["mfu"] = row["tflops"] / peak if peak and "tflops" in row else None
    title = f"{info.get('backend')} ({info.get('device_kind')}), {size} size"
    if "rows" in fista:
        common.print_table(
                f"10-step conv FISTA, batch {fista['batch']} of {fista['size']}x{fista['size']}x{unroll.CHANNELS}, "
                f"{title}: default unroll={fista['default_unroll']}; fastest {fista['fastest']}", fista["rows"])
    else:
        print(f"FISTA: {fista.get('note')}")
    common.print_table(f"Train steps, {title}; peak {peak} TFLOP/s ({peak_source})", rows,
                       ["model", "image", "batch", "compile_s", "step_ms", "model_gflop", "xla_gflop", "tflops",
                        "mfu", "peak_GiB", "memory", "note"])
    if args.out:
        common.write_json(args.out, "accelerator", {
                "quick": args.quick, "size": size, "max_steps": max_steps, "budget_s": budget_s, **info,
                "peak_tflops": peak, "peak_source": peak_source, "cases": cases, "fista": fista, "models": rows})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        if sys.argv[2] == "fista":
            print(json.dumps(measure_fista(bool(int(sys.argv[3])))))
        else:
            spec_arg, batch_arg, steps_arg, budget_arg = sys.argv[3:7]
            print(json.dumps(measure_model(spec_arg, int(batch_arg), int(steps_arg), float(budget_arg))))
    else:
        main()
