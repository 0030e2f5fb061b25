"""Fréchet distance and Inception Score, and the FID evaluator of reconstructions.

The network is the FID variant of InceptionV3 (:mod:`sparse_ae.models.inception`); its weights
come from a file you give in ``config.fid.weights`` (nothing is downloaded; that module says how
to make it). Features: the 2048-d average pool of the last block; IS uses the softmax of the
1008 logits. ``evaluate`` compares the real images of each split with their
reconstructions: ``<split>/fid`` (reconstructions vs inputs), ``<split>/is`` (reconstructions).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sparse_ae.evaluators import eval_outputs, require_weights_file
from sparse_ae.models.inception import load_weights, preprocess



# ----------------------------------------------------------------------------------- the math
def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) in float64 of (n, d) features."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need (n >= 2, d) features for a covariance, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}).

    tr (Σ1 Σ2)^{1/2} = Σ_i sqrt(λ_i(Σ1^{1/2} Σ2 Σ1^{1/2})): the eigenvalues of a symmetric PSD
    matrix (clipped at 0), which avoids the complex round-off of a general matrix square root.
    """
    mu1, mu2, s1, s2 = (np.asarray(a, np.float64) for a in (mu1, mu2, sigma1, sigma2))
    if s1.shape != s2.shape or mu1.shape != mu2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root1 @ s2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) ‖ p(y))) over ``splits`` chunks of (n, classes) probabilities: (mean, std)."""
    p = np.asarray(probs, np.float64)
    scores = []
    for chunk in np.array_split(p, min(splits, len(p))):
        marginal = chunk.mean(axis=0, keepdims=True)
        kl = np.sum(chunk * (np.log(chunk + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# ----------------------------------------------------------------------------------- evaluator
def validate_config(config) -> None:
    require_weights_file(config, "fid", "a .npz of the FID InceptionV3 weights "
                         "(see sparse_ae/models/inception.py for the one-line conversion)")


@functools.lru_cache(maxsize=2)
def _network(weights: str):
    graphdef, state = nnx.split(load_weights(weights))

    @jax.jit
    def run(images):
        return nnx.merge(graphdef, state)(preprocess(images))

    return run


def evaluate(task, state, datasets, config):
    """``<split>/fid`` of reconstructions vs inputs and ``<split>/is`` of reconstructions."""
    network = _network(config.fid.weights)
    scalars = {}
    for split, make_iterator in datasets.items():
        real, fake, probs = [], [], []
        for batch, outputs in eval_outputs(task, state, make_iterator):
            f_real, _ = network(jnp.asarray(batch["image"]))
            f_fake, logits = network(jnp.asarray(np.clip(outputs["reconstruction"], 0, 1)))
            real.append(np.asarray(f_real))
            fake.append(np.asarray(f_fake))
            probs.append(np.asarray(jax.nn.softmax(logits, axis=-1)))
        scalars[f"{split}/fid"] = frechet_distance(*gaussian_stats(np.concatenate(real)),
                                                   *gaussian_stats(np.concatenate(fake)))
        scalars[f"{split}/is"] = inception_score(np.concatenate(probs))[0]
    return scalars, {}
