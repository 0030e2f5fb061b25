"""Generation by editing codes: traversal grids of one code component, and interpolations.

Needs a task with ``decode(state, code) -> images`` (e.g. :class:`sparse_ae.train.tasks.sc_vae.CodecTask`)
and "code" (B, h, w, K) from ``eval_step``. Works on the first batch of the first split.

- Traversal: for each of the ``num_components`` components k with the largest mean |z_k| over the
  batch, the code of example ``image_index`` gets z_k + v at every grid position, for
  ``num_values`` values v evenly spaced in [−a_k, a_k], a_k = max |z_k| over the batch; one row per
  component, the middle column (v = 0 when num_values is odd) is the plain reconstruction.
- Interpolation: decode((1 − t)·z_a + t·z_b), t evenly spaced in [0, 1] (``interpolation_steps``),
  for the pairs of examples (0, 1), (2, 3), … (``num_pairs`` rows).
Images: ``<split>/traversal`` and ``<split>/interpolation``, each one tiled grid (1, H', W', C).
``config.code_edits`` fields: :func:`default_config`.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from sparse_ae.data import sharding
from sparse_ae.utils import images as image_utils


def default_config(**overrides) -> ml_collections.ConfigDict:
    """Defaults of this evaluator's config section; keywords replace them."""
    config = ml_collections.ConfigDict(dict(num_components=6, num_values=7, interpolation_steps=8, num_pairs=3, image_index=0))
    config.update(overrides)
    return config


def top_components(code: np.ndarray, num: int) -> np.ndarray:
    """Indices of the ``num`` components (last axis) with the largest mean magnitude, largest first."""
    strength = np.abs(code).reshape(-1, code.shape[-1]).mean(axis=0)
    return np.argsort(-strength, kind="stable")[:num]


def traversal_codes(code: np.ndarray, components: np.ndarray, values: np.ndarray) -> np.ndarray:
    """code (h, w, K), values (C, V) for C components → (C·V, h, w, K), row-major: entry (i, j) is
    the code with ``values[i, j]`` added to component ``components[i]`` at every position."""
    num_values = values.shape[1]
    edited = np.repeat(code[None], len(components) * num_values, axis=0)
    for row, k in enumerate(components):
        edited[row * num_values:(row + 1) * num_values, ..., k] += values[row].reshape(-1, *([1] * (code.ndim - 1)))
    return edited


def traversal_values(codes: np.ndarray, components: np.ndarray, num_values: int) -> np.ndarray:
    """(C, V): ``num_values`` values evenly spaced in [−a_k, a_k] for each component k, a_k = max |z_k|
    over ``codes`` (B, h, w, K)."""
    limits = np.abs(codes[..., components]).reshape(-1, len(components)).max(axis=0)
    return np.linspace(-1.0, 1.0, num_values)[None, :] * limits[:, None]


def interpolation_codes(code_a: np.ndarray, code_b: np.ndarray, steps: int) -> np.ndarray:
    """(steps, ...) codes (1 − t)·a + t·b for t = 0 … 1."""
    t = np.linspace(0.0, 1.0, steps).reshape(-1, *([1] * code_a.ndim))
    return ((1 - t) * code_a[None] + t * code_b[None]).astype(code_a.dtype)


def validate_config(config) -> None:
    c = config.get("code_edits")
    if c is None:
        raise ValueError("evaluator 'code_edits' needs config.code_edits (see code_edits.default_config())")
    for key in ("num_components", "num_values", "interpolation_steps", "num_pairs"):
        if c[key] < 1:
            raise ValueError(f"config.code_edits.{key}={c[key]} must be >= 1")
    if c.num_values < 2 or c.interpolation_steps < 2:
        raise ValueError("config.code_edits.num_values and interpolation_steps must be >= 2")


def evaluate(task, state, datasets, config):
    c = config.code_edits
    decode = getattr(task, "decode", None)
    if decode is None:
        raise ValueError(f"evaluator 'code_edits' needs a task with decode(state, code); task {config.task!r} "
                         "has none")
    decode = jax.jit(decode)
    split, make_iterator = next(iter(datasets.items()))
    batch = next(iter(make_iterator()))
    outputs = task.eval_step(state, batch)
    if "code" not in outputs:
        raise ValueError(f"evaluator 'code_edits' needs eval_step to return 'code'; got {sorted(outputs)}")
    code = sharding.to_host(outputs["code"])
    if len(code) < 2:
        raise ValueError("evaluator 'code_edits' needs an evaluation batch of at least 2 examples")
    components = top_components(code, min(c.num_components, code.shape[-1]))
    values = traversal_values(code, components, c.num_values)
    edited = traversal_codes(code[c.image_index % len(code)], components, values)
    traversal = np.asarray(decode(state, edited))
    pairs = [(2 * i, 2 * i + 1) for i in range(min(c.num_pairs, len(code) // 2))]
    interp = np.concatenate([interpolation_codes(code[a], code[b], c.interpolation_steps) for a, b in pairs])
    interpolation = np.asarray(decode(state, interp))
    return {}, {f"{split}/traversal": image_utils.tile(traversal, num_cols=c.num_values)[None],
                f"{split}/interpolation": image_utils.tile(interpolation, num_cols=c.interpolation_steps)[None]}
