"""Task ``conv_sae``: the convolutional sparse autoencoder (:mod:`sparse_ae.models.conv_sae`).

Training minimises mean((g(f(c(x))) − x)²) + the code's L1 penalty, where c is the corruption
of ``config.objective``: "none" (plain autoencoding, for feature learning), "noise" (additive
Gaussian noise of std ``noise_std`` on the [0, 1] scale: a denoising autoencoder), "mask"
(each pixel dropped to 0 with probability ``mask_rate``: inpainting) or "sr" (super-resolution:
box-average downsampling by ``sr_factor`` and upsampling back, bicubic by default, as the
super-resolution networks SRCNN, VDSR and RED-Net read their inputs; see :func:`down_up`).
``eval_step`` applies the same corruption with a fixed key and returns ``"reconstruction"`` (for
"mask" the known pixels are kept and only the dropped ones filled in), ``"target"`` (the clean
image), ``"corrupted"``, ``"code"`` and ``"features"`` (= the code, for the linear probe).
``config.model.dropout`` drops code entries in training only (key: ``fold_in(rng, 1)``; the
corruption keeps ``rng``), never in ``eval_step``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae import optim
from sparse_ae.models import sparsity
from sparse_ae.models.conv_sae import ACTIVATIONS, POOLS, ConvSAE
from sparse_ae.train.state import TrainState, global_norms, split_module
from sparse_ae.train.task import Task
from sparse_ae.utils import sections

CORRUPTIONS = ("none", "noise", "mask", "sr")
UPSAMPLINGS = ("bicubic", "nearest")
EVAL_KEY = 20_250_101


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``config.model`` of task ``conv_sae``."""

    # Channels of the encoder's stride-2 conv stages (mirrored by the decoder).
    widths: tuple[int, ...] = (32, 64)
    # Length of the code vector.
    code_dim: int = 256
    # One sparsity spec: 'l1:<λ>' | 'l0:<k>' | 'none'.
    sparsity: str = "l1:0.01"
    # Nonlinearity producing the code.
    code_activation: Literal[ACTIVATIONS] = "relu"
    # 2 × 2 pooling after each encoder stage: max, avg (mean) or l2 (root mean square).
    pool: Literal[POOLS] = "max"
    # Rate of the inverted dropout on the code in training (a regulariser of the code; 0: none).
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """``config.objective`` of task ``conv_sae``."""

    # Corruption of the input: none (autoencoding), noise (denoising), mask (inpainting),
    # sr (super-resolution).
    corruption: Literal[CORRUPTIONS] = "none"
    # Std of the additive Gaussian noise on the [0, 1] scale (corruption "noise").
    noise_std: float = 25.0 / 255.0
    # Probability that a pixel is dropped to 0 (corruption "mask").
    mask_rate: float = 0.5
    # Downsampling factor (box average over sr_factor × sr_factor blocks) of corruption "sr".
    sr_factor: int = 2
    # Upsampling of the small image back to the input size (corruption "sr").
    sr_upsample: Literal[UPSAMPLINGS] = "bicubic"


def config_sections(config) -> dict[str, type]:
    """The dataclass of each of this task's config sections."""
    return {"model": ModelConfig, "objective": ObjectiveConfig}


def validate_config(config) -> None:
    m = sections.parse_section(config, "model", ModelConfig)
    o = sections.parse_section(config, "objective", ObjectiveConfig)
    if not m.widths or min(m.widths) < 1:
        raise ValueError(f"config.model.widths={m.widths!r} must be a non-empty sequence of integers >= 1")
    factor = 2 ** len(m.widths)
    if config.data.image_size < factor or config.data.image_size % factor:
        raise ValueError(f"config.data.image_size={config.data.image_size} must be a positive multiple of "
                         f"2^len(config.model.widths) = {factor}")
    if m.code_dim < 1:
        raise ValueError(f"config.model.code_dim={m.code_dim} must be >= 1")
    if not 0 <= m.dropout < 1:
        raise ValueError(f"config.model.dropout={m.dropout} must be in [0, 1)")
    spec = sparsity.parse_spec(m.sparsity, "config.model.sparsity")
    if spec.kind == "l0inf":
        raise ValueError("config.model.sparsity: the code is a vector (one needle); use 'l0:<k>' rather than l0inf")
    sparsity.kept_entries(spec, (1, m.code_dim), "code (config.model.sparsity)")
    if o.noise_std < 0:
        raise ValueError(f"config.objective.noise_std={o.noise_std} must be >= 0")
    if not 0 <= o.mask_rate < 1:
        raise ValueError(f"config.objective.mask_rate={o.mask_rate} must be in [0, 1)")
    if o.sr_factor < 2 or config.data.image_size % o.sr_factor:
        raise ValueError(f"config.objective.sr_factor={o.sr_factor} must be >= 2 and divide "
                         f"config.data.image_size={config.data.image_size}")


