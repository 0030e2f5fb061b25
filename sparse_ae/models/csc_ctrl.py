"""CSC-CTRL autoencoder: multi-stage convolutional sparse coding encoder, sparse-deconvolution decoder.

Generative assumption: x = D_1 ∗ z_1, z_1 = D_2 ∗ z_2, …, z_{L−1} = D_L ∗ z_L with sparse z_ℓ.

Encoder f (stage ℓ = 1..L, z_0 = x): z_ℓ = T unrolled FISTA steps on
½‖z_{ℓ−1} − D_ℓ ∗ z‖² + λ_ℓ‖z‖₁ (z ≥ 0 with ``nonneg``) from z = 0, stride s_ℓ (a stride-2
stage halves height and width), atoms of D_ℓ normalised to unit norm inside the call, step
1/(margin · L_ℓ) with L_ℓ = ‖D_ℓ‖² from a warm-started power iteration held outside the module
(the task's state) and read under ``stop_gradient``. Head: flatten z_L, one linear map to d,
divide by the norm: the feature lies on the unit sphere.

Decoder g: a linear map from √d · feature to the top code shape, then for ℓ = L..1 a synthesis
u = D'_ℓ ∗ ẑ_ℓ (transposed convolution with unit-norm atoms); between stages the next code is the
sparse code of u under the identity dictionary, ẑ_{ℓ−1} = argmin ½‖ẑ − u‖² + λ'_ℓ‖ẑ‖₁ (= a soft
threshold, non-negative with ``decoder_nonneg``); the top code is thresholded the same way. Output
x̂ = D'_1 ∗ ẑ_1 (plus ``output``: 'none' | 'sigmoid' | 'clip'). D'_ℓ are the decoder's own
parameters, or with ``tied`` the encoder's atoms under ``stop_gradient`` (the decoder player
cannot move the encoder's dictionaries).

λ_ℓ and λ'_ℓ are learned per atom (stored as logs) unless ``learn_lam`` is False.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae.sparse_coding import dictionaries, operators, prox, solvers

OUTPUTS = ("none", "sigmoid", "clip")


def output_activation(x: jax.Array, kind: str) -> jax.Array:
    """The decoder's last nonlinearity: identity, sigmoid or clip to [0, 1]."""
    if kind == "sigmoid":
        return jax.nn.sigmoid(x)
    if kind == "clip":
        return jnp.clip(x, 0.0, 1.0)
    return x


def unit_sphere(h: jax.Array) -> jax.Array:
    """Rows divided by their L2 norm (smoothed at 0, so the gradient stays finite there)."""
    return h / jnp.sqrt(jnp.sum(h * h, axis=-1, keepdims=True) + 1e-12)


def decoder_input(features: jax.Array) -> jax.Array:
    """√d · z: unit-sphere features rescaled to entries of unit mean square before the decoder's
    linear head, so its default (LeCun) init gives O(1) outputs."""
    return features * math.sqrt(features.shape[-1])


class Threshold(nnx.Module):
    """Per-channel threshold λ = exp(log_lam), learned or fixed."""

    def __init__(self, channels: int, init: float, learn: bool):
        value = jnp.full((channels,), math.log(init), jnp.float32)
        self.log_lam = nnx.Param(value) if learn else nnx.Variable(value)

    def __call__(self) -> jax.Array:
        return jnp.exp(self.log_lam[...])


