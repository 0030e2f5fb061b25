"""Train: ``python -m sparse_ae.main --config=configs/X.py[:args] --workdir=DIR [--config.a.b=v]``.

The config file's fields, with every field it leaves out at its default, can each be overridden with
``--config.<section>.<field>=value``. Re-running with the same ``--workdir`` resumes from the newest
good checkpoint. ``--distributed`` (or ``JAX_COORDINATOR_ADDRESS`` in the environment) calls
``jax.distributed.initialize()`` before anything touches a device; every process runs the same
command. A mistake (a wrong field, a missing file, a refused resume) is reported in one line
(``--verbose`` shows the traceback).
"""

from __future__ import annotations

from absl import app, flags

from sparse_ae.train import config_files
from sparse_ae.utils import cli, distributed, log

_CONFIG = config_files.define_flag("config", "experiment config file, e.g. configs/csc_ae.py:runlocal")
_WORKDIR = flags.DEFINE_string("workdir", None, "folder for checkpoints, TensorBoard events, images, metrics.json")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "initialise jax.distributed (multi-process / multi-host)")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    log.quiet_libraries()
    distributed.maybe_initialize(_DISTRIBUTED.value)
    from sparse_ae.train import loop  # pylint: disable=import-outside-toplevel  # after distributed init

    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    cli.run(main)
