"""Evaluators: one module ``sparse_ae/evaluators/<name>.py`` each, chosen by ``config.eval.evaluators``.

An evaluator module defines::

    def evaluate(task, state, datasets, config) -> tuple[dict[str, float], dict[str, np.ndarray]]

- ``task``: the :class:`sparse_ae.train.task.Task` whose ``eval_step`` (and ``images``) are
  already jitted with the run's shardings: call them on global batches.
- ``datasets``: ``{split: make_iterator}``; ``make_iterator()`` returns a fresh iterator of
  global batches (``config.eval.num_batches`` of them, 0 = the whole split), padded examples
  marked by ``batch["valid"] == False``. :func:`eval_outputs` runs ``eval_step`` over one split
  and yields host numpy ``(batch, outputs)`` with the padding dropped — most evaluators need
  nothing else.
- returns scalars keyed ``"<split>/<name>"`` (e.g. ``"test/psnr"``) and images keyed by name,
  arrays (N, h, w, C) in [0, 1].

Evaluators may also define ``validate_config(config)``; it runs before anything compiles.
Modules whose names start with ``_`` are helpers of the evaluators, not evaluators.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from sparse_ae.data import sharding

Datasets = Mapping[str, Callable[[], Iterator[dict[str, Any]]]]


def available_evaluators() -> list[str]:
    """Names of the evaluator modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_evaluator(name: str) -> ModuleType:
    """The evaluator module ``name``; ValueError listing the available ones if unknown."""
    if name not in available_evaluators():
        several = ("; to name several, write a tuple of quoted names: "
                   """--config.eval.evaluators='("reconstruction", "likelihood")'""") if "," in name else ""
        raise ValueError(f"config.eval.evaluators: unknown evaluator {name!r}; available: "
                         f"{available_evaluators()}{several}")
    module = importlib.import_module(f"{__name__}.{name}")
    if not callable(getattr(module, "evaluate", None)):
        raise ValueError(f"evaluator module {module.__name__} defines no evaluate(task, state, datasets, config)")
    return module


def require_weights_file(config, evaluator: str, contents: str) -> None:
    """ValueError unless ``config.<evaluator>.weights`` names a file; ``contents`` says what the file
    holds and where its conversion is described."""
    weights = (config.get(evaluator) or {}).get("weights", "")
    if not weights:
        raise ValueError(f"evaluator {evaluator!r} needs config.{evaluator}.weights: {contents}; "
                         "nothing is downloaded")
    if not os.path.isfile(weights):
        raise ValueError(f"config.{evaluator}.weights={weights!r} is not a file")


def require_split(config, evaluator: str, split: str, use: str) -> None:
    """ValueError unless ``split`` is among ``config.eval.splits``; ``use`` says what the
    evaluator does on it (e.g. "fits class subspaces on")."""
    if split not in config.eval.splits:
        raise ValueError(f"evaluator {evaluator!r} {use} split {split!r}: add it to config.eval.splits "
                         f"(now {tuple(config.eval.splits)})")


def eval_outputs(task, state, make_iterator: Callable[[], Iterator[dict[str, Any]]]
                 ) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """``(batch, outputs)`` per eval batch as host numpy, padded examples removed."""
    for batch in make_iterator():
        outputs = task.eval_step(state, batch)
        host_batch, host_outputs = sharding.to_host((dict(batch), outputs))
        valid = host_batch.pop("valid", None)
        if valid is not None:
            valid = valid.astype(bool)
            host_batch = {k: v[valid] for k, v in host_batch.items()}
            host_outputs = {k: v[valid] for k, v in host_outputs.items()}
        yield host_batch, host_outputs


def labelled_features(task, state, datasets: Datasets, evaluator: str, fit_split: str
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (features (n, ...), labels (n,))}`` from ``eval_step``'s ``"features"``, for an
    evaluator that fits on ``fit_split`` (which must be among the splits) and scores every split."""
    if fit_split not in datasets:
        raise ValueError(f"evaluator {evaluator!r} needs split {fit_split!r} in config.eval.splits")
    data = {}
    for split, make_iterator in datasets.items():
        feats, labels = [], []
        for batch, outputs in eval_outputs(task, state, make_iterator):
            if "features" not in outputs or "label" not in batch:
                raise ValueError(f"evaluator {evaluator!r} needs eval_step output 'features' and labelled data; "
                                 f"split {split!r} gave outputs {sorted(outputs)} and batch keys {sorted(batch)}")
            feats.append(outputs["features"])
            labels.append(batch["label"])
        data[split] = np.concatenate(feats), np.concatenate(labels)
    return data


def fitted_accuracy(task, state, datasets: Datasets, evaluator: str, fit_split: str,
                    fit: Callable[[np.ndarray, np.ndarray], Any],
                    accuracy: Callable[[Any, np.ndarray, np.ndarray], float]) -> dict[str, float]:
    """``{"<split>/<evaluator>_acc": accuracy(model, features, labels)}`` per split of a model
    fitted once, ``model = fit(features, labels)``, on the features of ``fit_split``."""
    data = labelled_features(task, state, datasets, evaluator, fit_split)
    model = fit(*data[fit_split])
    return {f"{split}/{evaluator}_acc": float(accuracy(model, *data[split])) for split in data}


def evaluate_all(task, state, datasets: Datasets, config) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Every evaluator in ``config.eval.evaluators`` plus ``task.images``; merged results."""
    scalars: dict[str, float] = {}
    images: dict[str, np.ndarray] = {}
    for name in config.eval.evaluators:
        new_scalars, new_images = get_evaluator(name).evaluate(task, state, datasets, config)
        scalars.update({k: float(v) for k, v in new_scalars.items()})
        images.update(new_images)
    if task.images is not None:
        first_split = next(iter(datasets.values()))
        batch = next(iter(first_split()))
        images.update(sharding.to_host(task.images(state, batch)))
    return scalars, images
