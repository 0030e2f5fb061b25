"""Toy task ``csc_ae``: a one-stage convolutional sparse-coding autoencoder.

Encoder: T unrolled FISTA steps on ½‖D∗z − x‖² + λ‖z‖₁ (``sparse_coding.fista``) with the
learned convolutional dictionary D (atoms normalised functionally to unit norm on every call;
the parameter itself is never rewritten). The step is 1/(margin·L), L = ‖D‖² from a power
iteration warm-started from the previous step's vector (kept in ``state.extra`` and read under
``stop_gradient``). Decoder: x̂ = D∗z with the same dictionary. Training backpropagates through
all T steps. ``model.operator="fft"`` evaluates D and Dᵀ with real FFTs (the same operator for
stride 1 and the circular boundary; faster for kernels of 8×8 and up, ``benchmarks/fft_operator.py``).

Loss per pixel, so that it is the LASSO objective the encoder minimises, divided by B·H·W·C:
  loss/recon = ½ mean((x̂ − x)²),   loss/l1 = λ Σ|z| / (B·H·W·C),   loss = their sum.

``config.model`` fields: :class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sparse_ae import optim
from sparse_ae.sparse_coding import dictionaries, fourier, metrics as sc_metrics, operators, solvers
from sparse_ae.train.state import TrainState, global_norms, split_module
from sparse_ae.train.task import Task
from sparse_ae.utils import sections
from sparse_ae.utils.images import rescale


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``config.model`` of task ``csc_ae``."""

    num_atoms: int = 16                              # atoms M of the convolutional dictionary
    kernel_size: int = 5                             # atom height = width k
    stride: int = 1                                  # of the synthesis (code: image_size / stride a side)
    boundary: Literal["circular", "zero"] = "circular"  # of the convolution
    operator: Literal["spatial", "fft"] = "spatial"  # how D and Dᵀ run: conv, or real FFTs (stride 1, circular)
    num_iters: int = 10                              # unrolled FISTA steps T
    lam: float = 0.05                                # L1 weight λ
    nonneg: bool = False                             # non-negative code
    power_iters_init: int = 50                       # power iterations of the first Lipschitz estimate
    power_iters: int = 3                             # ... per training step (warm-started)
    lipschitz_margin: float = 1.05                   # ≥ 1: step 1/(margin·L), for an estimate that lags


def config_sections(config) -> dict[str, type]:
    """The dataclass of each of this task's config sections."""
    return {"model": ModelConfig}


def validate_config(config) -> None:
    m = sections.parse_section(config, "model", ModelConfig)
    for key in ("num_atoms", "kernel_size", "stride", "num_iters", "power_iters_init", "power_iters"):
        if getattr(m, key) < 1:
            raise ValueError(f"config.model.{key}={getattr(m, key)!r} must be an integer >= 1")
    if not m.lam >= 0:
        raise ValueError(f"config.model.lam={m.lam} must be >= 0")
    if not m.lipschitz_margin >= 1:
        raise ValueError(f"config.model.lipschitz_margin={m.lipschitz_margin} must be >= 1")
    size = config.data.image_size
    if not size or size % m.stride:
        raise ValueError(f"config.data.image_size={size} must be a positive multiple of config.model.stride={m.stride}")
    if m.kernel_size > size:
        raise ValueError(f"config.model.kernel_size={m.kernel_size} exceeds config.data.image_size={size}")
    if m.operator == "fft" and (m.stride, m.boundary) != (1, "circular"):
        raise ValueError(f"config.model.operator='fft' needs stride 1 and the circular boundary, got "
                         f"stride={m.stride}, boundary={m.boundary!r}; use operator='spatial'")


class ConvDictionary(nnx.Module):
    """A convolutional dictionary (k, k, M, C) for ``size`` × ``size`` images; :meth:`operator` uses
    unit-norm atoms."""

    def __init__(self, m: ml_collections.ConfigDict, channels: int, size: int, *, rngs: nnx.Rngs):
        shape = (m.kernel_size, m.kernel_size, m.num_atoms, channels)
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), shape) / m.kernel_size)
        self.stride, self.boundary, self.kind, self.size = m.stride, m.boundary, m.operator, size

    def atoms(self) -> jax.Array:
        return dictionaries.normalize_atoms(self.kernel[...])

    def operator(self) -> operators.LinearOperator:
        if self.kind == "fft":
            return fourier.fourier_operator(self.atoms(), (self.size, self.size))
        return operators.conv_operator(self.atoms(), stride=self.stride, boundary=self.boundary)


def make_task(config) -> Task:
    m = config.model
    channels, size = config.data.channels, config.data.image_size
    graphdef, _, rest = split_module(ConvDictionary(m, channels, size, rngs=nnx.Rngs(0)))
    tx = optim.make_optimizer(config.optim, config.train.num_steps)
    code_shape = (1, size // m.stride, size // m.stride, m.num_atoms)  # one image's code

    def dictionary(params) -> ConvDictionary:
        return nnx.merge(graphdef, params, rest)

    def lipschitz(op, vector, num_iters):
        value, vector = operators.power_iteration(op, jax.lax.stop_gradient(vector), num_iters=num_iters)
        return jax.lax.stop_gradient(value), jax.lax.stop_gradient(vector)

    def encode(op, x, lip):
        return solvers.fista(op, x, m.lam, 1.0 / (m.lipschitz_margin * lip), m.num_iters, nonneg=m.nonneg)

    def forward(params, x, vector, power_iters):
        op = dictionary(params).operator()
        lip, vector = lipschitz(op, vector, power_iters)
        z = encode(op, x, lip)
        return op.forward(z), z, lip, vector

    def init(rng, batch):
        del batch  # the dictionary starts random; shapes come from the config
        param_rng, vector_rng = jax.random.split(rng)
        _, params, _ = split_module(ConvDictionary(m, channels, size, rngs=nnx.Rngs(params=param_rng)))
        vector = jax.random.normal(vector_rng, code_shape)
        lip, vector = lipschitz(dictionary(params).operator(), vector, m.power_iters_init)
        return TrainState.create(params, tx, extra={"power_vector": vector, "lipschitz": lip})

    def train_step(state, batch, rng):
        del rng  # deterministic
        x = batch["image"]

        def loss_fn(params):
            recon, z, lip, vector = forward(params, x, state.extra["power_vector"], m.power_iters)
            terms = {"loss/recon": 0.5 * jnp.mean((recon - x) ** 2),
                     "loss/l1": m.lam * jnp.sum(jnp.abs(z)) / x.size}
            aux = {**terms, "sparsity/code_nonzero": sc_metrics.fraction_nonzero(z), "lipschitz": lip}
            return terms["loss/recon"] + terms["loss/l1"], (aux, {"power_vector": vector, "lipschitz": lip})

        (loss, (metrics, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return state.apply_gradients(grads, tx, extra=extra), {"loss": loss, **metrics, **global_norms(grad=grads)}

    def eval_step(state, batch):
        recon, z, _, _ = forward(state.params, batch["image"], state.extra["power_vector"], m.power_iters)
        return {"reconstruction": recon, "code": z}

    def images(state, batch):
        del batch
        atoms = jnp.transpose(dictionary(state.params).atoms(), (2, 0, 1, 3))  # (M, k, k, C)
        return {"atoms": rescale(atoms)}

    return Task(init=init, train_step=train_step, eval_step=eval_step, images=images)
