"""Everything a person reads: clu writers (console + TensorBoard), metrics.json, PNG grids.

Only process 0 writes; other processes get a writer that drops everything.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
from collections.abc import Mapping

import jax
import numpy as np

from sparse_ae.utils import images as image_lib
from sparse_ae.utils.tf_cpu import import_tensorflow

METRICS_FILE = "metrics.json"
IMAGES_DIR = "images"
MIN_SIDE = 256   # pixels: the shorter side of a saved grid, at least
# Image arrays of one split shown side by side, example by example, in one grid.
SIDE_BY_SIDE = (("inputs", "reconstructions"), ("clean", "noisy", "denoised"))


def create_writer(workdir: str | os.PathLike):
    """Console + TensorBoard (``workdir``) writer on process 0, a silent one elsewhere."""
    import_tensorflow()  # before clu imports TensorFlow for its summary writer
    from clu import metric_writers  # pylint: disable=import-outside-toplevel

    if jax.process_index() > 0:
        return metric_writers.MultiWriter([])
    return metric_writers.create_default_writer(os.fspath(workdir), asynchronous=True)


def flatten_config(config) -> dict[str, object]:
    """``{"optim.lr": 0.001, ...}`` with sequences as strings (for hparams)."""
    flat: dict[str, object] = {}

    def visit(node, prefix):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                visit(value, name + ".")
            else:
                flat[name] = value if isinstance(value, (bool, int, float, str)) else str(value)

    visit(config.to_dict(), "")
    return flat


def compose(images: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The grids a person opens, from the evaluators' and the task's ``{name: (N, h, w, C)}`` arrays.

    Arrays of one split that belong together (:data:`SIDE_BY_SIDE`, e.g. ``test/inputs`` and
    ``test/reconstructions``) become one grid named by joining theirs
    (``test/inputs_reconstructions``), each example beside its counterparts; one-pixel-high arrays
    (1-D signals such as DCEA's templates) are drawn as line plots; every grid is upscaled to at
    least :data:`MIN_SIDE` pixels on its shorter side."""
    images = dict(images)
    grids = {}
    for split in sorted({name.rpartition("/")[0] for name in images}):
        for group in SIDE_BY_SIDE:
            names = [f"{split}/{part}" if split else part for part in group]
            arrays = [np.asarray(images[name]) for name in names if name in images]
            if len(arrays) < len(group) or len({a.shape for a in arrays}) > 1:
                continue
            for name in names:
                del images[name]
            interleaved = np.stack(arrays, axis=1).reshape(-1, *arrays[0].shape[1:])
            per_row = len(group) * math.ceil(math.sqrt(len(arrays[0]) / len(group)))
            grids[f"{split}/{'_'.join(group)}" if split else "_".join(group)] = image_lib.tile(interleaved, per_row)
    for name, array in images.items():
        array = np.asarray(array)
        if array.ndim == 4 and array.shape[1] == 1 and array.shape[-1] == 1:
            grids[name] = image_lib.tile(image_lib.plot_lines(array[:, 0, :, 0]), num_cols=1, pad=2)
        else:
            grids[name] = image_lib.tile(array)
    return {name: image_lib.upscale(grid, MIN_SIDE) for name, grid in grids.items()}


def write_images(writer, workdir: str | os.PathLike, step: int, images: Mapping[str, np.ndarray]) -> None:
    """The :func:`compose`\ d grids: to the writer (TensorBoard), to ``images/step_<step>/<name>.png``
    (one folder per evaluation) and, as the latest, to ``images/<name>.png``."""
    if not images:
        return
    grids = compose(images)
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
