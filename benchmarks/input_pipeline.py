"""Input pipeline throughput (examples/s) of the training data of the default configs.

    python -m benchmarks.input_pipeline [--quick] [--out=benchmarks/results/input_pipeline.json]

Each row builds the training pipeline (``sparse_ae.data.build``, one process, the config's
``num_threads`` / ``prefetch``), takes one warm-up batch (decoding, caches, the synthesis jit)
and times the next batches: examples/s = batch size x batches / seconds. Rows: the named
cases below, then every ``configs/*.py`` at its default arguments (its data and batch size;
configs whose data is not available offline are reported as skipped). Compare with the
train step's consumption (``benchmarks/train_step.py``) to check the pipeline is not the
bottleneck.
"""

from __future__ import annotations

import time

from benchmarks import common
from sparse_ae import config as config_lib
from sparse_ae import data
from sparse_ae.train import config_files

# (label, config.data fields, batch size)
CASES = (
    ("digits 16", dict(name="digits", image_size=16), 32),
    ("digits 32", dict(name="digits", image_size=32), 64),
    ("digits 32 + flip/pad-crop", dict(name="digits", image_size=32, random_flip=True, random_crop_pad=4), 64),
    ("natural_crops 64 gray", dict(name="natural_crops", image_size=64), 32),
    ("natural_crops 64 rgb", dict(name="natural_crops", image_size=64, channels=3), 32),
    ("set12 crops 64", dict(name="set12", image_size=64), 32),
    ("synthetic_csc 32", dict(name="synthetic_csc", image_size=32), 32),
    ("synthetic_csc 64 s=2 noisy", dict(name="synthetic_csc", image_size=64,
                                        csc=dict(num_atoms=32, kernel_size=8, stride=2, noise_std=0.1)), 32),
)


def pipeline_throughput(data_config, batch_size: int, num_batches: int) -> float:
    """Examples/s of the training pipeline of ``data_config`` (one process, local batch
    ``batch_size``), over ``num_batches`` batches after one warm-up batch."""
    iterator = iter(data.build(data_config, "train", seed=0, train=True, per_process_batch=batch_size))
    next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return batch_size * num_batches / (time.perf_counter() - start)


def _config_cases() -> list[tuple[str, object, int]]:
    """(label, config.data, batch size) of every config file at its default arguments; a config
    that fails to load, or has no training batches, gives (label, the error, 0)."""
    cases = []
    for path in sorted((common.REPO / "configs").glob("*.py")):
        try:
            config = config_lib.load_config_file(path)
            if not config.get("task"):   # e.g. dip_denoise: one image, its own runner
                cases.append((f"configs/{path.name}", ValueError("no config.task: not a training-loop config"), 0))
                continue
            config = config_files.complete(config)
        except Exception as err:  # pylint: disable=broad-except  # reported as a skipped row
            cases.append((f"configs/{path.name}", ValueError(f"the config does not load: {err}"), 0))
            continue
        cases.append((f"configs/{path.name}", config.data, config.data.batch_size))
    return cases


def _row(label: str, data_config, batch: int, num_batches: int) -> dict:
    row = {"case": label, "batch": batch}
    if isinstance(data_config, Exception):
        return {**row, "note": f"skipped: {data_config}"[:120]}
    try:
        cfg = data.validate_config(data_config)
    except ValueError as err:  # e.g. a TFDS dataset not prepared on this machine
        return {**row, "note": f"skipped: {err}"[:120]}
    rate = pipeline_throughput(cfg, batch, num_batches)
    return {**row, "source": cfg.name, "image_size": cfg.image_size, "channels": cfg.channels,
            "examples/s": round(rate), "batches/s": round(rate / batch, 1), "note": ""}


def main() -> None:
    args = common.base_parser(__doc__.split("\n\n")[0]).parse_args()
    num_batches = 20 if args.quick else 200
    rows = [_row(label, data_config, batch, num_batches) for label, data_config, batch in [*CASES, *_config_cases()]]
    common.print_table(rows, ["case", "source", "image_size", "channels", "batch", "examples/s", "batches/s", "note"])
    if args.out:
        common.write_json(args.out,
                          {"machine": common.machine_info(), "quick": args.quick, "num_batches": num_batches,
                           "rows": rows})


if __name__ == "__main__":
    main()
