"""Offline Fréchet distance of generated images in the features of a small digits classifier.

The classifier (:mod:`sparse_ae.models.digits_classifier`) is read from
``config.frechet_digits.classifier`` = DIR, a folder made by ``python -m
sparse_ae.tools.train_digits_classifier --out DIR``; left empty (the default), it is the default
classifier for ``config.data.image_size``, trained on first use (about 20 s) and cached
(:func:`sparse_ae.evaluators._digits_classifier_training.default_classifier`). Per split, the
real images (``batch["image"]``) and the task's ``"samples"`` (one per real example;
``"reconstruction"`` when there are none) are embedded; scalars: ``<split>/frechet_digits`` =
Fréchet distance of the two Gaussian fits (:func:`sparse_ae.evaluators.fid.frechet_distance`),
``<split>/digits_score`` = the Inception-Score formula with the classifier's class probabilities
(10 = every class equally often and each sample confidently classified).

``config.frechet_digits.outputs`` = a tuple of ``eval_step`` output names scores each of them
instead, keyed by name: ``<split>/frechet_digits_<name>`` and ``<split>/digits_score_<name>`` (e.g.
CTRL's ``("reconstruction", "samples")``: x̂ against x, and class-conditional samples against x).
"""

from __future__ import annotations

import functools

import jax
import ml_collections
import numpy as np
from flax import nnx

from sparse_ae.evaluators import _digits_classifier_training, eval_outputs
from sparse_ae.evaluators.fid import frechet_distance, gaussian_stats, inception_score
from sparse_ae.models import digits_classifier


def classifier_setting(config) -> str:
    """``config.frechet_digits.classifier``: a folder, or "" for the default classifier."""
    return config.get("frechet_digits", ml_collections.ConfigDict()).get("classifier", "")


def outputs_setting(config) -> tuple[str, ...]:
    """``config.frechet_digits.outputs``: eval_step outputs scored by name, or () for the default."""
    return tuple(config.get("frechet_digits", ml_collections.ConfigDict()).get("outputs", ()))


def classifier_dir(config) -> str:
    """The configured classifier's folder, else the default one's (trained and cached on first use)."""
    folder = classifier_setting(config)
    return folder or str(_digits_classifier_training.default_classifier(config.data.image_size))


def validate_config(config) -> None:
    """Checks a given folder against ``config.data.image_size``; with none, only that the default
    classifier can take that size (nothing is trained here)."""
    folder = classifier_setting(config)
    if not folder:
        digits_classifier.check_image_size(config.data.image_size, "config.data.image_size")
        return
    _, meta = digits_classifier.load(folder)
    if meta["image_size"] != config.data.image_size:
        raise ValueError(f"config.frechet_digits.classifier={folder!r} was trained on {meta['image_size']}px digits "
                         f"but config.data.image_size={config.data.image_size}; train one with --image_size="
                         f"{config.data.image_size}, or leave it empty for the default one")


@functools.lru_cache(maxsize=4)
def embedder(folder: str):
    """Jitted (images (B, S, S, C)) -> (features (B, d), class probabilities (B, 10))."""
    graphdef, state = nnx.split(digits_classifier.load(folder)[0])

    @jax.jit
    def embed(images):
        net = nnx.merge(graphdef, state)
        features = net.features(images)
        return features, jax.nn.softmax(net.logits(features), axis=-1)

    return embed


def frechet(embed, real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance of two image sets (N, S, S, C) in the classifier's feature space."""
    return frechet_distance(*gaussian_stats(np.asarray(embed(real)[0])), *gaussian_stats(np.asarray(embed(fake)[0])))


def _scored(outputs: dict, names: tuple[str, ...], task_name: str) -> dict[str, str]:
    """{scalar suffix: output name}: the named outputs, or by default "samples" else "reconstruction"."""
    wanted = {f"_{n}": n for n in names} or {"": "samples" if "samples" in outputs else "reconstruction"}
    missing = sorted(set(wanted.values()) - set(outputs))
    if missing:
        raise ValueError(f"evaluator 'frechet_digits' needs eval_step output(s) {missing} (config.frechet_digits."
                         f"outputs={names!r}); task {task_name!r} returned {sorted(outputs)}")
    return wanted


def evaluate(task, state, datasets, config):
    embed = embedder(classifier_dir(config))
    scalars = {}
    for split, make_iterator in datasets.items():
        real, fakes = [], {}
        for batch, outputs in eval_outputs(task, state, make_iterator):
            real.append(batch["image"])
            for suffix, key in _scored(outputs, outputs_setting(config), config.task).items():
                fakes.setdefault(suffix, []).append(np.clip(outputs[key], 0.0, 1.0))
        real_all = np.concatenate(real)
        for suffix, fake in fakes.items():
            fake_all = np.concatenate(fake)
            scalars[f"{split}/frechet_digits{suffix}"] = frechet(embed, real_all, fake_all)
            scalars[f"{split}/digits_score{suffix}"] = inception_score(np.asarray(embed(fake_all)[1]))[0]
    return scalars, {}
