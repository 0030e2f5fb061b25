"""Evaluate a trained workdir: ``python -m sparse_ae.evaluate --workdir=DIR [--images=FOLDER]
[--split=test,...] [--step=N | --best] [--config.eval.num_batches=0 ...]``.

Restores the newest good (or the given) checkpoint (``--step`` may also name the step kept in
``DIR/checkpoints_best`` by ``config.train.keep_best``; ``--best`` picks that one), runs the
config's evaluators, prints a table and merges the scalars into ``DIR/metrics.json``. ``--images``
evaluates on every image of a folder of your own (the ``image_folder`` source, shorter side
resized to the run's image size and centre-cropped; full size for the Poisson-denoising protocol).
The run's config is read from ``DIR/config.json``; ``--config.<section>.<field>=value`` overrides
fields as in training. A mistake is reported in one line (``--verbose`` shows the traceback).
"""

from __future__ import annotations

import pathlib

from absl import app, flags

from sparse_ae.train import config_files
from sparse_ae.utils import cli, distributed, log

_WORKDIR = flags.DEFINE_string("workdir", None, "a training workdir (holds config.json and checkpoints/)")
_CONFIG = config_files.define_flag("config", "the run's config (default: WORKDIR/config.json); override "
                                             "fields with --config.<section>.<field>=value")
_IMAGES = flags.DEFINE_string("images", None, "evaluate on this folder of images instead of the config's data")
_SPLIT = flags.DEFINE_list("split", None, "comma-separated splits (default: config.eval.splits)")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step to restore (default: newest good one)")
_BEST = flags.DEFINE_bool("best", False, "restore the checkpoint kept by config.train.keep_best "
                                         "(in WORKDIR/checkpoints_best)")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "initialise jax.distributed (multi-process / multi-host)")
flags.mark_flags_as_required(["workdir"])

IMAGE_FOLDER_SPLIT = "all"


def _flag_value(argv: list[str], name: str) -> str | None:
    """The value of ``--name=v`` or ``--name v`` in ``argv`` (the last one), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            value = arg.partition("=")[2]
        elif arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def parse_flags(argv: list[str]) -> list[str]:
    """Flags as :func:`cli.parse_flags` reads them, with ``--config`` defaulting to the workdir's
    ``config.json`` (so ``--config.a.b=v`` / ``--config.a.b v`` override it as in training)."""
    workdir = _flag_value(argv[1:], "workdir")
    if workdir is not None and _flag_value(argv[1:], "config") is None:
        saved = pathlib.Path(workdir) / config_files.CONFIG_FILE
        if not saved.is_file():
            cli.fail(f"--workdir={workdir!r} has no {config_files.CONFIG_FILE}: is it a sparse_ae training workdir?")
        argv = [argv[0], f"--config={saved}", *argv[1:]]
    return cli.parse_flags(argv)


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


def best_step(workdir: str) -> int:
    """The step of the checkpoint kept by ``config.train.keep_best`` in ``workdir``."""
    from sparse_ae.train import checkpointing  # pylint: disable=import-outside-toplevel

    steps = checkpointing.saved_steps(workdir, checkpointing.BEST_DIR)
    if not steps:
        raise ValueError(f"--best: --workdir={workdir!r} has no {checkpointing.BEST_DIR}/ checkpoint "
                         "(train with --config.train.keep_best=<split>/<metric>)")
    return steps[-1]


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
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    log.quiet_libraries()
    distributed.maybe_initialize(_DISTRIBUTED.value)
    config = _CONFIG.value
    splits = _SPLIT.value
    if _IMAGES.value is not None:
        config.data.name = "image_folder"
        config.data.path = _IMAGES.value
        config.data.fit = "resize"
        config.eval.num_batches = 0   # every image of the folder
        splits = [IMAGE_FOLDER_SPLIT]
    if _BEST.value and _STEP.value is not None:
        raise app.UsageError("give --step or --best, not both")
    step = best_step(_WORKDIR.value) if _BEST.value else _STEP.value
    scalars = run_evaluation(config, _WORKDIR.value, splits, step)
    print(format_table(scalars))


if __name__ == "__main__":
    cli.run(main, flags_parser=parse_flags)
