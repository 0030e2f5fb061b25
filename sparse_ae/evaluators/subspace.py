"""Nearest-subspace classification of learned features (as CTRL / MCR² evaluate).

For each class j, the principal subspace U_j of the *training* features of class j: the top
``NUM_COMPONENTS`` right singular vectors of the (uncentred) n_j × d feature matrix — CTRL's
``TruncatedSVD`` fit, computed exactly here. A feature z is assigned to the class with the
smallest residual ‖(I − U_j U_jᵀ) z‖₂. Fit on split ``"train"``, scored on every split of
``config.eval.splits`` (``<split>/subspace_acc``); needs ``eval_step`` outputs ``"features"``
and batches with ``"label"``.
"""

from __future__ import annotations

import numpy as np

from sparse_ae.evaluators import fitted_accuracy, require_split

NUM_COMPONENTS = 10
FIT_SPLIT = "train"


def fit_subspaces(features: np.ndarray, labels: np.ndarray, num_components: int = NUM_COMPONENTS
                  ) -> dict[int, np.ndarray]:
    """{class: U (d, r)} with r = min(num_components, n_j, d) orthonormal columns."""
    check_features(features, labels)
    bases = {}
    for j in np.unique(labels):
        _, _, vt = np.linalg.svd(features[labels == j].astype(np.float64), full_matrices=False)
        bases[int(j)] = vt[:num_components].T
    return bases


def predict(bases: dict[int, np.ndarray], features: np.ndarray) -> np.ndarray:
    """Class of the nearest subspace for each row of ``features`` (n, d)."""
    classes = sorted(bases)
    z = features.astype(np.float64)
    residuals = [np.linalg.norm(z - (z @ bases[j]) @ bases[j].T, axis=1) for j in classes]
    return np.asarray(classes)[np.argmin(np.stack(residuals), axis=0)]


def check_features(features: np.ndarray, labels: np.ndarray) -> None:
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (n, d) with one label each; got {features.shape} and {labels.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features hold NaN/Inf: the encoder diverged (see the training metrics "
                         "features/norm and loss/*)")


def validate_config(config) -> None:
    require_split(config, "subspace", FIT_SPLIT, "fits class subspaces on")


def accuracy(bases: dict[int, np.ndarray], features: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``features`` whose nearest subspace is their label's."""
    check_features(features, labels)
    return float(np.mean(predict(bases, features) == labels))


def evaluate(task, state, datasets, config):
    del config
    return fitted_accuracy(task, state, datasets, "subspace", FIT_SPLIT, fit_subspaces, accuracy), {}
