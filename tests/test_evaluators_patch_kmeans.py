"""Per-image K-means of code grids (the SC-VAE clustering figure) and its colour overlay."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from sparse_ae.evaluators import patch_clusters


def blob_grids(sizes, seeds) -> tuple[np.ndarray, np.ndarray]:
    """One (h=1, w=sum(sizes)) code grid of 8-D blobs per seed, (B, 1, N, 8), and true labels (B, N)."""
    blobs = [make_blobs(sizes, n_features=8, cluster_std=0.4, random_state=s) for s in seeds]
    return (np.stack([x for x, _ in blobs])[:, None].astype(np.float32), np.stack([y for _, y in blobs]))


def test_image_kmeans_finds_each_images_blobs():
    grids, truth = blob_grids([30, 30, 30, 30, 30], seeds=(0, 1, 2))
    labels = patch_clusters.image_kmeans(grids, 5)
    assert labels.shape == (3, 1, 150)
    for found, true in zip(labels, truth):
        assert adjusted_rand_score(true, found[0]) == 1.0


def test_image_kmeans_numbers_clusters_by_size():
    grids, truth = blob_grids([40, 10, 25], seeds=(2,))
    labels = patch_clusters.image_kmeans(grids, 3)[0, 0]
    assert list(np.bincount(labels)) == [40, 25, 10]
    assert adjusted_rand_score(truth[0], labels) == 1.0


def test_image_kmeans_refuses_more_clusters_than_code_vectors():
    with pytest.raises(ValueError, match="num_clusters=9 must be in \\[1, 8\\]"):
        patch_clusters.image_kmeans(np.zeros((1, 2, 4, 3)), 9)


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
