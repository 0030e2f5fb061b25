"""Training the digits classifier of the offline Fréchet distance, and the default one, cached.

:func:`train` fits :class:`sparse_ae.models.digits_classifier.DigitsClassifier` on the "train"
split of scikit-learn digits at one image size (random shifts of up to ``image_size/8`` pixels
as augmentation; Adam, cross-entropy) and measures its accuracy on both splits.
:func:`default_classifier` gives the folder of the classifier with :func:`train`'s default
settings for an image size, training and saving it on first use under :func:`cache_root`
(``digits_classifier/<S>px-f<feature_dim>-s<steps>-seed<seed>``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import nnx

from sparse_ae import data as data_lib
from sparse_ae.models import digits_classifier

CACHE_ENV = "SPARSE_AE_CACHE"
FEATURE_DIM = 64
STEPS = 2000
SEED = 0


def load_split(image_size: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All (N, S, S, 1) images and (N,) labels of a digits split, in order."""
    cfg = data_lib.DataConfig(name="digits", image_size=image_size, channels=1, batch_size=256)
    images, labels = [], []
    for batch in data_lib.build(cfg, split, seed=0, train=False, per_process_batch=256):
        valid = batch["valid"].astype(bool)
        images.append(batch["image"][valid])
        labels.append(batch["label"][valid])
    return np.concatenate(images), np.concatenate(labels)


def shift(images: jax.Array, key: jax.Array, max_shift: int) -> jax.Array:
    """Per-image translation by up to ``max_shift`` pixels in each direction, zero fill."""
    if max_shift == 0:
        return images
    pad = max_shift
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * pad + 1)
    size = images.shape[1]
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (size, size, 1)))(padded, offsets)


def train(image_size: int = 16, feature_dim: int = FEATURE_DIM, steps: int = STEPS, batch_size: int = 64,
          lr: float = 1e-3, seed: int = SEED) -> tuple[digits_classifier.DigitsClassifier, dict]:
    """The trained classifier and its metadata (accuracies, settings)."""
    x_train, y_train = load_split(image_size, "train")
    x_test, y_test = load_split(image_size, "test")
    net = digits_classifier.DigitsClassifier(image_size, feature_dim, rngs=nnx.Rngs(seed))
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    tx = optax.adam(lr)
    max_shift = max(image_size // 8, 0)

    def logits(p, x):
        return nnx.merge(graphdef, p, rest)(x)

    @jax.jit
    def step(p, opt, x, y, key):
        def loss_fn(q):
            return optax.softmax_cross_entropy_with_integer_labels(logits(q, shift(x, key, max_shift)), y).mean()
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, opt = tx.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt, loss

    accuracy = jax.jit(lambda p, x, y: jnp.mean(jnp.argmax(logits(p, x), -1) == y))
    rng = np.random.default_rng(seed)
    opt = tx.init(params)
    key = jax.random.key(seed)
    for i in range(steps):
        idx = rng.integers(0, len(x_train), batch_size)
        params, opt, _ = step(params, opt, x_train[idx], y_train[idx], jax.random.fold_in(key, i))
    meta = {"train_accuracy": float(accuracy(params, x_train, y_train)),
            "test_accuracy": float(accuracy(params, x_test, y_test)),
            "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "max_shift": max_shift}
    return nnx.merge(graphdef, params, rest), meta


def cache_root() -> pathlib.Path:
    """``$SPARSE_AE_CACHE``, else ``$XDG_CACHE_HOME/sparse_ae``, else ``~/.cache/sparse_ae``."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "sparse_ae"


def default_classifier(image_size: int, cache_dir: str | os.PathLike | None = None, *,
                       steps: int = STEPS) -> pathlib.Path:
    """The folder of the default classifier for ``image_size`` px digits under ``cache_dir``
    (default :func:`cache_root`), trained by :func:`train` and saved there on first use.

    The folder appears whole or not at all (saved beside it, then renamed); when another process
    saves it first, its copy is kept. ValueError naming the folder if what is there does not load.
    """
    folder = (pathlib.Path(cache_dir or cache_root()) / "digits_classifier"
              / f"{image_size}px-f{FEATURE_DIM}-s{steps}-seed{SEED}")
    if not folder.exists():
        logging.info("training the digits classifier for %dpx Fréchet distances (first use, ~20 s); cached in %s",
                     image_size, folder)
        model, meta = train(image_size, steps=steps)
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = digits_classifier.save(model, tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent), meta)
        try:
            os.replace(scratch, folder)
        except OSError:
            shutil.rmtree(scratch)
            if not folder.is_dir():
                raise
    try:
        digits_classifier.load(folder)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"the cached digits classifier {os.fspath(folder)!r} does not load ({err}); delete that "
                         "folder to train it again") from err
    return folder
