"""Train the digits classifier of the offline Fréchet distance: ``python -m sparse_ae.tools.train_digits_classifier --out DIR``.

Trains :class:`sparse_ae.models.digits_classifier.DigitsClassifier` on the "train" split of
scikit-learn digits at ``--image_size`` (random shifts of up to ``image_size/8`` pixels as
augmentation; Adam, cross-entropy), reports the "test" split accuracy and saves
``DIR/classifier.npz`` + ``DIR/classifier.json``. Point ``config.frechet_digits.classifier`` at DIR.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sparse_ae import data as data_lib
from sparse_ae.models import digits_classifier
from sparse_ae.train.state import split_module
from sparse_ae.utils import cli


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


def train(image_size: int = 16, feature_dim: int = 64, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3,
          seed: int = 0) -> tuple[digits_classifier.DigitsClassifier, dict]:
    """The trained classifier and its metadata (accuracies, settings)."""
    x_train, y_train = load_split(image_size, "train")
    x_test, y_test = load_split(image_size, "test")
    net = digits_classifier.DigitsClassifier(image_size, feature_dim, rngs=nnx.Rngs(seed))
    graphdef, params, rest = split_module(net)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for classifier.npz / classifier.json")
    parser.add_argument("--image_size", type=int, default=16)
    parser.add_argument("--feature_dim", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with cli.mistakes_in_one_line():
        model, meta = train(args.image_size, args.feature_dim, args.steps, seed=args.seed)
        folder = digits_classifier.save(model, args.out, meta)
    print(f"digits classifier ({args.image_size}x{args.image_size}): test accuracy {meta['test_accuracy']:.4f}, "
          f"train {meta['train_accuracy']:.4f}; saved to {folder} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
