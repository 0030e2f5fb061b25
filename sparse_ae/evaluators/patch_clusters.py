"""Patch clustering: K-means over the per-location codes, shown as a grid of clusters × patches.

Every grid position (i, j) of "code" (B, h, w, K) from ``eval_step`` is one vector; its patch is the
image window of side ``context``·s centred on the cell's s × s block (s = H/h; reflect padding at
the border). K-means (scikit-learn, ``num_clusters``, k-means++ init, seed ``seed``) runs on at most
``max_vectors`` positions from the first split. The image ``<split>/patch_clusters`` (one tiled
grid) has ``clusters_shown`` random clusters as rows and ``patches_shown`` random members each.
``config.patch_clusters`` fields: :func:`default_config`.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from sparse_ae.evaluators import eval_outputs
from sparse_ae.utils import images as image_utils


def default_config(**overrides) -> ml_collections.ConfigDict:
    """Defaults of this evaluator's config section; keywords replace them."""
    config = ml_collections.ConfigDict(dict(num_clusters=32, clusters_shown=8, patches_shown=10, context=2, max_vectors=20000, seed=0))
    config.update(overrides)
    return config


def cluster_codes(vectors: np.ndarray, num_clusters: int, seed: int) -> np.ndarray:
    """K-means labels (N,) of (N, K) vectors."""
    from sklearn.cluster import KMeans  # pylint: disable=import-outside-toplevel

    return KMeans(num_clusters, n_init=1, random_state=seed).fit_predict(np.asarray(vectors, np.float64))


def cell_patches(images: np.ndarray, cells: np.ndarray, grid: tuple[int, int], context: int) -> np.ndarray:
    """Windows (N, p, p, C), p = context·s, centred on grid cells ``cells`` (N, 3) = (image, i, j)."""
    _, height, _, _ = images.shape
    s = height // grid[0]
    p = context * s
    pad = p
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    offset = pad - (p - s) // 2
    return np.stack([padded[n, offset + i * s:offset + i * s + p, offset + j * s:offset + j * s + p]
                     for n, i, j in cells])


def cluster_grid(images: np.ndarray, codes: np.ndarray, c: ml_collections.ConfigDict) -> np.ndarray:
    """Tiled (H', W', C) grid of ``c.clusters_shown`` clusters × ``c.patches_shown`` patches."""
    n, h, w, k = codes.shape
    rng = np.random.default_rng(c.seed)
    cells = np.stack(np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 3)
    if len(cells) > c.max_vectors:
        cells = cells[np.sort(rng.choice(len(cells), c.max_vectors, replace=False))]
    num_clusters = min(c.num_clusters, len(cells))
    labels = cluster_codes(codes[cells[:, 0], cells[:, 1], cells[:, 2]].reshape(-1, k), num_clusters, c.seed)
    shown = rng.choice(num_clusters, min(c.clusters_shown, num_clusters), replace=False)
    rows = []
    for cluster in shown:
        members = np.flatnonzero(labels == cluster)
        picked = rng.choice(members, min(c.patches_shown, len(members)), replace=False)
        patches = cell_patches(images, cells[picked], (h, w), c.context)
        blank = np.full((c.patches_shown - len(picked), *patches.shape[1:]), 0.5, np.float32)
        rows.append(np.concatenate([patches, blank]))
    return image_utils.tile(np.concatenate(rows), num_cols=c.patches_shown)


def validate_config(config) -> None:
    c = config.get("patch_clusters")
    if c is None:
        raise ValueError("evaluator 'patch_clusters' needs config.patch_clusters (see patch_clusters.default_config())")
    for key in ("num_clusters", "clusters_shown", "patches_shown", "context", "max_vectors"):
        if c[key] < 1:
            raise ValueError(f"config.patch_clusters.{key}={c[key]} must be >= 1")


def evaluate(task, state, datasets, config):
    c = config.patch_clusters
    split, make_iterator = next(iter(datasets.items()))
    images, codes, count = [], [], 0
    for batch, outputs in eval_outputs(task, state, make_iterator):
        images.append(batch["image"])
        codes.append(outputs["code"])
        count += outputs["code"][..., 0].size
        if count >= c.max_vectors:
            break
    grid = cluster_grid(np.concatenate(images), np.concatenate(codes), c)
    return {}, {f"{split}/patch_clusters": grid[None]}
