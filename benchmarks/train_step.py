"""Train-step compile and step time on 1 vs 8 fake CPU devices, and input-pipeline headroom.

    python -m benchmarks.train_step [--quick] [--out=benchmarks/results/train_step.json]

For each config (quick: csc_ae; full: every ``configs/*.py``) and device count, a fresh
process builds the run exactly as ``sparse_ae.main`` does and reports:
- trace / lower / backend-compile seconds of the first ``train_step`` call;
- steady step time (mean over the timed steps) with ``jax.transfer_guard("disallow")`` on
  (an implicit host<->device transfer would raise) and the number of compilations after
  the first step (must be 0: no recompilation);
- input pipeline throughput (batches/s, ``benchmarks.input_pipeline.pipeline_throughput``)
  and its ratio to the train step's consumption (steps/s): > 1 means the pipeline is not
  the bottleneck.
On fake CPU devices 8-way data parallelism is not faster (same 2 cores); the point is that
the compiled program and the absence of host round-trips are the same.
"""

from __future__ import annotations

import json
import sys
import time

import jax

from benchmarks import common
from benchmarks.input_pipeline import pipeline_throughput
from sparse_ae.train import loop, sharding, validation

DEVICE_COUNTS = (1, 8)
WORKER_TIMEOUT_S = 300


def measure(spec: str, steps: int, pipeline_batches: int, budget_s: float) -> dict:
    """Runs in a worker process (device count fixed by XLA_FLAGS); returns the measurements.

    Times up to ``steps`` steps, stopping early (after at least 2) once ``budget_s`` seconds
    have passed, so that heavy configs stay affordable on a CPU.
    """
    events: dict[str, list[float]] = {}
    jax.monitoring.register_event_duration_secs_listener(
            lambda name, secs, **_: events.setdefault(name, []).append(secs))
    config = common.load_config(spec)
    try:
        validation.validate_run(config, num_devices=jax.device_count(), process_count=jax.process_count())
    except ValueError as err:  # e.g. a batch that does not split over 8 devices
        return {"config": spec, "devices": jax.device_count(), "note": f"skipped: {err}"[:100]}
    dataset = loop.build_dataset(config, config.train.split, train=True, batch_size=config.data.batch_size)
    run = loop.build_run(config, next(iter(dataset)))
    iterator = iter(dataset)
    with jax.set_mesh(run.mesh):
        rng = jax.device_put(jax.random.key(config.seed), sharding.replicated(run.mesh))
        state = run.init(rng, run.global_batch(next(iterator)))
        batch = run.global_batch(next(iterator))
        jax.block_until_ready((state, batch))
        events.clear()
        with jax.transfer_guard("disallow"):
            start = time.perf_counter()
            state, metrics, _ = run.train_step(state, batch, rng)
            jax.block_until_ready((state, metrics))
            first_call = time.perf_counter() - start
            first = {k: sum(v) for k, v in events.items()}
            events.clear()
            done, step_s = common.time_steps(run.train_step, state, (batch, rng), steps, budget_s)
        recompiles = len(events.get("/jax/core/compile/backend_compile_duration", []))
    pipeline_batches_per_s = pipeline_throughput(config.data, config.data.batch_size, pipeline_batches) / \
        config.data.batch_size
    return {
            "config": spec, "devices": jax.device_count(), "batch_size": config.data.batch_size,
            "trace_s": first.get("/jax/core/compile/jaxpr_trace_duration", 0.0),
            "lower_s": first.get("/jax/core/compile/jaxpr_to_mlir_module_duration", 0.0),
            "compile_s": first.get("/jax/core/compile/backend_compile_duration", 0.0),
            "first_call_s": first_call, "timed_steps": done, "step_ms": 1e3 * step_s, "steps_per_s": 1.0 / step_s,
            "recompiles_after_first": recompiles, "transfer_guard": "disallow",
            "pipeline_batches_per_s": pipeline_batches_per_s, "pipeline_over_step": pipeline_batches_per_s * step_s,
            "note": "",
    }


def run_worker(spec: str, devices: int, steps: int, pipeline_batches: int, budget_s: float) -> dict:
    """:func:`measure` in a fresh process with ``devices`` fake CPU devices (a failure is a row note)."""
    return {"config": spec, "devices": devices,
            **common.run_worker("benchmarks.train_step", [spec, steps, pipeline_batches, budget_s], devices,
                                WORKER_TIMEOUT_S)}


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="*", default=None,
                        help="config specs (default: configs/csc_ae.py; without --quick every configs/*.py)")
    args = parser.parse_args()
    specs = args.configs or (["configs/csc_ae.py"] if args.quick
                             else [f"configs/{p.name}" for p in sorted((common.REPO / "configs").glob("*.py"))])
    steps, pipeline_batches, budget_s = (10, 20, 10.0) if args.quick else (50, 100, 30.0)
    rows = [run_worker(spec, devices, steps, pipeline_batches, budget_s)
            for spec in specs for devices in DEVICE_COUNTS]
    columns = ["config", "devices", "batch_size", "trace_s", "lower_s", "compile_s", "timed_steps", "step_ms",
               "recompiles_after_first", "pipeline_batches_per_s", "pipeline_over_step", "note"]
    common.print_table(rows, columns)
    if args.out:
        common.write_json(args.out,
                          {"machine": common.machine_info(), "quick": args.quick, "max_steps": steps,
                           "budget_s": budget_s, "rows": rows})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        spec_arg, steps_arg, batches_arg, budget_arg = sys.argv[2:6]
        print(json.dumps(measure(spec_arg, int(steps_arg), int(batches_arg), float(budget_arg))))
    else:
        main()
