"""Linear probe on frozen features."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_ae.evaluators import linear_probe


def test_linear_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = np.eye(3)[labels] * 3 + 0.1 * rng.normal(size=(300, 3))
    probe = linear_probe.fit_probe(features[:200], labels[:200])
    assert linear_probe.accuracy(probe, features[200:], labels[200:]) == 1.0
    shuffled = linear_probe.accuracy(probe, features[200:], rng.permutation(labels[200:]))
    assert shuffled < 0.7
    with pytest.raises(ValueError, match="NaN"):
        linear_probe.fit_probe(np.full((4, 2), np.nan), np.arange(4))
