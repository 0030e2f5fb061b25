"""Everything a person reads: clu writers (console + TensorBoard), metrics.json, PNG grids.

Only process 0 writes; other processes get a writer that drops everything.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping

import jax
import numpy as np

from sparse_ae.utils import images as image_lib
from sparse_ae.utils.tf_cpu import import_tensorflow

METRICS_FILE = "metrics.json"
IMAGES_DIR = "images"


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


def write_images(writer, workdir: str | os.PathLike, step: int, images: Mapping[str, np.ndarray]) -> None:
    """Each (N, h, w, C) array as one tiled grid: to the writer and ``images/<name>.png``."""
    if not images:
        return
    grids = {name: image_lib.tile(array) for name, array in images.items()}
    writer.write_images(step, {name: grid[None] for name, grid in grids.items()})
    if jax.process_index() == 0:
        folder = pathlib.Path(workdir) / IMAGES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, grid in grids.items():
            image_lib.save_png(folder / f"{name.replace('/', '_')}.png", grid)


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