def build_model(config, rngs: nnx.Rngs) -> ConvSAE:
    m = config.model
    return ConvSAE(config.data.image_size, config.data.channels, tuple(m.widths), m.code_dim, m.sparsity,
                   m.code_activation, m.pool, m.dropout, rngs=rngs)


def down_up(x: jax.Array, factor: int, upsample: str = "bicubic") -> jax.Array:
    """(B, H, W, C) -> (B, H, W, C): the mean of each ``factor`` × ``factor`` block (box / area
    downsampling to (H/factor, W/factor)), brought back to H × W by ``upsample``: "bicubic" (Keys'
    cubic, a = −0.5, ``jax.image.resize``; weights renormalised at the borders; clipped to
    [0, 1]) or "nearest" (each block filled with its mean). ValueError unless factor >= 2
    divides H and W."""
    b, h, w, c = x.shape
    if factor < 2 or h % factor or w % factor:
        raise ValueError(f"factor={factor} must be an integer >= 2 dividing the image size {h}x{w}")
    small = x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))
    if upsample == "nearest":
        return jnp.repeat(jnp.repeat(small, factor, axis=1), factor, axis=2)
    if upsample == "bicubic":
        return jnp.clip(jax.image.resize(small, x.shape, "cubic"), 0.0, 1.0)
    raise ValueError(f"upsample={upsample!r} is not one of {UPSAMPLINGS}")


def corrupt(x: jax.Array, key: jax.Array, objective) -> tuple[jax.Array, jax.Array]:
    """(corrupted x, keep mask (B, H, W, 1); all ones unless corruption == 'mask')."""
    keep = jnp.ones(x.shape[:-1] + (1,), x.dtype)
    if objective.corruption == "noise":
        return x + objective.noise_std * jax.random.normal(key, x.shape, x.dtype), keep
    if objective.corruption == "mask":
        keep = jax.random.bernoulli(key, 1.0 - objective.mask_rate, keep.shape).astype(x.dtype)
        return x * keep, keep
    if objective.corruption == "sr":
        return down_up(x, objective.sr_factor, objective.sr_upsample), keep
    return x, keep


def make_task(config) -> Task:
    o = config.objective
    graphdef, _, rest = split_module(build_model(config, nnx.Rngs(0)))
    tx = optim.make_optimizer(config.optim, config.train.num_steps)

    def model(params):
        return nnx.merge(graphdef, params, rest)

    def loss_fn(params, x, key):
        corrupted, _ = corrupt(x, key, o)
        x_hat, _, stats = model(params)(corrupted, jax.random.fold_in(key, 1))
        recon = jnp.mean(jnp.square(x_hat - x))
        penalty = stats.penalty
        psnr = jnp.mean(-10.0 * jnp.log10(jnp.mean(jnp.square(x_hat - x), axis=(1, 2, 3)) + 1e-12))
        metrics = {"loss": recon + penalty, "loss/recon": recon, "loss/sparsity": penalty, "recon/psnr": psnr,
                   **sparsity.log_metrics({"code": stats})}
        return recon + penalty, metrics

    def init(rng, batch):
        del batch
        _, params, _ = split_module(build_model(config, nnx.Rngs(params=rng)))
        return TrainState.create(params, tx)

    def train_step(state, batch, rng):
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, batch["image"], rng)
        return state.apply_gradients(grads, tx), {**metrics, **global_norms(grads=grads)}

    def eval_step(state, batch):
        x = batch["image"]
        corrupted, keep = corrupt(x, jax.random.key(EVAL_KEY), o)
        x_hat, code, _ = model(state.params)(corrupted)
        restored = keep * corrupted + (1.0 - keep) * x_hat if o.corruption == "mask" else x_hat
        return {"reconstruction": restored, "target": x, "corrupted": corrupted, "code": code, "features": code}

    return Task(init=init, train_step=train_step, eval_step=eval_step)