class CSCStage(nnx.Module):
    """One convolutional sparse-coding stage: dictionary (k, k, M, C), threshold, stride."""

    def __init__(self, in_channels: int, num_atoms: int, kernel_size: int, stride: int, *, lam: float,
                 learn_lam: bool, num_iters: int, nonneg: bool, boundary: str, lipschitz_margin: float,
                 unroll: int | None, rngs: nnx.Rngs):
        shape = (kernel_size, kernel_size, num_atoms, in_channels)
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), shape) / math.sqrt(kernel_size ** 2 * in_channels))
        self.lam = Threshold(num_atoms, lam, learn_lam)
        self.stride, self.boundary, self.num_iters = stride, boundary, num_iters
        self.nonneg, self.margin, self.unroll = nonneg, lipschitz_margin, unroll

    def atoms(self) -> jax.Array:
        """Unit-norm atoms (k, k, M, C)."""
        return dictionaries.normalize_atoms(self.kernel[...])

    def operator(self, atoms: jax.Array | None = None) -> operators.LinearOperator:
        return operators.conv_operator(self.atoms() if atoms is None else atoms, stride=self.stride,
                                       boundary=self.boundary)

    def __call__(self, y: jax.Array, lipschitz: jax.Array) -> jax.Array:
        """Sparse code (B, H/s, W/s, M) of ``y`` (B, H, W, C); ``lipschitz`` ≈ ‖D‖² (no gradient)."""
        step = 1.0 / (self.margin * jax.lax.stop_gradient(lipschitz))
        return solvers.fista(self.operator(), y, self.lam(), step, self.num_iters, nonneg=self.nonneg,
                             unroll=self.unroll)


def stage_shapes(image_shape: Sequence[int], channels: Sequence[int], strides: Sequence[int]
                 ) -> tuple[tuple[int, int, int], ...]:
    """Code shapes (h, w, M) per stage for an (H, W, C) image; ValueError if a stride misfits."""
    h, w, _ = image_shape
    shapes = []
    for i, (m, s) in enumerate(zip(channels, strides)):
        if h % s or w % s:
            raise ValueError(f"stage {i + 1}: stride {s} does not divide the {h}x{w} input; "
                             "use image sizes divisible by the product of config.model.strides")
        h, w = h // s, w // s
        shapes.append((h, w, m))
    return tuple(shapes)


class CSCEncoder(nnx.Module):
    """x (B, H, W, C) -> features (B, d) on the unit sphere, and the codes of every stage."""

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, *, lam: Sequence[float], rngs: nnx.Rngs, **stage_kw):
        in_channels = [image_shape[-1], *channels[:-1]]
        self.stages = nnx.List([
                CSCStage(c, m, k, s, lam=l, rngs=rngs, **stage_kw)
                for c, m, k, s, l in zip(in_channels, channels, kernel_sizes, strides, lam)])
        self.code_shapes = stage_shapes(image_shape, channels, strides)
        self.head = nnx.Linear(math.prod(self.code_shapes[-1]), feature_dim, rngs=rngs)

    def power_step(self, vectors: Sequence[jax.Array], num_iters: int) -> tuple[jax.Array, list[jax.Array]]:
        """Warm-started power iterations per stage: (L_ℓ (L,), new vectors), both without gradient."""
        lips, new = [], []
        for stage, v in zip(self.stages, vectors):
            op = stage.operator(jax.lax.stop_gradient(stage.atoms()))
            lip, v = operators.power_iteration(op, jax.lax.stop_gradient(v), num_iters=num_iters)
            lips.append(lip)
            new.append(v)
        return jax.lax.stop_gradient(jnp.stack(lips)), jax.lax.stop_gradient(new)

    def __call__(self, x: jax.Array, lipschitz: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        codes, z = [], x
        for stage, lip in zip(self.stages, lipschitz):
            z = stage(z, lip)
            codes.append(z)
        return unit_sphere(self.head(z.reshape(z.shape[0], -1))), codes


class CSCDecoder(nnx.Module):
    """features (B, d) -> image (B, H, W, C) by multi-stage sparse deconvolution."""

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, *, lam: Sequence[float], learn_lam: bool,
                 nonneg: bool, boundary: str, tied: bool, output: str, rngs: nnx.Rngs):
        self.code_shapes = stage_shapes(image_shape, channels, strides)
        self.head = nnx.Linear(feature_dim, math.prod(self.code_shapes[-1]), rngs=rngs)
        out_channels = [image_shape[-1], *channels[:-1]]
        self.kernels = None if tied else nnx.List([
                nnx.Param(jax.random.normal(rngs.params(), (k, k, m, c)) / math.sqrt(k * k * c))
                for k, m, c in zip(kernel_sizes, channels, out_channels)])
        self.lam = nnx.List([Threshold(m, l, learn_lam) for m, l in zip(channels, lam)])
        self.strides, self.boundary, self.nonneg, self.output = tuple(strides), boundary, nonneg, output

    def atoms(self, tied_atoms: Sequence[jax.Array] | None = None) -> list[jax.Array]:
        """Unit-norm synthesis atoms per stage (k, k, M_ℓ, C_{ℓ−1})."""
        if self.kernels is None:
            if tied_atoms is None:
                raise ValueError("a tied decoder needs the encoder's atoms")
            return [jax.lax.stop_gradient(a) for a in tied_atoms]
        return [dictionaries.normalize_atoms(k[...]) for k in self.kernels]

    def synthesize(self, top_code: jax.Array, atoms: Sequence[jax.Array]) -> jax.Array:
        """Top-stage code (B, h_L, w_L, M_L) -> image, sparse coding between stages."""
        z = top_code
        for level in reversed(range(len(atoms))):
            z = prox.soft_threshold(z, self.lam[level](), nonneg=self.nonneg)
            z = operators.conv_synthesis(atoms[level], z, stride=self.strides[level], boundary=self.boundary)
        return output_activation(z, self.output)

    def __call__(self, features: jax.Array, tied_atoms: Sequence[jax.Array] | None = None) -> jax.Array:
        top = self.head(decoder_input(features)).reshape(features.shape[0], *self.code_shapes[-1])
        return self.synthesize(top, self.atoms(tied_atoms))


