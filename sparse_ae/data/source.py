"""The interface between a data source module and the generic pipeline."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

Example = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Source:
    """One split of a source, read by index.

    read: ``(index, rng) -> example``, a dict of numpy arrays without batch axis ("image"
      (H, W, C) float32, "label" () int32, ...). ``rng`` is the per-example generator of grain's
      ``random_map`` (seeded by the pipeline seed and the example's position in the stream):
      use it for random crops; it is drawn from a fixed seed in evaluation.
    length: number of examples; None for an unbounded stream where every index is a fresh
      random example (training crops, synthetic data).
    finish_batch: optional vectorised work on each stacked batch (e.g. synthesis).
    augment: whether the generic image augmentation (flip, pad-crop) applies in training.
    sizes: the distinct (H, W) of examples when they differ (full-size images); empty when
      every example has one shape. Batches of more than one example need one shape.
    """

    read: Callable[[int, np.random.Generator], Example]
    length: int | None
    finish_batch: Callable[[Example], Example] | None = None
    augment: bool = True
    sizes: tuple[tuple[int, int], ...] = ()


def reject_augmentation(cfg, model: str) -> None:
    """Sources whose examples follow a model that flips and shifts would break."""
    moves = [f for f in ("random_flip", "random_vflip", "random_crop_pad") if getattr(cfg, f)]
    if moves:
        raise ValueError(f"config.data.{' / '.join(moves)} would break {model} of {cfg.name!r}; leave "
                         f"{'it' if len(moves) == 1 else 'them'} off")
