"""Patch clustering: K-means over the per-location codes, shown as a grid of clusters × patches.

Every grid position (i, j) of "code" (B, h, w, K) from ``eval_step`` is one vector; its patch is the
image window of side ``context``·s centred on the cell's s × s block (s = H/h; reflect padding at
the border). K-means (scikit-learn, ``num_clusters``, k-means++ init, seed ``seed``) runs on at most
``max_vectors`` positions from the first split. The image ``<split>/patch_clusters`` (one tiled
grid) has ``clusters_shown`` random clusters as rows and ``patches_shown`` random members each.

Per image (the SC-VAE paper's clustering figure): the h·w code vectors of each image are split by
K-means (:func:`kmeans`, ``image_clusters`` groups) and shown as a colour map over the image:
``<split>/patch_kmeans`` has a row of inputs and a row of the same images under their cluster
colours (cluster 0 the largest; colour ``PALETTE[label]``).
``config.patch_clusters`` fields: :func:`default_config`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from sparse_ae.evaluators import eval_outputs
from sparse_ae.evaluators.segmentation import upsample
from sparse_ae.utils import images as image_utils

# Colours of the cluster labels 0, 1, … (RGB in [0, 1]): red, blue, green, yellow, purple, orange,
# cyan, pink, brown, grey.
PALETTE = np.array([[0.90, 0.10, 0.10], [0.12, 0.35, 0.90], [0.10, 0.70, 0.20], [0.95, 0.85, 0.10],
                    [0.60, 0.20, 0.75], [1.00, 0.55, 0.05], [0.10, 0.80, 0.85], [0.95, 0.45, 0.70],
                    [0.50, 0.30, 0.10], [0.55, 0.55, 0.55]], np.float32)


def default_config(**overrides) -> ml_collections.ConfigDict:
    """Defaults of this evaluator's config section; keywords replace them."""
    config = ml_collections.ConfigDict(dict(num_clusters=32, clusters_shown=8, patches_shown=10, context=2,
                                            max_vectors=20000, seed=0, image_clusters=5, opacity=0.5))
    config.update(overrides)
    return config


def cluster_codes(vectors: np.ndarray, num_clusters: int, seed: int) -> np.ndarray:
    """K-means labels (N,) of (N, K) vectors."""
    from sklearn.cluster import KMeans  # pylint: disable=import-outside-toplevel

    return KMeans(num_clusters, n_init=1, random_state=seed).fit_predict(np.asarray(vectors, np.float64))


def _squared_distances(points: jax.Array, centers: jax.Array) -> jax.Array:
    """(N, F), (k, F) → (N, k) squared Euclidean distances."""
    return jnp.sum(jnp.square(points[:, None, :] - centers[None, :, :]), axis=-1)


def _plus_plus_seeds(points: jax.Array, num_clusters: int, key: jax.Array) -> jax.Array:
    """k-means++ seeding: the first centre uniform, each next one drawn with probability
    proportional to the squared distance to the nearest centre chosen so far; (k, F)."""
    n = points.shape[0]

    def pick(i, carry):
        centers, key = carry
        key, sub = jax.random.split(key)
        d2 = jnp.min(jnp.where(jnp.arange(num_clusters) < i, _squared_distances(points, centers), jnp.inf), axis=1)
        total = jnp.sum(d2)
        p = jnp.where(total > 0, d2 / jnp.where(total > 0, total, 1.0), 1.0 / n)
        return centers.at[i].set(points[jax.random.choice(sub, n, p=p)]), key

    first_key, key = jax.random.split(key)
    centers = jnp.zeros((num_clusters, points.shape[1]), points.dtype).at[0].set(
            points[jax.random.randint(first_key, (), 0, n)])
    return jax.lax.fori_loop(1, num_clusters, pick, (centers, key))[0]


