"""Poisson denoising with the DCEA paper code's protocol.

Per image x in [0, 1] (whole image): Q = max(x)/peak, y ~ Poisson(x/Q), estimate Q·exp(η̂) (the
task's ``eval_step`` draws y from ``batch["noise_seed"]`` and returns "reconstruction"),
PSNR = 20·log10(max x) − 10·log10(MSE), averaged over ``config.model.noise_draws`` draws per
image, then over images. Folder sources ("set12", "train400", "image_folder") are read at full size, one
image per batch, whatever ``config.data.image_size`` says (the protocol is defined on whole
images), the first ``config.eval.num_batches`` of them (0: all); other sources use the
evaluation batches as given.

Scalars per split: ``<split>/poisson_psnr``, ``<split>/poisson_psnr_noisy`` (of Q·y),
``<split>/num_images``; images: the first images' clean / noisy / denoised versions (draw 0).
"""

from __future__ import annotations

import itertools

import jax
import ml_collections
import numpy as np

from sparse_ae import data as data_lib
from sparse_ae.evaluators import eval_outputs

FOLDER_SOURCES = ("set12", "train400", "image_folder")


def peak_psnr(clean: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Per-image 20·log10(max x) − 10·log10(MSE) of (B, H, W, C) arrays."""
    clean = np.asarray(clean, np.float64)
    mse = np.mean((clean - np.asarray(estimate, np.float64)) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(clean.max(axis=(1, 2, 3))) - 10.0 * np.log10(mse)


def validate_config(config) -> None:
    if "noise_draws" not in config.model or config.model.noise_draws < 1:
        raise ValueError("evaluator 'poisson_denoising' needs config.model.noise_draws >= 1")


def _full_size_datasets(config, splits):
    """Folder sources at full size, one host batch of 1 image at a time."""
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    data_config.update(image_size=0)

    def factory(split):
        def make_iterator():
            dataset = data_lib.build(data_config, split, seed=config.seed, train=False, per_process_batch=1)
            for batch in itertools.islice(dataset, config.eval.num_batches or None):
                yield {k: np.asarray(v) for k, v in batch.items()}
        return make_iterator

    return {split: factory(split) for split in splits}


def _with_seed(batch, draw: int):
    """``batch`` plus "noise_seed" = draw, placed like ``batch["image"]``."""
    image = batch["image"]
    seeds = np.full(image.shape[:1], draw, np.int32)
    if isinstance(image, jax.Array) and isinstance(image.sharding, jax.sharding.NamedSharding):
        spec = jax.sharding.PartitionSpec(image.sharding.spec[0] if image.sharding.spec else None)
        seeds = jax.device_put(seeds, jax.sharding.NamedSharding(image.sharding.mesh, spec))
    return {**batch, "noise_seed": seeds}


def evaluate(task, state, datasets, config):
    """Mean protocol PSNR over images and draws per split; see the module docstring."""
    if config.data.name in FOLDER_SOURCES:
        datasets = _full_size_datasets(config, list(datasets))
    draws = config.model.noise_draws
    scalars, images = {}, {}
    for split, make_iterator in datasets.items():
        per_image, noisy_psnr, shown = [], [], []
        for batch in make_iterator():
            psnrs, noisy = [], []
            for draw in range(draws):
                seeded = lambda b=batch, d=draw: iter([_with_seed(b, d)])  # noqa: E731
                for host_batch, out in eval_outputs(task, state, seeded):
                    psnrs.append(peak_psnr(out["target"], out["reconstruction"]))
                    noisy.append(peak_psnr(out["target"], out["noisy"]))
                    if draw == 0 and len(shown) < config.eval.num_images:
                        shown.append((out["target"], out["noisy"], out["reconstruction"]))
            per_image.append(np.mean(psnrs, axis=0))
            noisy_psnr.append(np.mean(noisy, axis=0))
        if not per_image:
            raise ValueError(f"split {split!r} gave no evaluation examples")
        per_image, noisy_psnr = np.concatenate(per_image), np.concatenate(noisy_psnr)
        scalars.update({f"{split}/poisson_psnr": float(per_image.mean()),
                        f"{split}/poisson_psnr_noisy": float(noisy_psnr.mean()),
                        f"{split}/num_images": float(per_image.size)})
        for name, index in (("clean", 0), ("noisy", 1), ("denoised", 2)):
            same_size = [s[index] for s in shown if s[index].shape[1:] == shown[0][index].shape[1:]]
            images[f"{split}/{name}"] = np.clip(np.concatenate(same_size), 0.0, 1.0)
    return scalars, images
