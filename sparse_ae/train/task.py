"""The task contract: how a method plugs into the generic training loop.

A task is one module ``sparse_ae/train/tasks/<name>.py`` selected by ``config.task = "<name>"``.
It defines

    def make_task(config: ml_collections.ConfigDict) -> Task: ...
    def config_sections(config) -> dict[str, type]: ...  # optional: the frozen dataclass of each
                                               # of its sections ({"model": ModelConfig}); a
                                               # config file sets only what differs from them
    def validate_config(config) -> None: ...   # optional: raise ValueError/TypeError naming the
                                               # field (e.g. "config.model.num_atoms"), called
                                               # before anything compiles

and nothing else is registered anywhere: :func:`get_task` imports the module by name.

``Task`` holds pure functions; the loop jits them (explicit shardings, donated state), so they
must be traceable and free of Python side effects:

- ``init(rng, example_batch) -> state``. ``example_batch`` is a real global training batch
  (``{"image": (B, H, W, C) float32 in [0, 1], "label": (B,) int32, ...}``), so a task may
  initialise from data. ``state`` is a pytree with an integer scalar ``state.step`` (the loop
  folds the PRNG key with it and reads it on resume); normally a
  :class:`sparse_ae.train.state.TrainState`.
- ``train_step(state, batch, rng) -> (state, metrics)``. ``rng`` is already folded with
  ``state.step``. ``metrics`` is a flat ``dict[str, scalar array]``; name loss terms
  ``"loss"`` (the total) and ``"loss/<term>"`` so a NaN/Inf is reported by term, plus e.g.
  ``"norm/grad"`` (see :func:`sparse_ae.train.state.global_norms`), ``"sparsity/z"``. A
  two-player game does both players' updates here.
- ``eval_step(state, batch) -> dict[str, array]``: per-example outputs with leading axis B,
  e.g. ``"reconstruction"`` (B, H, W, C), ``"code"``, ``"features"`` (B, d). Evaluators in
  ``sparse_ae/evaluators`` consume these (padded examples are dropped with ``batch["valid"]``).
  ``"target"`` overrides ``batch["image"]`` as the reference of reconstruction metrics.
- ``images(state, batch) -> dict[str, array]`` (optional): pictures worth looking at that are
  not per-example outputs, e.g. ``{"atoms": (M, k, k, C)}`` or samples; arrays of shape
  (N, h, w, C) with values in [0, 1] (the writer tiles them into a grid).
- ``dictionary(state) -> array`` (optional): the learned decoder dictionary, for evaluators that
  compare atoms (e.g. ``dictionary_recovery``); its layout is the task's to document (DCEA:
  the synthesis kernel (1, K, M, 1) of 1-D signals). Evaluators read this capability, never
  ``state.params`` directly.
- ``state_sharding(abstract_state, mesh) -> pytree of jax.sharding.Sharding`` (optional):
  how state leaves lie on the mesh; default replicated on every device. Batches are always
  sharded over the mesh's ``"data"`` axis.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import jax

Batch = Mapping[str, jax.Array]
State = Any
Metrics = dict[str, jax.Array]

TASKS_PACKAGE = "sparse_ae.train.tasks"


@dataclasses.dataclass(frozen=True)
class Task:
    """Pure functions of one method; see the module docstring for the contract."""

    init: Callable[[jax.Array, Batch], State]
    train_step: Callable[[State, Batch, jax.Array], tuple[State, Metrics]]
    eval_step: Callable[[State, Batch], dict[str, jax.Array]]
    images: Callable[[State, Batch], dict[str, jax.Array]] | None = None
    dictionary: Callable[[State], jax.Array] | None = None
    state_sharding: Callable[[State, jax.sharding.Mesh], Any] | None = None


def available_tasks() -> list[str]:
    """Names of the task modules in ``sparse_ae/train/tasks``."""
    package = importlib.import_module(TASKS_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def task_module(name: str):
    """Imports ``sparse_ae.train.tasks.<name>``; a clear ValueError for an unknown name."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"config.task must name a task module; available: {available_tasks()}")
    if name not in available_tasks():
        raise ValueError(
                f"config.task={name!r} is not a task module in {TASKS_PACKAGE}; available: "
                f"{available_tasks()}. Add sparse_ae/train/tasks/{name}.py defining make_task(config).")
    module = importlib.import_module(f"{TASKS_PACKAGE}.{name}")
    if not callable(getattr(module, "make_task", None)):
        raise ValueError(f"task module {module.__name__} defines no make_task(config)")
    return module


def get_task(config) -> Task:
    """Builds the task named by ``config.task`` via its module's ``make_task(config)``."""
    task = task_module(config.task).make_task(config)
    if not isinstance(task, Task):
        raise TypeError(f"make_task of task {config.task!r} returned {type(task).__name__}, not Task")
    return task