def _lloyd(points: jax.Array, centers: jax.Array, num_iters: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``num_iters`` Lloyd steps from ``centers``; (labels (N,), centres (k, F), inertia). An empty
    cluster keeps its centre."""
    k = centers.shape[0]

    def step(_, centers):
        labels = jnp.argmin(_squared_distances(points, centers), axis=1)
        one_hot = jax.nn.one_hot(labels, k, dtype=points.dtype)
        counts = jnp.sum(one_hot, axis=0)
        means = (one_hot.T @ points) / jnp.maximum(counts, 1)[:, None]
        return jnp.where(counts[:, None] > 0, means, centers)

    centers = jax.lax.fori_loop(0, num_iters, step, centers)
    d2 = _squared_distances(points, centers)
    return jnp.argmin(d2, axis=1), centers, jnp.sum(jnp.min(d2, axis=1))


def kmeans(points: jax.Array, num_clusters: int, key: jax.Array, num_inits: int = 4,
           num_iters: int = 50) -> tuple[jax.Array, jax.Array]:
    """K-means of ``points`` (N, F): ``num_inits`` k-means++ seedings, ``num_iters`` Lloyd steps each,
    the one of least inertia (sum of squared distances to the assigned centre) kept. Returns labels
    (N,) int32 renumbered by cluster size (0 = largest, ties by centre order) and centres (k, F) in
    that order. Jittable (``num_clusters``, ``num_inits``, ``num_iters`` static) and vmappable."""
    if not 1 <= num_clusters <= points.shape[0]:
        raise ValueError(f"kmeans: num_clusters={num_clusters} must be in [1, {points.shape[0]}] "
                         "(the number of points)")
    points = jnp.asarray(points, jnp.float32)
    seeds = jax.vmap(lambda k: _plus_plus_seeds(points, num_clusters, k))(jax.random.split(key, num_inits))
    labels, centers, inertia = jax.vmap(lambda c: _lloyd(points, c, num_iters))(seeds)
    best = jnp.argmin(inertia)
    labels, centers = labels[best], centers[best]
    order = jnp.argsort(-jnp.bincount(labels, length=num_clusters), stable=True)
    rank = jnp.zeros(num_clusters, jnp.int32).at[order].set(jnp.arange(num_clusters, dtype=jnp.int32))
    return rank[labels], centers[order]


def image_kmeans(codes: np.ndarray, num_clusters: int, seed: int = 0) -> np.ndarray:
    """Per-image K-means of code grids (B, h, w, K) → labels (B, h, w), each image on its own."""
    b, h, w, k = codes.shape
    keys = jax.random.split(jax.random.key(seed), b)
    cluster = jax.jit(jax.vmap(lambda x, key: kmeans(x, num_clusters, key)[0]))
    return np.asarray(cluster(jnp.asarray(codes).reshape(b, h * w, k), keys)).reshape(b, h, w)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """(B, H, W, C) clipped to [0, 1] as RGB (grey repeated, channels past 3 dropped)."""
    images = np.clip(images, 0.0, 1.0)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def cluster_overlay(images: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Images (B, H, W, C) under the colours ``PALETTE[labels]`` of their label grids (B, h, w)
    (nearest upsampling; h, w divide H, W): (1 − opacity)·image + opacity·colour, RGB (B, H, W, 3)."""
    if labels.max(initial=0) >= len(PALETTE) or labels.min(initial=0) < 0:
        raise ValueError(f"cluster_overlay: labels must be in [0, {len(PALETTE)}) (the palette's colours)")
    colours = np.stack([PALETTE[upsample(grid, images.shape[1:3])] for grid in labels])
    return ((1 - opacity) * as_rgb(images) + opacity * colours).astype(np.float32)


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
    for key in ("num_clusters", "clusters_shown", "patches_shown", "context", "max_vectors", "image_clusters"):
        if c[key] < 1:
            raise ValueError(f"config.patch_clusters.{key}={c[key]} must be >= 1")
    if c.image_clusters > len(PALETTE):
        raise ValueError(f"config.patch_clusters.image_clusters={c.image_clusters} must be <= {len(PALETTE)} "
                         "(the colours of the per-image cluster map)")
    if not 0 <= c.opacity <= 1:
        raise ValueError(f"config.patch_clusters.opacity={c.opacity} must be in [0, 1]")


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
    images, codes = np.concatenate(images), np.concatenate(codes)
    grid = cluster_grid(images, codes, c)
    shown = images[:config.eval.num_images]
    labels = image_kmeans(codes[:len(shown)], min(c.image_clusters, codes.shape[1] * codes.shape[2]), c.seed)
    overlay = cluster_overlay(shown, labels, c.opacity)
    kmeans_rows = image_utils.tile(np.concatenate([as_rgb(shown), overlay]), num_cols=len(shown))
    return {}, {f"{split}/patch_clusters": grid[None], f"{split}/patch_kmeans": kmeans_rows[None]}
