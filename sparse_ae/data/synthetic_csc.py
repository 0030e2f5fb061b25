"""Synthetic convolutional sparse coding data for dictionary-recovery experiments.

Model (``config.data.csc``): a ground-truth kernel D of shape (k, k, M, C) drawn once from
``dict_seed`` (i.i.d. N(0, 1), each atom scaled to unit norm over (k, k, C)); per example a code
z of shape (S/s, S/s, M) with i.i.d. entries Bernoulli(density)·N(0, 1), the clean signal
``conv_synthesis(D, z, stride=s, boundary=...)`` and the observation image = clean +
noise_std·N(0, 1). Examples: {"image", "clean": (S, S, C) float32, "code": (S/s, S/s, M)}.
Values are the linear model's, not limited to [0, 1]. Training reads an unbounded stream;
evaluation reads ``num_eval_examples`` examples drawn from a fixed seed. No augmentation.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from sparse_ae.data.config import DataConfig, parse, require_image_size
from sparse_ae.data.source import Source, reject_augmentation
from sparse_ae.sparse_coding.operators import BOUNDARIES, conv_synthesis

SPLITS = ("train", "test")


def ground_truth_dictionary(data_config) -> np.ndarray:
    """The ground-truth kernel (k, k, M, C) float32 with unit-norm atoms, fixed by csc.dict_seed."""
    cfg = parse(data_config)
    csc = cfg.csc
    kernel = np.random.default_rng(csc.dict_seed).standard_normal(
        (csc.kernel_size, csc.kernel_size, csc.num_atoms, cfg.channels))
    kernel /= np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 3), keepdims=True))
    return kernel.astype(np.float32)


def validate(cfg: DataConfig) -> None:
    require_image_size(cfg)
    csc = cfg.csc
    if csc.num_atoms < 1:
        raise ValueError(f"config.data.csc.num_atoms must be >= 1, got {csc.num_atoms}")
    if not 1 <= csc.kernel_size <= cfg.image_size:
        raise ValueError(f"config.data.csc.kernel_size must be in [1, image_size={cfg.image_size}], "
                         f"got {csc.kernel_size}")
    if csc.stride < 1 or cfg.image_size % csc.stride:
        raise ValueError(f"config.data.csc.stride={csc.stride} must be >= 1 and divide "
                         f"config.data.image_size={cfg.image_size}")
    if csc.boundary not in BOUNDARIES:
        raise ValueError(f"config.data.csc.boundary must be one of {BOUNDARIES}, got {csc.boundary!r}")
    if not 0.0 < csc.density <= 1.0:
        raise ValueError(f"config.data.csc.density must be in (0, 1], got {csc.density}")
    if csc.noise_std < 0.0:
        raise ValueError(f"config.data.csc.noise_std must be >= 0, got {csc.noise_std}")
    reject_augmentation(cfg, "the synthesis model")


@functools.cache
def _synthesis(cfg: DataConfig):
    """Jitted batch synthesis codes (B, S/s, S/s, M) -> signals (B, S, S, C) on the host CPU."""
    cpu = jax.local_devices(backend="cpu")[0]
    kernel = jax.device_put(ground_truth_dictionary(cfg), cpu)
    fn = jax.jit(functools.partial(conv_synthesis, stride=cfg.csc.stride, boundary=cfg.csc.boundary))
    return lambda codes: np.asarray(fn(kernel, jax.device_put(codes, cpu)))


def _code_shape(cfg: DataConfig) -> tuple[int, int, int]:
    side = cfg.image_size // cfg.csc.stride
    return side, side, cfg.csc.num_atoms


def make_source(cfg: DataConfig, split: str, train: bool) -> Source:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not a split of 'synthetic_csc'; choose one of {SPLITS}")
    code_shape = _code_shape(cfg)
    image_shape = (cfg.image_size, cfg.image_size, cfg.channels)

    size = int(np.prod(code_shape))

    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        del index  # the generator already depends on it
        # i.i.d. Bernoulli(density) support drawn as a Binomial count of uniformly placed entries.
        support = rng.choice(size, rng.binomial(size, cfg.csc.density), replace=False)
        code = np.zeros(size, np.float32)
        code[support] = rng.standard_normal(support.size, dtype=np.float32)
        noise = np.zeros(image_shape, np.float32)
        if cfg.csc.noise_std:
            noise = cfg.csc.noise_std * rng.standard_normal(image_shape, dtype=np.float32)
        return {"code": code.reshape(code_shape), "noise": noise}

    def finish_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = dict(batch)
        clean = _synthesis(cfg)(batch["code"])
        batch["clean"], batch["image"] = clean, clean + batch.pop("noise")
        return batch

    return Source(read=read, length=None if train else cfg.num_eval_examples,
                  finish_batch=finish_batch, augment=False)


def element_spec(cfg: DataConfig) -> dict[str, jax.ShapeDtypeStruct]:
    image = jax.ShapeDtypeStruct((cfg.image_size, cfg.image_size, cfg.channels), np.float32)
    return {"image": image, "clean": image, "code": jax.ShapeDtypeStruct(_code_shape(cfg), np.float32)}
