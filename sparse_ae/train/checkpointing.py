"""Orbax checkpoints of (state, data iterator) in ``workdir/checkpoints``.

Each checkpoint step holds two items: ``state`` (the task's state pytree, every process
writing its shards) and ``data`` (the grain iterator state, one JSON file per process), so
a resumed run sees exactly the examples an uninterrupted run would have seen. Saves are
asynchronous; :meth:`Checkpointer.close` waits for them.

Restore walks the steps from the newest: a checkpoint that fails to restore (truncated or
corrupt files) is skipped with a warning in favour of the previous one and, once an older one
has restored, moved unchanged to ``workdir/checkpoints_corrupt/<step>`` so that it is never
overwritten or garbage-collected. If no checkpoint restores (e.g. the config changed the
state's shapes) nothing is moved and the errors are raised.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

CHECKPOINT_DIR = "checkpoints"
CORRUPT_DIR = "checkpoints_corrupt"


def _all_processes_ok(ok: bool) -> bool:
    """True iff ``ok`` on every process (so all processes take the same branch)."""
    if jax.process_count() == 1:
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def saved_steps(workdir: str | os.PathLike) -> list[int]:
    """Steps of the finished checkpoints in ``workdir`` (sorted), read without creating anything."""
    directory = pathlib.Path(workdir) / CHECKPOINT_DIR
    names = [p.name for p in directory.iterdir()] if directory.is_dir() else []
    return sorted(int(name) for name in names if name.isdigit())


class Checkpointer:
    """Save / restore of ``state`` and a grain ``DatasetIterator`` under ``workdir``."""

    def __init__(self, workdir: str | os.PathLike, keep: int):
        self.workdir = pathlib.Path(workdir)
        self.directory = self.workdir / CHECKPOINT_DIR
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, iterator: grain.DatasetIterator) -> None:
        """Starts an asynchronous save of ``state`` and the iterator position at ``step``."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  data=grain.checkpoint.CheckpointSave(iterator))
        self.manager.save(step, args=args, force=True)

    def reached_preemption(self, step: int) -> bool:
        """Multi-process: whether JAX's preemption sync point (SIGTERM on any host) is here."""
        return self.manager.reached_preemption(step)

    def _restore(self, step: int, abstract_state: Any, iterator: grain.DatasetIterator | None) -> Any:
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(iterator)
        return self.manager.restore(step, args=ocp.args.Composite(**items)).state

    def restore(self, abstract_state: Any, iterator: grain.DatasetIterator | None = None,
                step: int | None = None) -> tuple[Any, int] | None:
        """``(state, step)`` from ``step`` or the newest good checkpoint; None if there is none.

        ``abstract_state``: ShapeDtypeStructs carrying shardings. ``iterator`` (optional) is
        set to the saved position in place.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise ValueError(f"--step={step}: no checkpoint at that step in {self.directory}; have {sorted(steps)}")
            return self._restore(step, abstract_state, iterator), step
        failed: list[tuple[int, Exception]] = []
        for candidate in steps:
            error = None
            try:
                state = self._restore(candidate, abstract_state, iterator)
            except Exception as err:  # pylint: disable=broad-except  # any corruption shows up here
                error = err
            if _all_processes_ok(error is None):
                self._quarantine([s for s, _ in failed])
                return state, candidate
            logging.warning("checkpoint at step %d in %s could not be restored (%s: %s); trying the previous one",
                            candidate, self.directory, type(error).__name__, error)
            failed.append((candidate, error))
        if failed:
            details = "; ".join(f"step {s}: {type(e).__name__}: {e}" for s, e in failed)
            raise RuntimeError(f"no checkpoint in {self.directory} could be restored (nothing was moved or "
                               f"deleted; if the config changed the state's shapes use a new --workdir): {details}")
        return None

    def _quarantine(self, steps: list[int]) -> None:
        """Moves unreadable checkpoints aside, unchanged, out of the manager's reach."""
        if not steps:
            return
        if jax.process_index() == 0:
            target = self.workdir / CORRUPT_DIR
            target.mkdir(parents=True, exist_ok=True)
            for step in steps:
                source = self.directory / str(step)
                destination = target / str(step)
                suffix = 1
                while destination.exists():
                    destination = target / f"{step}.{suffix}"
                    suffix += 1
                source.rename(destination)
                logging.warning("skipped unreadable checkpoint %s; kept unchanged at %s", source, destination)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("sparse_ae_checkpoint_quarantine")
        self.manager.reload()

    def close(self) -> None:
        """Waits for pending asynchronous saves and releases the manager."""
        self.manager.wait_until_finished()
        self.manager.close()
