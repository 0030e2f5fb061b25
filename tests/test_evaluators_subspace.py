"""Nearest-subspace classifier (CTRL's evaluation) on synthetic union-of-subspaces data."""

import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD

from sparse_ae.evaluators import subspace


def union_of_subspaces(rng, k=4, d=40, dim=5, n=60, noise=0.05):
    bases = [np.linalg.qr(rng.standard_normal((d, dim)))[0] for _ in range(k)]
    labels = np.repeat(np.arange(k), n)
    z = np.stack([bases[j] @ rng.standard_normal(dim) for j in labels]) + noise * rng.standard_normal((k * n, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True), labels


def test_separates_subspaces_and_matches_truncated_svd_reference():
    rng = np.random.default_rng(0)
    train, train_labels = union_of_subspaces(rng)
    test, test_labels = union_of_subspaces(np.random.default_rng(0), n=30, noise=0.2)
    bases = subspace.fit_subspaces(train, train_labels, num_components=5)
    pred = subspace.predict(bases, test)
    assert np.mean(pred == test_labels) == 1.0
    # CTRL's nearsub: TruncatedSVD (uncentred) per class, residual norm ‖(I − UUᵀ) z‖
    scores = []
    for j in range(4):
        u = TruncatedSVD(n_components=5, algorithm="arpack").fit(train[train_labels == j]).components_.T
        scores.append(np.linalg.norm(test.T - u @ (u.T @ test.T), axis=0))
    np.testing.assert_array_equal(pred, np.argmin(scores, axis=0))


def test_subspaces_are_uncentred_and_orthonormal():
    rng = np.random.default_rng(1)
    # one class lying on a line through the origin: its 1-d basis must be that line, not the
    # direction of largest variance around the mean
    direction = np.array([1.0, 0.0, 0.0])
    z = np.outer(rng.uniform(1, 2, 50), direction) + 0.01 * rng.standard_normal((50, 3))
    u = subspace.fit_subspaces(z, np.zeros(50, int), num_components=1)[0]
    np.testing.assert_allclose(np.abs(u[:, 0]), direction, atol=0.02)
    u3 = subspace.fit_subspaces(z, np.zeros(50, int), num_components=10)[0]
    assert u3.shape == (3, 3)  # r = min(components, n_j, d)
    np.testing.assert_allclose(u3.T @ u3, np.eye(3), atol=1e-10)


def test_bad_features_raise():
    z = np.ones((4, 3))
    with pytest.raises(ValueError, match="NaN/Inf"):
        subspace.fit_subspaces(np.where(np.eye(4, 3) > 0, np.nan, z), np.arange(4))
    with pytest.raises(ValueError, match="one label each"):
        subspace.fit_subspaces(z, np.arange(3))
