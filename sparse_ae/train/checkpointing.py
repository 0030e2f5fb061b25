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

With ``config.train.keep_best`` a second manager in ``workdir/checkpoints_best`` holds the one
checkpoint (same two items) with the best value of an evaluation scalar so far; its value is
stored with it (orbax metrics) so a resumed run keeps comparing against it. A new best is written
before the previous best is removed; the latest checkpoints are never touched, and a resumed run
restores the newest of them. ``restore(step=N)`` finds N in either directory.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from sparse_ae import config as config_lib

CHECKPOINT_DIR = "checkpoints"
CORRUPT_DIR = "checkpoints_corrupt"
BEST_DIR = "checkpoints_best"


def _all_processes_ok(ok: bool) -> bool:
    """True iff ``ok`` on every process (so all processes take the same branch)."""
    if jax.process_count() == 1:
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def saved_steps(workdir: str | os.PathLike, subdir: str = CHECKPOINT_DIR) -> list[int]:
    """Steps of the finished checkpoints in ``workdir/subdir`` (sorted), read without creating anything."""
    directory = pathlib.Path(workdir) / subdir
    names = [p.name for p in directory.iterdir()] if directory.is_dir() else []
    return sorted(int(name) for name in names if name.isdigit())


def _save_args(state: Any, iterator: grain.DatasetIterator) -> ocp.args.Composite:
    return ocp.args.Composite(state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator))


def is_better(value: float, best: float | None, maximize: bool) -> bool:
    """Whether ``value`` improves on ``best`` (None: nothing yet); NaN/Inf never does."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if maximize else value < best)


class BestCheckpoint:
    """The one checkpoint with the best ``metric`` so far, in ``workdir/checkpoints_best``."""

    def __init__(self, workdir: pathlib.Path, metric: str, maximize: bool):
        self.metric, self.maximize = metric, maximize
        self.directory = workdir / BEST_DIR
        options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=True,
                                               best_fn=lambda metrics: metrics[metric],
                                               best_mode="max" if maximize else "min",
                                               keep_checkpoints_without_metrics=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        # (step, value) of the kept checkpoint, or None; read back from its stored metrics.
        step = self.manager.best_step()
        self.kept = None if step is None else (step, float(self.manager.metrics(step)[metric]))

    def update(self, step: int, state: Any, iterator: grain.DatasetIterator, scalars: Mapping[str, float]) -> bool:
        """Saves ``state`` at ``step`` if ``scalars[metric]`` beats the kept value; whether it did.
        ValueError naming config.train.keep_best and the available scalars if ``metric`` is not one."""
        if self.metric not in scalars:
            raise ValueError(f"config.train.keep_best: the evaluators produced no scalar {self.metric!r}; "
                             f"available: {sorted(scalars)} (first evaluation, step {step})")
        value = float(scalars[self.metric])
        if self.kept is not None and self.kept[0] == step:   # a resumed run re-evaluating the kept step
            return False
        if not is_better(value, None if self.kept is None else self.kept[1], self.maximize):
            return False
        self.manager.save(step, args=_save_args(state, iterator), metrics={self.metric: value}, force=True)
        self.kept = (step, value)
        logging.info("new best %s = %.6g at step %d (kept in %s)", self.metric, value, step, self.directory)
        return True


class Checkpointer:
    """Save / restore of ``state`` and a grain ``DatasetIterator`` under ``workdir``; with
    ``keep_best`` (``config.train.keep_best``) also the best checkpoint (:class:`BestCheckpoint`)."""

    def __init__(self, workdir: str | os.PathLike, keep: int, keep_best: str = ""):
        self.workdir = pathlib.Path(workdir)
        self.directory = self.workdir / CHECKPOINT_DIR
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.best = BestCheckpoint(self.workdir, *config_lib.parse_keep_best(keep_best)) if keep_best else None

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, iterator: grain.DatasetIterator) -> None:
        """Starts an asynchronous save of ``state`` and the iterator position at ``step``."""
        self.manager.save(step, args=_save_args(state, iterator), force=True)

    def reached_preemption(self, step: int) -> bool:
        """Multi-process: whether JAX's preemption sync point (SIGTERM on any host) is here."""
        return self.manager.reached_preemption(step)

    def _restore(self, step: int, abstract_state: Any, iterator: grain.DatasetIterator | None,
                 manager: ocp.CheckpointManager | None = None) -> Any:
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(iterator)
        return (manager or self.manager).restore(step, args=ocp.args.Composite(**items)).state

    def _restore_best(self, step: int, abstract_state: Any, iterator: grain.DatasetIterator | None) -> Any:
        """Restores ``step`` from ``workdir/checkpoints_best`` (read only when keep_best is off)."""
        if self.best is not None:
            return self._restore(step, abstract_state, iterator, self.best.manager)
        reader = ocp.CheckpointManager(self.workdir / BEST_DIR, options=ocp.CheckpointManagerOptions(read_only=True))
        try:
            return self._restore(step, abstract_state, iterator, reader)
        finally:
            reader.close()

    def restore(self, abstract_state: Any, iterator: grain.DatasetIterator | None = None,
                step: int | None = None) -> tuple[Any, int] | None:
        """``(state, step)`` from ``step`` or the newest good checkpoint; None if there is none.

        ``abstract_state``: ShapeDtypeStructs carrying shardings. ``iterator`` (optional) is
        set to the saved position in place.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        if step is not None:
            if step in steps:
                return self._restore(step, abstract_state, iterator), step
            best_steps = saved_steps(self.workdir, BEST_DIR)
            if step in best_steps:
                return self._restore_best(step, abstract_state, iterator), step
            raise ValueError(f"--step={step}: no checkpoint at that step in {self.directory} (have {sorted(steps)}) "
                             f"or in {self.workdir / BEST_DIR} (have {best_steps})")
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
        """Waits for pending asynchronous saves and releases the managers."""
        for manager in [self.manager] + ([self.best.manager] if self.best else []):
            manager.wait_until_finished()
            manager.close()
