"""The generic training loop: shards, steps, checks, logs, checkpoints and evaluates any task.

It knows no method: everything method-specific comes from the task (``sparse_ae.train.task``).
Per step: one global batch (``data`` axis) -> jitted ``train_step`` with explicit in/out
shardings, donated state and the PRNG key folded with ``state.step``, run under
``jax.transfer_guard("disallow")`` so an accidental host round-trip is an error. Metrics stay
on device until a log / checkpoint / evaluation step, where the window is fetched at once,
checked for NaN/Inf (naming the step and the metric or input key) and averaged into the writer.
At most :class:`InFlight` steps are dispatched ahead of the device. With ``config.train.keep_best``
each evaluation may also save the state as the best checkpoint (``checkpointing.BestCheckpoint``).
A SIGTERM (preemption) or Ctrl-C makes the loop save a checkpoint at the next step and return.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import pathlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from sparse_ae import data as data_lib
from sparse_ae import evaluators
from sparse_ae.train import checkpointing, config_files, sharding, validation, writers
from sparse_ae.train.state import global_norms
from sparse_ae.train.task import Task, get_task



@dataclasses.dataclass(frozen=True)
class Run:
    """A task placed on a mesh: jitted functions and the shardings they use."""

    config: ml_collections.ConfigDict
    task: Task              # eval_step / images jitted for evaluators
    mesh: jax.sharding.Mesh
    init: Callable          # (rng, batch) -> state, jitted with the state's shardings
    train_step: Callable    # (state, batch, rng) -> (state, metrics, input_finite)
    abstract_state: Any     # ShapeDtypeStructs with shardings (checkpoint restore target)

    def global_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return data_lib.to_global_batch(local_batch, sharding.batch_sharding(self.mesh))


def check_workdir(workdir: str | os.PathLike) -> pathlib.Path:
    """Creates ``workdir`` and checks it is writable; ValueError naming --workdir otherwise."""
    path = pathlib.Path(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test_{jax.process_index()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"--workdir={os.fspath(workdir)!r} cannot be created or written: {err}") from err
    return path


def _per_process(batch_size: int) -> int:
    return batch_size // jax.process_count()


def build_dataset(config, split: str, *, train: bool, batch_size: int):
    """This process's share of ``split`` (grain IterDataset of local batches)."""
    return data_lib.build(config.data, split, seed=config.seed, train=train, shard_index=jax.process_index(),
                          shard_count=jax.process_count(), per_process_batch=_per_process(batch_size))


def _train_step_fn(task: Task, gather_params: jax.sharding.Sharding | None = None) -> Callable:
    """Wraps ``task.train_step``: folds the key with the step, adds generic checks and norms.

    ``gather_params``: with sharded (FSDP) state, the parameters are constrained to this
    sharding (replicated) for the step's computation, so the compiler all-gathers them once
    instead of propagating the parameter split into the activations; the new state leaves the
    step sharded again through the jit's out_shardings.
    """

    def step(state, batch, rng):
        if gather_params is not None:
            state = state.replace(params=jax.lax.with_sharding_constraint(state.params, gather_params))
        new_state, metrics = task.train_step(state, batch, jax.random.fold_in(rng, state.step))
        if hasattr(new_state, "params") and "norm/params" not in metrics:
            metrics = {**metrics, **global_norms(params=new_state.params)}
        finite = {k: jnp.all(jnp.isfinite(v)) for k, v in batch.items() if jnp.issubdtype(v.dtype, jnp.floating)}
        return new_state, metrics, finite

    return step


