"""Task ``dcea``: deep convolutional exponential-family autoencoders (DCEA-C / DCEA-UC).

Two objectives (``config.model.objective``):

- ``"nll"`` (unsupervised ECDL): the model reads the observations (``batch["counts"]`` for
  Binomial and Poisson, ``batch["image"]`` for Gaussian) and the loss is the family's mean
  negative log-likelihood of them at η̂ = H x_T + mu. Source: ``binomial_spikes`` (1-D).
- ``"denoise"`` (supervised Poisson denoising, the paper's protocol): for a clean image x in
  [0, 1], Q = max(x)/peak, y ~ Poisson(x/Q) (drawn in the step), estimate x̂ = Q·exp(η̂(y)),
  loss = mean((x̂ − x)²).

``config.model``: :class:`ModelConfig` (the fields of :class:`sparse_ae.models.dcea.DCEAConfig`
and the task's own; ``restart_atoms``: after each step, atoms without a non-zero code in the
batch, or delayed copies of a busier atom, restart from the batch's highest-energy residual
windows, see :func:`restart_atoms`). ``eval_step`` returns "reconstruction" (x̂, or the rate estimate for
"nll"), "target", "noisy", "natural" and, for "nll", "nll" (each example's negative
log-likelihood per observation); an optional ``batch["noise_seed"]`` (B,) int32 selects the noise
draw of each example. ``init_dictionary`` starts every kernel from a saved dictionary.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sparse_ae import optim
from sparse_ae.models.dcea import DCEA, DCEAConfig, decoder_kernel, restart_atoms, with_kernels
from sparse_ae.sparse_coding import families, metrics as sc_metrics
from sparse_ae.train.state import TrainState, global_norms, split_module
from sparse_ae.train.task import Task
from sparse_ae.utils import sections
from sparse_ae.utils.images import rescale


@dataclasses.dataclass(frozen=True)
class ModelConfig(DCEAConfig):
    """``config.model`` of task ``dcea``: the fields of :class:`DCEAConfig` and the task's own."""

    # Scan unroll of the solver; 0: the backend default.
    unroll: int = 0
    # "nll" (unsupervised ECDL of the observations) or "denoise" (supervised Poisson denoising).
    objective: Literal["nll", "denoise"] = "denoise"
    # Shift averaging in eval_step (training follows shift_average).
    eval_shift_average: bool = True
    # Poisson peak of "denoise": Q = max(x)/peak.
    peak: float = 4.0
    # Noise draws per image in the Poisson evaluation.
    noise_draws: int = 10
    # After each step, restart unused or duplicated atoms (:func:`restart_atoms`).
    restart_atoms: bool = False
    # An .npy of the initial dictionary (kh, kw, num_filters, channels), used as it is by every
    # kernel (tied or untied); "": drawn at random (init_norm).
    init_dictionary: str = ""


def config_sections(config) -> dict[str, type]:
    """The dataclass of each of this task's config sections."""
    return {"model": ModelConfig}


def dcea_config(model, *, eval_mode: bool = False) -> DCEAConfig:
    """The static :class:`DCEAConfig` of ``config.model`` (eval: ``eval_shift_average``)."""
    m = sections.parse(model, ModelConfig, "config.model")
    values = {f.name: getattr(m, f.name) for f in dataclasses.fields(DCEAConfig)}
    values["unroll"] = m.unroll or None
    if eval_mode:
        values["shift_average"] = m.eval_shift_average
    return DCEAConfig(**values)


def validate_config(config) -> None:
    """Clear errors naming ``config.model.*`` / ``config.data.*`` before anything compiles."""
    m = sections.parse_section(config, "model", ModelConfig)
    if m.objective == "denoise":
        if m.family != "poisson":
            raise ValueError(f"config.model.family={m.family!r}: objective 'denoise' needs 'poisson'")
        if not m.peak > 0:
            raise ValueError(f"config.model.peak={m.peak} must be > 0 (the Poisson peak: Q = max(x)/peak)")
    m.validate()
    if m.noise_draws < 1:
        raise ValueError(f"config.model.noise_draws={m.noise_draws} must be >= 1")
    if m.channels != config.data.channels:
        raise ValueError(f"config.model.channels={m.channels} must equal config.data.channels={config.data.channels}")


