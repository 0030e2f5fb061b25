"""Evaluate a trained workdir: ``python -m sparse_ae.evaluate --workdir=DIR [--images=FOLDER]
[--split=test,...] [--step=N] [--config.eval.num_batches=0 ...]``.

Restores the newest good (or the given) checkpoint, runs the config's evaluators, prints a
table and merges the scalars into ``DIR/metrics.json``. ``--images`` evaluates on every image of
a folder of your own (the ``image_folder`` source, shorter side resized to the run's image size
and centre-cropped; full size for the Poisson-denoising protocol).
The run's config is read from ``DIR/config.json``; ``--config.<field>=...`` overrides fields.
"""

from __future__ import annotations

import json
import pathlib

import ml_collections
from absl import app, flags

from sparse_ae.train import config_files
from sparse_ae.utils import distributed, log

_WORKDIR = flags.DEFINE_string("workdir", None, "a training workdir (holds config.json and checkpoints/)")
_IMAGES = flags.DEFINE_string("images", None, "evaluate on this folder of images instead of the config's data")
_SPLIT = flags.DEFINE_list("split", None, "comma-separated splits (default: config.eval.splits)")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step to restore (default: newest good one)")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "initialise jax.distributed (multi-process / multi-host)")
flags.mark_flags_as_required(["workdir"])

IMAGE_FOLDER_SPLIT = "all"


def load_config(workdir: str, overrides: list[str]) -> ml_collections.ConfigDict:
    """The run's ``config.json`` (a field added to the framework since the run at its default)
    with ``--config.a.b=value`` overrides applied."""
    path = pathlib.Path(workdir) / "config.json"
    if not path.exists():
        raise ValueError(f"--workdir={workdir!r} has no config.json: is it a sparse_ae training workdir?")
    config = config_files.complete(ml_collections.ConfigDict(json.loads(path.read_text())))
    for item in overrides:
        key, sep, text = item[len("--config."):].partition("=")
        if not sep:
            raise ValueError(f"{item}: expected --config.<field>=<value>")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        parent = config
        *parents, leaf = key.split(".")
        for name in parents:
            parent = parent[name]
        if leaf not in parent:
            raise ValueError(f"{item}: config has no field {key}")
        parent[leaf] = value
    return config


def format_table(scalars: dict[str, float]) -> str:
    width = max(map(len, scalars), default=6)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ----------"]
    lines += [f"{name:<{width}}  {value:.6g}" for name, value in sorted(scalars.items())]
    return "\n".join(lines)


def restore_run(config, workdir: str, step: int | None = None):
    """``(run, state, step)``: the run built for ``config`` (validated first) and the state of
    ``workdir``'s newest good checkpoint, or of ``step``."""
    import jax  # pylint: disable=import-outside-toplevel  # after distributed init

    from sparse_ae.train import checkpointing, loop, validation  # pylint: disable=import-outside-toplevel

    validation.validate_run(config, num_devices=jax.device_count(), process_count=jax.process_count())
    train_data = loop.build_dataset(config, config.train.split, train=True, batch_size=config.data.batch_size)
    run = loop.build_run(config, next(iter(train_data)))
    checkpointer = checkpointing.Checkpointer(workdir, config.train.keep_checkpoints)
    try:
        with jax.set_mesh(run.mesh):
            restored = checkpointer.restore(run.abstract_state, step=step)
    finally:
        checkpointer.close()
    if restored is None:
        raise ValueError(f"--workdir={workdir!r} has no checkpoint to evaluate")
    return run, *restored


def run_evaluation(config, workdir: str, splits: list[str] | None, step: int | None) -> dict[str, float]:
    """Restores ``workdir``'s checkpoint and runs the evaluators; writes metrics.json."""
    import jax  # pylint: disable=import-outside-toplevel  # after distributed init

    from sparse_ae.train import loop, writers  # pylint: disable=import-outside-toplevel

    run, state, restored_step = restore_run(config, workdir, step)
    writer = writers.create_writer(workdir)
    try:
        with jax.set_mesh(run.mesh):
            datasets = loop.eval_datasets(run, splits or config.eval.splits)
            return loop.evaluate(run, state, datasets, workdir, restored_step, writer)
    finally:
        writer.close()


def main(argv: list[str]) -> None:
    overrides = [a for a in argv[1:] if a.startswith("--config.")]
    if len(overrides) != len(argv) - 1:
        raise app.UsageError(f"unexpected arguments: {[a for a in argv[1:] if a not in overrides]}")
    log.quiet_libraries()
    distributed.maybe_initialize(_DISTRIBUTED.value)
    config = load_config(_WORKDIR.value, overrides)
    splits = _SPLIT.value
    if _IMAGES.value is not None:
        config.data.name = "image_folder"
        config.data.path = _IMAGES.value
        config.data.fit = "resize"
        config.eval.num_batches = 0   # every image of the folder
        splits = [IMAGE_FOLDER_SPLIT]
    scalars = run_evaluation(config, _WORKDIR.value, splits, _STEP.value)
    print(format_table(scalars))


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
