"""Per-image K-means of code grids (the SC-VAE clustering figure) against scikit-learn."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from sparse_ae.evaluators import patch_clusters


def test_kmeans_finds_separated_blobs_like_sklearn():
    points, truth = make_blobs(120, n_features=16, centers=5, cluster_std=0.5, random_state=0)
    labels, centers = patch_clusters.kmeans(points, 5, jax.random.key(0))
    reference = KMeans(5, n_init=10, random_state=0).fit(points)
    assert labels.shape == (120,) and centers.shape == (5, 16)
    assert adjusted_rand_score(reference.labels_, np.asarray(labels)) == 1.0
    assert adjusted_rand_score(truth, np.asarray(labels)) == 1.0


def test_kmeans_inertia_is_close_to_sklearn_on_unstructured_codes():
    codes = np.random.default_rng(0).standard_normal((256, 32)).astype(np.float32)
    labels, centers = patch_clusters.kmeans(codes, 5, jax.random.key(1))
    inertia = float(np.sum((codes - np.asarray(centers)[np.asarray(labels)]) ** 2))
    reference = KMeans(5, n_init=10, random_state=0).fit(codes).inertia_
    assert inertia <= 1.02 * reference


def test_kmeans_labels_are_ordered_by_cluster_size_and_centres_are_means():
    points, _ = make_blobs([40, 10, 25], n_features=4, cluster_std=0.3, random_state=2)
    labels, centers = (np.asarray(a) for a in patch_clusters.kmeans(points, 3, jax.random.key(0)))
    assert list(np.bincount(labels)) == [40, 25, 10]
    for k in range(3):
        np.testing.assert_allclose(centers[k], points[labels == k].mean(axis=0), atol=1e-4)


def test_kmeans_refuses_more_clusters_than_points():
    with pytest.raises(ValueError, match="num_clusters=9 must be in \\[1, 8\\]"):
        patch_clusters.kmeans(np.zeros((8, 2)), 9, jax.random.key(0))


def test_image_kmeans_clusters_each_image_on_its_own():
    """Two images whose grids hold the same two code values in mirrored halves: each image is
    split along its own halves, and the bigger half is label 0."""
    grid = np.zeros((2, 4, 4, 3), np.float32)
    grid[0, :, :3, 0] = 1.0          # image 0: 12 cells of one code, 4 of another
    grid[1, 1:, :, 2] = 5.0          # image 1: 12 and 4 along the other axis
    labels = patch_clusters.image_kmeans(grid, 2)
    assert labels.shape == (2, 4, 4)
    np.testing.assert_array_equal(labels[0], np.tile([0, 0, 0, 1], (4, 1)))
    np.testing.assert_array_equal(labels[1], np.array([[1] * 4] + [[0] * 4] * 3))


def test_cluster_overlay_blends_palette_colours_over_the_upsampled_grid():
    images = np.full((1, 8, 8, 1), 0.2, np.float32)
    labels = np.array([[[0, 1], [2, 3]]])
    overlay = patch_clusters.cluster_overlay(images, labels, opacity=0.5)
    assert overlay.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(overlay[0, 0, 0], 0.5 * 0.2 + 0.5 * patch_clusters.PALETTE[0])
    np.testing.assert_allclose(overlay[0, 7, 7], 0.5 * 0.2 + 0.5 * patch_clusters.PALETTE[3])
    np.testing.assert_allclose(patch_clusters.cluster_overlay(images, labels, opacity=0.0)[0], 0.2)
    with pytest.raises(ValueError, match="labels must be in"):
        patch_clusters.cluster_overlay(images, labels + len(patch_clusters.PALETTE) - 3)
    with pytest.raises(ValueError, match="does not divide"):
        patch_clusters.cluster_overlay(np.zeros((1, 7, 7, 3)), labels)


def test_config_refuses_more_image_clusters_than_colours():
    config = ml_collections.ConfigDict(
            {"patch_clusters": patch_clusters.default_config(image_clusters=len(patch_clusters.PALETTE) + 1)})
    with pytest.raises(ValueError, match="config.patch_clusters.image_clusters=11 must be <= 10"):
        patch_clusters.validate_config(config)