def initial_dictionary(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 kernel of shape ``shape`` saved in ``path`` (.npy); ValueError naming
    ``config.model.init_dictionary`` when it cannot be read or has another shape."""
    try:
        kernel = np.load(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"config.model.init_dictionary={path!r} is not a readable .npy file: {err}") from err
    if kernel.shape != tuple(shape):
        raise ValueError(f"config.model.init_dictionary={path!r} holds an array of shape {kernel.shape}; the model's "
                         f"dictionary is {tuple(shape)} (kh, kw, num_filters, channels)")
    return kernel.astype(np.float32)


def observations(model, batch) -> jax.Array:
    """The model input of objective "nll": counts (Binomial, Poisson) or the image (Gaussian)."""
    return batch["image"] if model.family == "gaussian" else batch["counts"]


def poisson_noise(key: jax.Array, clean: jax.Array, peak: float) -> tuple[jax.Array, jax.Array]:
    """(counts y ~ Poisson(x/Q), Q (B, 1, 1, 1)) with Q = max(x)/peak per image."""
    q = jnp.maximum(clean.max(axis=(1, 2, 3), keepdims=True), 1e-6) / peak
    return jax.random.poisson(key, clean / q).astype(clean.dtype), q


def make_task(config) -> Task:
    m = sections.parse(config.model, ModelConfig, "config.model")
    train_cfg, eval_cfg = dcea_config(m), dcea_config(m, eval_mode=True)
    family = families.get_family(m.family, trials=m.trials)
    # Structure only: abstract modules skip the initial kernels' power iterations.
    graphdef, abstract, rest = split_module(nnx.eval_shape(lambda: DCEA(train_cfg, rngs=nnx.Rngs(0))))
    initial = initial_dictionary(m.init_dictionary, decoder_kernel(abstract).shape) if m.init_dictionary else None
    eval_graphdef, _, _ = split_module(nnx.eval_shape(lambda: DCEA(eval_cfg, rngs=nnx.Rngs(0))))
    tx = optim.make_optimizer(config.optim, config.train.num_steps)

    def model(params, eval_mode=False) -> DCEA:
        return nnx.merge(eval_graphdef if eval_mode else graphdef, params, rest)

    def noisy_input(batch, key):
        if m.objective == "nll":
            return observations(m, batch), None
        return poisson_noise(key, batch["image"], m.peak)

    def estimate(natural, q):
        if m.objective == "nll":
            return family.inverse_link(natural) / (m.trials if m.family == "binomial" else 1)
        return q * jnp.exp(natural)

    def init(rng, batch):
        del batch  # parameters do not depend on the data
        _, params, _ = split_module(DCEA(train_cfg, rngs=nnx.Rngs(params=rng)))
        if initial is not None:
            params = with_kernels(params, jnp.asarray(initial))
        return TrainState.create(params, tx)

    def train_step(state, batch, rng):
        y, q = noisy_input(batch, rng)

        def loss_fn(params):
            out = model(params)(y)
            if m.objective == "nll":
                loss = family.nll(y, out.natural) / y.size
                terms = {"loss/nll": loss}
            else:
                loss = jnp.mean((estimate(out.natural, q) - batch["image"]) ** 2)
                terms = {"loss/mse": loss}
            metrics = {**terms, "sparsity/code_nonzero": sc_metrics.fraction_nonzero(out.code)}
            return loss, (metrics, out)

        (loss, (metrics, out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        state = state.apply_gradients(grads, tx)
        if m.restart_atoms:
            params, metrics["atoms/restarted"] = restart_atoms(
                    state.params, out.code, -family.data_grad(y, out.natural))
            state = state.replace(params=params)
        return state, {"loss": loss, **metrics, **global_norms(grad=grads)}

    def eval_step(state, batch):
        if m.objective == "nll":
            y, q = observations(m, batch), None
            noisy, target = batch["image"], batch.get("rate", batch["image"])
        else:
            seeds = batch.get("noise_seed", jnp.zeros(batch["image"].shape[:1], jnp.int32))
            keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(config.seed), s))(seeds)
            y, q = jax.vmap(lambda k, x: poisson_noise(k, x[None], m.peak))(keys, batch["image"])
            y, q = y[:, 0], q[:, 0]
            noisy, target = q * y, batch["image"]
        natural = model(state.params, eval_mode=True)(y).natural
        outputs = {"reconstruction": estimate(natural, q), "target": target, "noisy": noisy, "natural": natural}
        if m.objective == "nll":
            outputs["nll"] = jax.vmap(family.nll)(y, natural) / np.prod(y.shape[1:])
        return outputs

    def images(state, batch):
        del batch
        atoms = jnp.transpose(decoder_kernel(state.params), (2, 0, 1, 3))  # (M, kh, kw, C)
        return {"atoms": rescale(atoms)}

    return Task(init=init, train_step=train_step, eval_step=eval_step, images=images,
                dictionary=lambda state: decoder_kernel(state.params))