def _strip(batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {k: v for k, v in batch.items() if k != "valid"}


def build_run(config, example_batch: dict[str, np.ndarray]) -> Run:
    """Task, mesh and jitted functions for ``config``; ``example_batch`` is a local train batch."""
    task = get_task(config)
    mesh = sharding.make_mesh(config.mesh)
    batch_sh, repl = sharding.batch_sharding(mesh), sharding.replicated(mesh)
    example = data_lib.to_global_batch(_strip(example_batch), batch_sh)
    rng = jax.random.key(config.seed)
    abstract = jax.eval_shape(task.init, rng, example)
    state_sh = sharding.state_shardings(task, abstract, mesh, config.mesh)
    logging.info("state: %d of %d leaves sharded", *sharding.sharded_fraction(state_sh))
    init = jax.jit(task.init, in_shardings=(repl, batch_sh), out_shardings=state_sh)
    gather = repl if sharding.parse_axes(config.mesh.fsdp_axes) and hasattr(abstract, "params") else None
    train_step = jax.jit(_train_step_fn(task, gather), in_shardings=(state_sh, batch_sh, repl),
                         out_shardings=(state_sh, repl, repl), donate_argnums=0)
    eval_step = jax.jit(task.eval_step, in_shardings=(state_sh, batch_sh), out_shardings=batch_sh)
    images = None if task.images is None else jax.jit(task.images, in_shardings=(state_sh, batch_sh),
                                                      out_shardings=repl)
    jitted = dataclasses.replace(task, eval_step=eval_step, images=images)
    return Run(config, jitted, mesh, init, train_step, sharding.with_shardings(abstract, state_sh))


def eval_datasets(run: Run, splits) -> evaluators.Datasets:
    """``{split: make_iterator}`` of global eval batches (``config.eval.num_batches``, 0 = all)."""
    config = run.config
    batch_size = config.eval.batch_size or config.data.batch_size
    num = config.eval.num_batches or None

    def factory(dataset) -> Callable[[], Iterator[dict[str, jax.Array]]]:
        return lambda: (run.global_batch(b) for b in itertools.islice(iter(dataset), num))

    return {split: factory(build_dataset(config, split, train=False, batch_size=batch_size)) for split in splits}


def evaluate(run: Run, state, datasets: evaluators.Datasets, workdir, step: int, writer) -> dict[str, float]:
    """Runs the evaluators; writes scalars, images and ``metrics.json``; returns the scalars."""
    scalars, images = evaluators.evaluate_all(run.task, state, datasets, run.config)
    scalars.update({f"{split}/step": step for split in datasets})
    writer.write_scalars(step, scalars)
    writers.write_images(writer, workdir, step, images)
    writers.update_metrics_json(workdir, scalars)
    writers.log_evaluation(step, scalars)
    writer.flush()
    return scalars


class InFlight:
    """Bounds how many dispatched train steps may be unfinished at once.

    XLA:CPU runs every device's share of a step on one shared thread pool; with several
    devices and many queued steps, a collective can wait for a participant whose thread is
    stuck behind later steps (a rendezvous timeout that aborts the process, seen with 8 fake
    devices). On CPU one step in flight; elsewhere two, which still overlaps host work (next
    batch, dispatch) with the running step.
    """

    def __init__(self, limit: int | None = None):
        self.limit = limit or (1 if jax.default_backend() == "cpu" else 2)
        self.queue: collections.deque = collections.deque()

    def add(self, outputs: Any) -> None:
        self.queue.append(outputs)
        while len(self.queue) > self.limit:
            jax.block_until_ready(self.queue.popleft())


class _Preemption:
    """SIGTERM or a first Ctrl-C (SIGINT) sets a flag: the loop saves at the next step and returns;
    a second Ctrl-C interrupts at once. Multi-process runs use JAX's preemption sync point."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, checkpointer: checkpointing.Checkpointer):
        self.checkpointer = checkpointer
        self.flag = threading.Event()
        self.signal_name = "SIGTERM"    # what stopped the run (JAX's sync point reacts to SIGTERM)
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame) -> None:
        self.flag.set()
        self.signal_name = signal.Signals(signum).name
        if signum == signal.SIGINT:   # the next Ctrl-C is a KeyboardInterrupt again
            signal.signal(signal.SIGINT, self.previous[signal.SIGINT])

    def __enter__(self):
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def reached(self, step: int) -> bool:
        if jax.process_count() == 1:
            return self.flag.is_set()
        return self.checkpointer.reached_preemption(step)


def _check_finite(pending, last_good: int | None, directory) -> list[tuple[int, dict]]:
    """Fetches (step, metrics, input_finite) triples; raises on NaN/Inf; returns (step, metrics)."""
    host = jax.device_get(pending)
    where = (f"last good checkpoint: step {last_good} in {directory}" if last_good is not None
             else "no checkpoint was written yet")
    for step, metrics, finite in host:
        bad_inputs = sorted(k for k, ok in finite.items() if not ok)
        if bad_inputs:
            raise FloatingPointError(
                    f"step {step}: the input batch (training batch {step - 1}, counting from 0) has NaN/Inf in "
                    f"key(s) {bad_inputs}; stopped before saving; {where}")
        bad = {k: float(v) for k, v in metrics.items() if not np.isfinite(v)}
        if bad:
            terms = {k: v for k, v in bad.items() if k == "loss" or k.startswith("loss/")}
            listing = lambda d: ", ".join(f"{k}={v}" for k, v in sorted(d.items()))  # noqa: E731
            others = {k: v for k, v in bad.items() if k not in terms}
            what = f"non-finite loss term(s) {listing(terms)}" if terms else "non-finite metric(s)"
            if others:
                what += f"{'; also' if terms else ''} {listing(others)}"
            raise FloatingPointError(f"step {step}: {what}; stopped before saving; {where}")
    return [(step, metrics) for step, metrics, _ in host]


def check_resume(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
    """ValueError listing the fields, if ``workdir`` holds checkpoints of a run whose ``config.json``
    differs from ``config`` in more than what a resumed run may change
    (:func:`config_files.resume_changes`); reads only, so a refused resume changes nothing."""
    saved = workdir / config_files.CONFIG_FILE
    if not saved.is_file() or not checkpointing.saved_steps(workdir):
        return
    changes = config_files.resume_changes(config_files.load(saved), config)
    if changes:
        raise ValueError(f"--workdir={os.fspath(workdir)!r} holds checkpoints of a run with another config; "
                         f"resuming it would mix two runs. Fields that differ (workdir -> now): "
                         f"{'; '.join(changes)}. Use a new --workdir, or set these fields back")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> Any:
    """Trains ``config`` (its left-out fields at their defaults) in ``workdir``, resuming from its
    newest good checkpoint; returns the state. A resume with a changed config is refused
    (:func:`check_resume`); ``config.json`` is written once the checkpoint has restored."""
    config = config_files.complete(config)
    validation.validate_run(config, num_devices=jax.device_count(), process_count=jax.process_count())
    workdir = check_workdir(workdir)
    check_resume(config, workdir)

    dataset = build_dataset(config, config.train.split, train=True, batch_size=config.data.batch_size)
    run = build_run(config, next(iter(dataset)))
    logging.info("mesh %s over %d devices in %d process(es)", dict(run.mesh.shape), jax.device_count(),
                 jax.process_count())
    train_iter = iter(dataset)
    checkpointer = checkpointing.Checkpointer(workdir, config.train.keep_checkpoints, config.train.keep_best)
    try:
        with jax.set_mesh(run.mesh):
            restored = checkpointer.restore(run.abstract_state, train_iter)
            if jax.process_index() == 0:
                config_files.save(config, workdir)
            writer = writers.create_writer(workdir)
            try:
                rng = jax.device_put(jax.random.key(config.seed), sharding.replicated(run.mesh))
                if restored is None:
                    state = run.init(rng, run.global_batch(_strip(next(iter(dataset)))))
                    writer.write_hparams(writers.flatten_config(config))
                    step = 0
                else:
                    state, step = restored
                    logging.info("resumed from the checkpoint at step %d", step)
                datasets = eval_datasets(run, config.eval.splits)
                state = _train(run, state, step, train_iter, rng, checkpointer, writer, datasets, workdir)
            finally:
                writer.close()
    finally:
        checkpointer.close()
    return state


def _train(run: Run, state, step: int, train_iter, rng, checkpointer, writer, datasets, workdir):
    cfg = run.config.train
    progress = writers.Progress(cfg.num_steps, step)
    pending: list = []   # device metrics not yet checked for NaN/Inf
    window: list = []    # checked host metrics since the last log line
    last_saved = checkpointer.latest_step()
    in_flight = InFlight()
    with _Preemption(checkpointer) as preemption:
        while step < cfg.num_steps:
            batch = run.global_batch(next(train_iter))
            with jax.transfer_guard("disallow"):
                state, metrics, finite = run.train_step(state, batch, rng)
            in_flight.add(metrics)
            step += 1
            pending.append((step, metrics, finite))
            last = step == cfg.num_steps
            stop = preemption.reached(step)
            save = last or stop or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
            do_eval = last or (cfg.eval_every and step % cfg.eval_every == 0)
            if save or do_eval or step % cfg.log_every == 0:
                window += _check_finite(pending, last_saved, checkpointer.directory)
                pending = []
            if step % cfg.log_every == 0 or last:
                means = {k: float(np.mean([m[k] for _, m in window])) for k in window[-1][1]}
                rate = progress.steps_per_second(step)
                writer.write_scalars(step, {**{f"train/{k}": v for k, v in means.items()}, "steps_per_sec": rate})
                logging.info("%s", progress.line(step, means, rate))
                window = []
            if save:
                checkpointer.save(step, state, train_iter)
                last_saved = step
            if do_eval:
                scalars = evaluate(run, state, datasets, workdir, step, writer)
                if checkpointer.best is not None:
                    checkpointer.best.update(step, state, train_iter, scalars)
            if stop:
                logging.warning("preempted (%s): saved the checkpoint at step %d; exiting",
                                preemption.signal_name, step)
                break
    return state