class CSCCTRL(nnx.Module):
    """Encoder and decoder of CSC-CTRL; the two players are the ``encoder`` and ``decoder`` params.

    ``state`` below is the non-trained model state: {"power_vectors": [v_ℓ (1, h_ℓ, w_ℓ, M_ℓ)],
    "lipschitz": (L,)}.
    """

    def __init__(self, image_shape: Sequence[int], *, channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], feature_dim: int, lam: Sequence[float], decoder_lam: Sequence[float],
                 learn_lam: bool, num_iters: int, nonneg: bool, boundary: str, lipschitz_margin: float,
                 tied: bool, output: str, unroll: int | None, rngs: nnx.Rngs, decoder_nonneg: bool = True):
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r} is not one of {OUTPUTS}")
        geometry = dict(channels=channels, kernel_sizes=kernel_sizes, strides=strides, feature_dim=feature_dim)
        self.encoder = CSCEncoder(image_shape, **geometry, lam=lam, learn_lam=learn_lam, num_iters=num_iters,
                                  nonneg=nonneg, boundary=boundary, lipschitz_margin=lipschitz_margin,
                                  unroll=unroll, rngs=rngs)
        self.decoder = CSCDecoder(image_shape, **geometry, lam=decoder_lam, learn_lam=learn_lam, nonneg=decoder_nonneg,
                                  boundary=boundary, tied=tied, output=output, rngs=rngs)

    def init_state(self, rng: jax.Array, num_iters: int) -> dict:
        """Random power-iteration start vectors, refined by ``num_iters`` iterations."""
        keys = jax.random.split(rng, len(self.encoder.code_shapes))
        vectors = [jax.random.normal(k, (1, *shape)) for k, shape in zip(keys, self.encoder.code_shapes)]
        return self.refresh_state({"power_vectors": vectors}, num_iters)

    def refresh_state(self, state: dict, num_iters: int) -> dict:
        """``num_iters`` warm-started power iterations with the current dictionaries."""
        lipschitz, vectors = self.encoder.power_step(state["power_vectors"], num_iters)
        return {"power_vectors": vectors, "lipschitz": lipschitz}

    def encode(self, x: jax.Array, state: dict) -> tuple[jax.Array, list[jax.Array]]:
        return self.encoder(x, state["lipschitz"])

    def decode(self, features: jax.Array, state: dict) -> jax.Array:
        del state
        tied = [s.atoms() for s in self.encoder.stages] if self.decoder.kernels is None else None
        return self.decoder(features, tied)

    def dictionaries(self) -> dict[str, list[jax.Array]]:
        """Unit-norm atoms per stage of the encoder and the decoder."""
        enc = [s.atoms() for s in self.encoder.stages]
        return {"encoder": enc, "decoder": self.decoder.atoms(enc)}
