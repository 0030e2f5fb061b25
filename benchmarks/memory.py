"""Per-device memory of the compiled train step of the ImageNet-scale configs on 8, 64 and 256 devices.

    python -m benchmarks.memory [--quick] [--out DIR]
    python -m benchmarks.memory --out=benchmarks/results   # the committed result

Rows: CSC-CTRL at 128×128 on imagenet2012 (``configs/ctrl_csc.py:dataset=imagenet2012``,
global batch 1024) and SC-VAE with the paper's architecture at 256×256
(``configs/sc_vae.py:paper,dataset=tfds:imagenet2012``, global batch 256), each with the state
replicated and FSDP-sharded over every device (``config.mesh.fsdp_axes="data,model"``).
Each case is lowered and compiled in a fresh process on N fake CPU devices from abstract
inputs — no data is read, so the datasets need not be prepared — and the numbers are XLA's
``memory_analysis()`` of that executable, per device: arguments (state + batch shard),
outputs, temporaries, and their sum less donated aliases. An accelerator backend lays out
and fuses differently, so read these as estimates of the split, not exact GPU/TPU figures.
``--quick``: 8 devices only.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

from benchmarks import common
from sparse_ae import data as data_lib
from sparse_ae.train import loop, sharding

CASES = {
        "CSC-CTRL 128x128": ("configs/ctrl_csc.py:dataset=imagenet2012", 1024),
        "SC-VAE paper 256x256": ("configs/sc_vae.py:paper,dataset=tfds:imagenet2012", 256),
}
STATE_SHARDING = {"replicated": "", "fsdp": "data,model"}
DEVICE_COUNTS = (8, 64, 256)
WORKER_TIMEOUT_S = 900
MIB = 2.0**20


def executable_bytes(stats) -> int:
    """Bytes a compiled executable holds on a device by its ``memory_analysis()``: arguments,
    outputs and temporaries, less the outputs that alias donated arguments."""
    return (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes)


def measure(spec: str, batch_size: int, fsdp_axes: str) -> dict:
    """In a worker process (device count fixed by XLA_FLAGS): compile the step, read its memory."""
    config = common.load_config(spec)
    config.data.batch_size = batch_size
    config.mesh.fsdp_axes = fsdp_axes  # no config_lib.validate: it would open the (absent) dataset
    local = {k: np.zeros((batch_size, *v.shape), v.dtype) for k, v in data_lib.element_spec(config.data).items()}
    run = loop.build_run(config, local)
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=sharding.batch_sharding(run.mesh))
             for k, v in local.items()}
    rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=sharding.replicated(run.mesh))
    with jax.set_mesh(run.mesh):
        stats = run.train_step.lower(run.abstract_state, batch, rng).compile().memory_analysis()
    params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(run.abstract_state.params))
    sharded, leaves = sharding.sharded_fraction(jax.tree.map(lambda x: x.sharding, run.abstract_state))
    total = executable_bytes(stats)
    return {"devices": jax.device_count(), "batch": batch_size, "per_device_batch": batch_size // jax.device_count(),
            "params_M": params / 1e6, "sharded_leaves": f"{sharded}/{leaves}",
            "arguments_MiB": stats.argument_size_in_bytes / MIB, "outputs_MiB": stats.output_size_in_bytes / MIB,
            "temp_MiB": stats.temp_size_in_bytes / MIB, "total_MiB": total / MIB, "note": ""}


def run_worker(spec: str, batch_size: int, fsdp_axes: str, devices: int) -> dict:
    """:func:`measure` in a fresh process with ``devices`` fake CPU devices (a failure is a row note)."""
    return {"devices": devices,
            **common.run_worker("benchmarks.memory", [spec, batch_size, fsdp_axes], devices, WORKER_TIMEOUT_S)}


def main() -> None:
    args = common.base_parser(__doc__.splitlines()[0]).parse_args()
    device_counts = DEVICE_COUNTS[:1] if args.quick else DEVICE_COUNTS
    rows = []
    for name, (spec, batch_size) in CASES.items():
        for state, fsdp_axes in STATE_SHARDING.items():
            for devices in device_counts:
                rows.append({"model": name, "state": state, **run_worker(spec, batch_size, fsdp_axes, devices)})
                common.print_table(rows[-1:])
    columns = ["model", "state", "devices", "per_device_batch", "params_M", "sharded_leaves", "arguments_MiB",
               "outputs_MiB", "temp_MiB", "total_MiB", "note"]
    common.print_table("Per-device memory of the compiled train step (XLA memory_analysis, fake CPU devices)",
                       rows, columns)
    if args.out is not None:
        common.write_json(args.out, "memory", {"quick": args.quick, "cases": CASES, "rows": rows})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        spec_arg, batch_arg, axes_arg = sys.argv[2:5]
        print(json.dumps(measure(spec_arg, int(batch_arg), axes_arg)))
    else:
        main()
