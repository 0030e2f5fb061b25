"""Everything a person reads: TensorBoard (clu), compact console lines, metrics.json, PNG grids.

Only process 0 writes; other processes get a writer that drops everything.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import time
from collections.abc import Mapping

import jax
import numpy as np
from absl import logging

from sparse_ae import data as data_lib
from sparse_ae.utils import images as image_lib
from sparse_ae.utils.tf_cpu import import_tensorflow

METRICS_FILE = "metrics.json"
IMAGES_DIR = "images"
MIN_SIDE = 256   # pixels: the shorter side of a saved grid, at least
# Image arrays of one split shown side by side, example by example, in one grid.
SIDE_BY_SIDE = (("inputs", "reconstructions"), ("clean", "noisy", "denoised"), ("templates", "learned"))


def create_writer(workdir: str | os.PathLike):
    """TensorBoard (``workdir``) writer on process 0, a silent one elsewhere; the console gets the
    compact lines of :class:`Progress` and :func:`log_evaluation` instead of every scalar."""
    import_tensorflow()  # before clu imports TensorFlow for its summary writer
    from clu import metric_writers  # pylint: disable=import-outside-toplevel

    if jax.process_index() > 0:
        return metric_writers.MultiWriter([])
    return metric_writers.AsyncMultiWriter([metric_writers.SummaryWriter(os.fspath(workdir))])


def _clock(seconds: float) -> str:
    """``h:mm:ss``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class Progress:
    """Training speed and the console line of each log step:
    ``step 200/2000 · loss 0.0136 (recon 0.0025, l1 0.0111) · 25.1 steps/s · ETA 0:01:12``."""

    def __init__(self, num_steps: int, step: int):
        self.num_steps = num_steps
        self.since = (step, time.monotonic())

    def steps_per_second(self, step: int) -> float:
        """Steps per second since the previous call (or the start)."""
        previous, then = self.since
        self.since = (step, time.monotonic())
        return (step - previous) / max(self.since[1] - then, 1e-9)

    def line(self, step: int, means: Mapping[str, float], rate: float) -> str:
        """The line for ``means`` (the train metrics' window means, keys without ``train/``)."""
        terms = ", ".join(f"{key.removeprefix('loss/')} {value:.4g}" for key, value in means.items()
                          if key.startswith("loss/"))
        loss = f"loss {means['loss']:.4g}" + (f" ({terms})" if terms else "") if "loss" in means else terms
        eta = _clock((self.num_steps - step) / rate) if rate > 0 else "?"
        return f"step {step}/{self.num_steps} · {loss} · {rate:.3g} steps/s · ETA {eta}"


def log_evaluation(step: int, scalars: Mapping[str, float]) -> None:
    """One console line of the evaluation's scalars (``<split>/step`` left out)."""
    shown = {k: v for k, v in sorted(scalars.items()) if not k.endswith("/step")}
    logging.info("evaluation at step %d: %s", step, " · ".join(f"{k} {v:.4g}" for k, v in shown.items()))


def flatten_config(config) -> dict[str, object]:
    """``{"optim.lr": 0.001, ...}`` with sequences as strings (for hparams), without the ``data``
    sub-sections of sources the run does not read (``data_lib.SOURCE_SECTIONS``)."""
    config = config.to_dict()
    unread = [key for key, source in data_lib.SOURCE_SECTIONS.items() if config["data"]["name"] != source]
    config["data"] = {key: value for key, value in config["data"].items() if key not in unread}
    flat: dict[str, object] = {}

    def visit(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                visit(value, name + ".")
            else:
                flat[name] = value if isinstance(value, (bool, int, float, str)) else str(value)

    visit(config, "")
    return flat


def compose(images: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The grids a person opens, from the evaluators' and the task's ``{name: (N, h, w, C)}`` arrays.

    One-pixel-high single-channel arrays (1-D signals such as DCEA's templates) are drawn as line
    plots. Arrays of one prefix that belong together (:data:`SIDE_BY_SIDE`, e.g. ``test/inputs``
    and ``test/reconstructions``) become one grid named by joining theirs
    (``test/inputs_reconstructions``), each example beside its counterparts. Every grid is upscaled
    to at least :data:`MIN_SIDE` pixels on its shorter side."""
    panels = {}
    for name, array in images.items():
        array = np.asarray(array)
        is_signal = array.ndim == 4 and array.shape[1] == 1 and array.shape[-1] == 1
        panels[name] = image_lib.plot_lines(array[:, 0, :, 0]) if is_signal else array
    grids = {}
    for prefix in sorted({name.rpartition("/")[0] for name in panels}):
        for group in SIDE_BY_SIDE:
            names = [f"{prefix}/{part}" if prefix else part for part in group]
            arrays = [panels[name] for name in names if name in panels]
            if len(arrays) < len(group) or len({a.shape for a in arrays}) > 1:
                continue
            for name in names:
                del panels[name]
            interleaved = np.stack(arrays, axis=1).reshape(-1, *arrays[0].shape[1:])
            per_row = len(group) * math.ceil(math.sqrt(len(arrays[0]) / len(group)))
            grids[f"{prefix}/{'_'.join(group)}" if prefix else "_".join(group)] = image_lib.tile(interleaved, per_row)
    grids.update({name: image_lib.tile(array) for name, array in panels.items()})
    return {name: image_lib.upscale(grid, MIN_SIDE) for name, grid in grids.items()}


def write_images(writer, workdir: str | os.PathLike, step: int, images: Mapping[str, np.ndarray]) -> None:
    """The :func:`compose`\ d grids, as the same 8-bit pixels, to the writer (TensorBoard), to
    ``images/step_<step>/<name>.png`` (one folder per evaluation) and, as the latest, to
    ``images/<name>.png``."""
    if not images:
        return
    grids = {name: image_lib.to_uint8(grid) for name, grid in compose(images).items()}
    writer.write_images(step, {name: grid[None] for name, grid in grids.items()})
    if jax.process_index() == 0:
        latest = pathlib.Path(workdir) / IMAGES_DIR
        at_step = latest / f"step_{step}"
        at_step.mkdir(parents=True, exist_ok=True)
        for name, grid in grids.items():
            filename = f"{name.replace('/', '_')}.png"
            image_lib.save_png(at_step / filename, grid)
            shutil.copyfile(at_step / filename, latest / filename)


def update_metrics_json(workdir: str | os.PathLike, scalars: Mapping[str, float]) -> dict[str, float]:
    """Merges ``scalars`` into ``workdir/metrics.json`` (atomic replace); returns the result."""
    path = pathlib.Path(workdir) / METRICS_FILE
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics.update({k: float(v) for k, v in scalars.items()})
    if jax.process_index() == 0:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
    return metrics
