"""Simulated Binomial spiking data with ground-truth templates (source "binomial_spikes").

Generative model (``config.data.spikes``, a :class:`SpikesConfig`): ``num_templates`` unit-norm
templates h_c of length ``template_length``, fixed by ``template_seed``; per example sparse
non-negative event trains x_c of length L = ``config.data.image_size`` (``events_per_template``
events at uniform random times, amplitudes uniform in [amp_min, amp_max]); the natural parameter
η = Σ_c h_c ∗ x_c + mu (true convolution, origin 0, truncated at the end: the 'zero' boundary of
``sparse_ae.sparse_coding.operators`` with H = 1); spike counts y ~ Binomial(trials, sigmoid(η)).

Examples are 1-D signals laid out as images with H = 1 (kernels are (1, k, M, 1)):
  "image"  (1, L, 1) float32  y / trials, in [0, 1]
  "counts" (1, L, 1) float32  y (integers 0 ... trials)
  "rate"   (1, L, 1) float32  sigmoid(η)
  "code"   (1, L, num_templates) float32  the events x
Training reads an unbounded stream; evaluation ``num_eval_examples`` examples from a fixed seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from sparse_ae.data.source import Source, reject_augmentation

SPLITS = ("train", "test")
TEMPLATE_KINDS = ("sines", "random_smooth")


@dataclasses.dataclass(frozen=True)
class SpikesConfig:
    """``config.data.spikes``: the Binomial spike-train model of DCEA's dictionary learning."""

    num_templates: int = 3            # C ground-truth templates
    template_length: int = 50         # K samples each
    # "sines" (h_c ∝ sin(π (c + 1) (t + ½) / K) under a raised half-cosine onset, distinct and
    # fixed) or "random_smooth" (Gaussian-smoothed white noise drawn from template_seed).
    template_kind: str = "sines"
    template_seed: int = 0
    trials: int = 30                  # M, Binomial trials per time bin
    mu: float = 0.0                   # baseline natural parameter: sigmoid(mu) = background rate
    events_per_template: int = 4      # per example, with amplitudes uniform in [amp_min, amp_max]
    amp_min: float = 12.0
    amp_max: float = 20.0


def templates(spikes: SpikesConfig) -> np.ndarray:
    """Ground-truth templates (num_templates, template_length) float32 with unit L2 norm."""
    num, length = spikes.num_templates, spikes.template_length
    t = np.arange(length) + 0.5
    if spikes.template_kind == "sines":
        onset = np.minimum(1.0, t / max(length / 5, 1.0))
        shapes = np.stack([np.sin(np.pi * (c + 1) * t / length) * onset for c in range(num)])
    elif spikes.template_kind == "random_smooth":
        noise = np.random.default_rng(spikes.template_seed).standard_normal((num, length + 20))
        width = max(length / 12, 1.0)
        taps = np.exp(-0.5 * (np.arange(-10, 11) / width) ** 2)
        shapes = np.stack([np.convolve(n, taps, mode="valid") for n in noise])[:, :length]
    else:
        raise ValueError(f"config.data.spikes.template_kind={spikes.template_kind!r} is not one of "
                         f"{TEMPLATE_KINDS}")
    return (shapes / np.linalg.norm(shapes, axis=1, keepdims=True)).astype(np.float32)


def validate_spikes(spikes: SpikesConfig, signal_length: int) -> None:
    """ValueError naming the ``config.data.spikes`` field (or image_size) that is out of range."""
    if spikes.template_kind not in TEMPLATE_KINDS:
        raise ValueError(f"config.data.spikes.template_kind={spikes.template_kind!r} is not one of "
                         f"{TEMPLATE_KINDS}")
    for field in ("num_templates", "template_length", "trials"):
        if getattr(spikes, field) < 1:
            raise ValueError(f"config.data.spikes.{field} must be >= 1, got {getattr(spikes, field)}")
    if spikes.events_per_template < 0:
        raise ValueError(f"config.data.spikes.events_per_template must be >= 0, got {spikes.events_per_template}")
    if not 0.0 <= spikes.amp_min <= spikes.amp_max:
        raise ValueError(f"config.data.spikes: need 0 <= amp_min <= amp_max, got amp_min={spikes.amp_min}, "
                         f"amp_max={spikes.amp_max}")
    if signal_length < spikes.template_length:
        raise ValueError(f"config.data.image_size={signal_length} (the signal length) must be >= "
                         f"config.data.spikes.template_length={spikes.template_length}")


def simulate(spikes: SpikesConfig, signal_length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One example (see the module docstring for keys and shapes) drawn with ``rng``."""
    h = templates(spikes)
    num = spikes.num_templates
    code = np.zeros((num, signal_length), np.float64)
    for c in range(num):
        times = rng.choice(signal_length, size=spikes.events_per_template, replace=False)
        code[c, times] = rng.uniform(spikes.amp_min, spikes.amp_max, size=times.size)
    eta = spikes.mu + sum(np.convolve(code[c], h[c])[:signal_length] for c in range(num))
    rate = 1.0 / (1.0 + np.exp(-eta))
    counts = rng.binomial(spikes.trials, rate).astype(np.float32)
    as_image = lambda v: v.astype(np.float32)[None, :, None]  # noqa: E731
    return {"image": as_image(counts / spikes.trials), "counts": as_image(counts),
            "rate": as_image(rate), "code": code.T.astype(np.float32)[None]}


def _spikes(cfg: Any) -> SpikesConfig:
    spikes = getattr(cfg, "spikes", None)
    if not isinstance(spikes, SpikesConfig):
        raise ValueError("config.data.spikes (a SpikesConfig) is required for config.data.name='binomial_spikes'")
    return spikes


def validate(cfg: Any) -> None:
    """Checks a parsed data config (``cfg.image_size`` = signal length, ``cfg.spikes``)."""
    if cfg.channels != 1:
        raise ValueError(f"config.data.channels must be 1 for 'binomial_spikes', got {cfg.channels}")
    reject_augmentation(cfg, "the spike model")
    validate_spikes(_spikes(cfg), cfg.image_size)


def make_source(cfg: Any, split: str, train: bool) -> Source:
    """Grain-readable source of one split (unbounded in training)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not a split of 'binomial_spikes'; choose one of {SPLITS}")
    spikes = _spikes(cfg)

    def read(index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        del index  # the generator already depends on it
        return simulate(spikes, cfg.image_size, rng)

    return Source(read=read, length=None if train else cfg.num_eval_examples, augment=False)


def element_spec(cfg: Any) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes of one example."""
    signal = jax.ShapeDtypeStruct((1, cfg.image_size, 1), np.float32)
    code = jax.ShapeDtypeStruct((1, cfg.image_size, _spikes(cfg).num_templates), np.float32)
    return {"image": signal, "counts": signal, "rate": signal, "code": code}
