"""A small digits classifier whose penultimate features give an offline Fréchet distance.

Images (B, S, S, 1) in [0, 1] -> conv3x3(16) ReLU maxpool2 -> conv3x3(32) ReLU maxpool2 ->
linear(``feature_dim``) ReLU = features -> linear(10) = logits. Saved as ``classifier.npz``
(parameters under their state paths joined by "/") next to ``classifier.json`` (image_size,
feature_dim, test accuracy, training settings); :func:`load` checks both.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import jax
import numpy as np
from flax import nnx

NUM_CLASSES = 10
WEIGHTS_FILE = "classifier.npz"
META_FILE = "classifier.json"


def check_image_size(image_size: int, name: str = "image_size") -> None:
    """ValueError naming ``name`` unless ``image_size`` is a positive multiple of 4 (two 2× poolings)."""
    if image_size < 4 or image_size % 4:
        raise ValueError(f"{name}={image_size}: the digits classifier (of evaluator 'frechet_digits') takes "
                         "images whose size is a positive multiple of 4")


class DigitsClassifier(nnx.Module):
    def __init__(self, image_size: int, feature_dim: int = 64, *, rngs: nnx.Rngs):
        check_image_size(image_size)
        self.conv1 = nnx.Conv(1, 16, (3, 3), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, (3, 3), padding="SAME", rngs=rngs)
        self.fc = nnx.Linear((image_size // 4) ** 2 * 32, feature_dim, rngs=rngs)
        self.logits = nnx.Linear(feature_dim, NUM_CLASSES, rngs=rngs)
        self.image_size = image_size

    def features(self, x: jax.Array) -> jax.Array:
        """(B, S, S, 1) -> (B, feature_dim); RGB inputs are averaged to gray."""
        if x.shape[-1] == 3:
            x = x.mean(axis=-1, keepdims=True)
        if x.shape[1:] != (self.image_size, self.image_size, 1):
            raise ValueError(f"the digits classifier takes ({self.image_size}, {self.image_size}, 1|3) images, got "
                             f"{x.shape[1:]}; train one for this size (python -m sparse_ae.tools."
                             f"train_digits_classifier --image_size={x.shape[1]})")
        h = nnx.max_pool(jax.nn.relu(self.conv1(x)), (2, 2), (2, 2))
        h = nnx.max_pool(jax.nn.relu(self.conv2(h)), (2, 2), (2, 2))
        return jax.nn.relu(self.fc(h.reshape(h.shape[0], -1)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.logits(self.features(x))


def save(model: DigitsClassifier, directory: str | os.PathLike, meta: dict[str, Any]) -> pathlib.Path:
    """Writes ``classifier.npz`` and ``classifier.json`` into ``directory``; returns the folder."""
    folder = pathlib.Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    flat = nnx.state(model, nnx.Param).flat_state()
    np.savez(folder / WEIGHTS_FILE, **{"/".join(map(str, path)): np.asarray(v.get_value()) for path, v in flat})
    meta = {**meta, "image_size": model.image_size, "feature_dim": model.fc.out_features}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def load(directory: str | os.PathLike) -> tuple[DigitsClassifier, dict[str, Any]]:
    """The classifier saved in ``directory`` and its metadata; ValueError naming what is missing."""
    folder = pathlib.Path(directory)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / META_FILE).is_file():
        raise ValueError(f"no digits classifier in {os.fspath(folder)!r} (needs {WEIGHTS_FILE} and {META_FILE}); "
                         f"train one: python -m sparse_ae.tools.train_digits_classifier --out={os.fspath(folder)}")
    meta = json.loads((folder / META_FILE).read_text())
    model = DigitsClassifier(meta["image_size"], meta["feature_dim"], rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    with np.load(folder / WEIGHTS_FILE) as arrays:
        flat = []
        for path, var in state.flat_state():
            key = "/".join(map(str, path))
            if key not in arrays or arrays[key].shape != var.get_value().shape:
                raise ValueError(f"{os.fspath(folder / WEIGHTS_FILE)}: parameter {key} missing or mis-shaped")
            flat.append((path, arrays[key]))
    nnx.update(model, nnx.State.from_flat_path({p: jax.numpy.asarray(v) for p, v in flat}))
    return model, meta
