"""Linear-probe accuracy of learned features: multinomial logistic regression fit on split "train".

Needs ``eval_step`` output ``"features"`` (B, d) and labelled batches. Features are
standardised with the training split's mean and std, then scikit-learn's
``LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER)`` (L2, lbfgs) is fit on "train" and
scored on every split of ``config.eval.splits``: ``<split>/linear_probe_acc``.
"""

from __future__ import annotations

import numpy as np

from sparse_ae.evaluators import fitted_accuracy, require_split

FIT_SPLIT = "train"
PROBE_C = 1.0
PROBE_MAX_ITER = 2000


def fit_probe(features: np.ndarray, labels: np.ndarray):
    """A standardising logistic-regression pipeline fit on (n, d) features and (n,) labels."""
    from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
    from sklearn.pipeline import make_pipeline  # pylint: disable=import-outside-toplevel
    from sklearn.preprocessing import StandardScaler  # pylint: disable=import-outside-toplevel

    x = np.asarray(features, np.float64).reshape(len(features), -1)
    if not np.all(np.isfinite(x)):
        raise ValueError("features hold NaN/Inf: the encoder diverged")
    return make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER)).fit(x, labels)


def accuracy(probe, features: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probe.predict(np.asarray(features, np.float64).reshape(len(features), -1)) == labels))


def validate_config(config) -> None:
    require_split(config, "linear_probe", FIT_SPLIT, "fits on")


def evaluate(task, state, datasets, config):
    del config
    return fitted_accuracy(task, state, datasets, "linear_probe", FIT_SPLIT, fit_probe, accuracy), {}
