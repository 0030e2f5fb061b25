"""SC-VAE (Xiao et al.): a VQGAN-style autoencoder whose bottleneck sparse-codes every latent vector
with learned ISTA over a DCT dictionary; and its baselines with the same encoder/decoder.

x (B, H, W, C) → encoder → E (B, h, w, n), h = H/2^d → bottleneck → decoder input (B, h, w, n)
→ decoder → x̂. ``config.model.bottleneck`` picks the bottleneck:

- "lista": Z_ij = LISTA(E_ij) (K atoms, ``lista_steps`` = s steps with W_e (K, n), S (K, K) and the
  threshold θ shared over steps, initialised so that LISTA is s ISTA steps for
  ½‖E_ij − D z‖² + α‖z‖₁, step 1/L); decoder input Ẽ_ij = D Z_ij. D (n, K) is the overcomplete
  2-D DCT over √n × √n "patches" (``dictionary="dct"``: fixed, orthogonal atoms when K = n;
  needs K ≥ n) or starts there and is learned with unit-norm columns (``"learned"``); its atoms
  are the DCT-II's (``dct_atoms="dct_ii"``) or K-SVD's overcomplete DCT (``"ksvd"``, the authors' code). α (the
  weight of ‖Z‖₁ in the loss, ``alpha``) is learned as exp(log α) (kept positive) when
  ``learn_alpha``.
- "ista": learned ISTA as the authors' code (sotiraslab/SC-VAE) unrolls it: D (n, K) and the step
  constant c (initialised ‖D‖₂²) are trained, the threshold α/c follows c with α fixed; the code is
  z₀ = soft(Dᵀe, α/c) (not divided by c, so not an ISTA step from zero), then ``lista_steps`` = s steps
  z ← soft((I − DᵀD/c) z + Dᵀe/c, α/c): s + 1 thresholds. D is not renormalised. Their loss has no
  ‖Z‖₁ term: the fixed threshold alone makes the code sparse.
- "vq": VQ-VAE, a codebook of K vectors (n,) initialised from latent vectors of the first batch;
  nearest codeword with the straight-through gradient, the codebook learned by its loss term or,
  with ``vq_ema``, by exponential moving averages (decay ``ema_decay``) of assigned vectors.
- "none": the plain continuous autoencoder (decoder input = E).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sparse_ae.models import vqgan_blocks
from sparse_ae.sparse_coding import dictionaries, learned, prox
from sparse_ae.utils import sections

BOTTLENECKS = ("lista", "ista", "vq", "none")
SPARSE_BOTTLENECKS = ("lista", "ista")  # decoder input D Z from a sparse code Z
DICTIONARIES = ("dct", "learned")
DCT_ATOMS = ("dct_ii", "ksvd")
EMA_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``config.model`` of task ``sc_vae`` (a CPU-sized model for 64×64 images)."""

    bottleneck: Literal[BOTTLENECKS] = "lista"
    channels: int = 32                             # C′: width of the first level
    channel_mult: tuple[int, ...] = (1, 2, 2)      # width C′·mult[i] at level i (last entry repeats)
    num_res_blocks: int = 1                        # residual blocks per level
    num_down: int = 2                              # d: downsamplings, latent grid H/2^d
    attn_resolutions: tuple[int, ...] = ()         # spatial sizes whose levels get self-attention
                                                   # (the middle always has one)
    latent_dim: int = 64                           # n: latent vector size (a perfect square for DCT)
    num_atoms: int = 128                           # K: dictionary atoms (lista) or codebook size (vq)
    lista_steps: int = 16                          # s (ista: s + 1 thresholds)
    lista_unroll: int = 0                          # scan unroll of the LISTA steps; 0 = backend default
    dictionary: Literal[DICTIONARIES] = "dct"      # fixed, or learned (lista: unit-norm columns), DCT init
    dct_atoms: Literal[DCT_ATOMS] = "dct_ii"       # DCT-II by radial frequency, or K-SVD's (the authors' code)
    alpha: float = 1.0                             # α: l1 weight (lista: initial; threshold starts at α/L)
                                                   # or the fixed ISTA weight (ista: threshold α/c)
    learn_alpha: bool = True                       # train α
    latent_weight: float = 1.0                     # β, see sparse_ae.objectives.sc_vae
    commitment: float = 0.25                       # γ of VQ-VAE
    vq_ema: bool = False                           # VQ codebook by EMA updates (else by gradient)
    ema_decay: float = 0.99                        # decay of those EMA updates


def validate(model: ml_collections.ConfigDict, image_size: int, field: str = "config.model") -> None:
    """ValueError/TypeError naming ``field.<key>`` (or config.data.image_size) for a bad model config."""
    m = sections.parse(model, ModelConfig, field)
    for key, low in (("channels", 1), ("num_res_blocks", 1), ("num_down", 0), ("latent_dim", 1),
                     ("num_atoms", 1), ("lista_steps", 1), ("lista_unroll", 0)):
        if getattr(m, key) < low:
            raise ValueError(f"{field}.{key}={getattr(m, key)!r} must be an integer >= {low}")
    if not m.channel_mult or not all(c >= 1 for c in m.channel_mult):
        raise ValueError(f"{field}.channel_mult={m.channel_mult!r} must be a non-empty list of integers >= 1")
    factor = 2 ** m.num_down
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1 or image_size % factor:
        raise ValueError(f"config.data.image_size={image_size} is not divisible by 2^num_down = {factor} "
                         f"({field}.num_down={m.num_down}): use an image size that is a multiple of {factor} "
                         "or change num_down")
    for key in ("alpha", "ema_decay", "latent_weight", "commitment"):
        if not getattr(m, key) > 0:
            raise ValueError(f"{field}.{key}={getattr(m, key)} must be > 0")
    if not m.ema_decay < 1:
        raise ValueError(f"{field}.ema_decay={m.ema_decay} must be < 1")
    if m.bottleneck in SPARSE_BOTTLENECKS:
        check_dictionary(m.latent_dim, m.num_atoms, m.dictionary, field)


def dct_dictionary(latent_dim: int, num_atoms: int, kind: str, atoms: str) -> jax.Array:
    """The (n, K) DCT dictionary over √n × √n "patches" of a bottleneck whose dictionary is ``kind``
    (checked by :func:`check_dictionary`): ``atoms`` "dct_ii" or "ksvd" (``dictionaries``)."""
    check_dictionary(latent_dim, num_atoms, kind, field="model")
    build = dictionaries.ksvd_dct if atoms == "ksvd" else dictionaries.overcomplete_dct
    return build(math.isqrt(latent_dim), num_atoms)


def check_dictionary(latent_dim: int, num_atoms: int, kind: str, field: str = "config.model") -> None:
    """The DCT dictionary needs n = p² and, for the fixed orthogonal-atom one, K ≥ n."""
    p = math.isqrt(latent_dim)
    if p * p != latent_dim:
        raise ValueError(f"{field}.latent_dim={latent_dim} must be a perfect square p² for the 2-D DCT "
                         f"dictionary over p×p patches (e.g. {p * p} or {(p + 1) ** 2})")
    if kind == "dct" and num_atoms < latent_dim:
        raise ValueError(f"{field}.num_atoms={num_atoms} < {field}.latent_dim={latent_dim}: the fixed DCT "
                         f"dictionary (dictionary='dct', orthogonal atoms) must be complete or overcomplete "
                         f"(num_atoms >= latent_dim) to represent every latent vector; raise num_atoms "
                         "or use dictionary='learned'")


class Constant(nnx.Variable):
    """A fixed array that is part of the model but never trained (e.g. the DCT dictionary)."""


class EmaState(nnx.Variable):
    """State of the EMA codebook (codebook, cluster sizes, sums), updated outside the gradient."""


class BottleneckOutput(NamedTuple):
    """decoder_input (B, h, w, n); code: Z (lista, (B, h, w, K)), quantised e (vq) or E (none);
    indices (B, h, w) int32 for vq else None; counts (K,) and sums (K, n) of the assignment
    (vq with EMA) else None."""

    decoder_input: jax.Array
    code: jax.Array
    indices: jax.Array | None = None
    counts: jax.Array | None = None
    sums: jax.Array | None = None


class ListaBottleneck(nnx.Module):
    """Tied LISTA over the DCT dictionary; see the module docstring."""

    def __init__(self, latent_dim: int, num_atoms: int, num_steps: int, alpha: float, dictionary: str,
                 learn_alpha: bool, unroll: int | None = None, dct_atoms: str = "dct_ii"):
        D = dct_dictionary(latent_dim, num_atoms, dictionary, dct_atoms)
        self.dictionary = (nnx.Param if dictionary == "learned" else Constant)(D)
        self.learned_dictionary = dictionary == "learned"
        init = learned.lista_init(D, alpha, num_steps, tied=True)
        self.W_e, self.S, self.theta = (nnx.Param(init[k]) for k in ("W_e", "S", "theta"))
        self.log_alpha = (nnx.Param if learn_alpha else Constant)(jnp.log(jnp.asarray(alpha, jnp.float32)))
        self.num_steps, self.unroll = num_steps, unroll

    def atoms(self) -> jax.Array:
        """D (n, K); a learned dictionary is column-normalised on every call."""
        D = self.dictionary[...]
        return dictionaries.normalize_columns(D) if self.learned_dictionary else D

    def alpha(self) -> jax.Array:
        return jnp.exp(self.log_alpha[...])

    def synthesize(self, code: jax.Array) -> jax.Array:
        """D Z: (..., K) → (..., n)."""
        return code @ self.atoms().T

    def __call__(self, latent: jax.Array) -> BottleneckOutput:
        params = {"W_e": self.W_e[...], "S": self.S[...], "theta": self.theta[...]}
        code = learned.lista_apply(params, latent, num_layers=self.num_steps, unroll=self.unroll)
        return BottleneckOutput(self.synthesize(code), code)


class IstaBottleneck(nnx.Module):
    """The authors' learned ISTA: trained D and step constant c, threshold α/c; see the module docstring."""

    def __init__(self, latent_dim: int, num_atoms: int, num_steps: int, alpha: float, dictionary: str,
                 dct_atoms: str):
        D = dct_dictionary(latent_dim, num_atoms, dictionary, dct_atoms)
        self.dictionary = (nnx.Param if dictionary == "learned" else Constant)(D)
        self.step = nnx.Param(jnp.square(jnp.linalg.norm(D, ord=2)))
        self.alpha, self.num_steps = alpha, num_steps

    def synthesize(self, code: jax.Array) -> jax.Array:
        """D Z: (..., K) → (..., n)."""
        return code @ self.dictionary[...].T

    def __call__(self, latent: jax.Array) -> BottleneckOutput:
        D, c = self.dictionary[...], self.step[...]
        threshold = self.alpha / c
        correlation = latent @ D  # Dᵀe, (..., K)
        bias, transition = correlation / c, jnp.eye(D.shape[1], dtype=D.dtype) - D.T @ D / c
        code = prox.soft_threshold(correlation, threshold)
        for _ in range(self.num_steps):
            code = prox.soft_threshold(code @ transition + bias, threshold)
        return BottleneckOutput(self.synthesize(code), code)


class VectorQuantizer(nnx.Module):
    """Nearest-codeword quantiser with the straight-through gradient; codebook (K, n)."""

    def __init__(self, latent_dim: int, num_codes: int, ema: bool, decay: float, *, rngs: nnx.Rngs):
        limit = 1.0 / num_codes
        codebook = jax.random.uniform(rngs.params(), (num_codes, latent_dim), minval=-limit, maxval=limit)
        self.ema, self.decay = ema, decay
        self.codebook = (EmaState if ema else nnx.Param)(codebook)
        if ema:
            self.cluster_size = EmaState(jnp.ones((num_codes,)))
            self.embed_sum = EmaState(codebook)

    def init_from_latents(self, latent: jax.Array, key: jax.Array) -> None:
        """Codebook ← K latent vectors drawn from ``latent`` (..., n) (with replacement if fewer)."""
        flat = latent.reshape(-1, latent.shape[-1])
        num_codes = self.codebook.shape[0]
        index = jax.random.choice(key, flat.shape[0], (num_codes,), replace=flat.shape[0] < num_codes)
        self.codebook[...] = flat[index]
        if self.ema:
            self.embed_sum[...] = flat[index]

    def __call__(self, latent: jax.Array) -> BottleneckOutput:
        codebook = self.codebook[...]
        flat = latent.reshape(-1, latent.shape[-1])
        distances = (jnp.sum(flat ** 2, axis=1, keepdims=True) - 2 * flat @ codebook.T
                     + jnp.sum(codebook ** 2, axis=1))
        indices = jnp.argmin(distances, axis=1)
        quantized = codebook[indices].reshape(latent.shape)
        straight_through = latent + jax.lax.stop_gradient(quantized - latent)
        counts = sums = None
        if self.ema:
            one_hot = jax.nn.one_hot(indices, codebook.shape[0], dtype=flat.dtype)
            counts, sums = jnp.sum(one_hot, axis=0), one_hot.T @ jax.lax.stop_gradient(flat)
        return BottleneckOutput(straight_through, quantized, indices.reshape(latent.shape[:-1]).astype(jnp.int32),
                                counts, sums)

    def ema_update(self, counts: jax.Array, sums: jax.Array) -> None:
        """One EMA step of cluster sizes and sums; codebook = sums / Laplace-smoothed sizes."""
        keep = self.decay
        size = keep * self.cluster_size[...] + (1 - keep) * counts
        embed_sum = keep * self.embed_sum[...] + (1 - keep) * sums
        total = jnp.sum(size)
        smoothed = (size + EMA_EPS) / (total + size.shape[0] * EMA_EPS) * total
        self.cluster_size[...] = size
        self.embed_sum[...] = embed_sum
        self.codebook[...] = embed_sum / smoothed[:, None]


class Identity(nnx.Module):
    """The plain autoencoder's bottleneck: decoder input = code = E."""

    def __call__(self, latent: jax.Array) -> BottleneckOutput:
        return BottleneckOutput(latent, latent)


class Output(NamedTuple):
    reconstruction: jax.Array   # x̂ (B, H, W, C)
    latent: jax.Array           # E (B, h, w, n)
    bottleneck: BottleneckOutput


class SCVAE(nnx.Module):
    """Encoder, bottleneck (``m.bottleneck``) and decoder; ``m`` = ``config.model`` (:class:`ModelConfig`)."""

    def __init__(self, m: ml_collections.ConfigDict, image_size: int, image_channels: int, *, rngs: nnx.Rngs):
        validate(m, image_size)
        arch = dict(channels=m.channels, channel_mult=tuple(m.channel_mult), num_res_blocks=m.num_res_blocks,
                    num_down=m.num_down, attn_resolutions=tuple(m.attn_resolutions), image_size=image_size)
        self.encoder = vqgan_blocks.Encoder(image_channels, m.latent_dim, **arch, rngs=rngs)
        self.decoder = vqgan_blocks.Decoder(image_channels, m.latent_dim, **arch, rngs=rngs)
        self.kind = m.bottleneck
        if m.bottleneck == "lista":
            self.bottleneck = ListaBottleneck(m.latent_dim, m.num_atoms, m.lista_steps, m.alpha, m.dictionary,
                                              m.learn_alpha, m.lista_unroll or None, m.dct_atoms)
        elif m.bottleneck == "ista":
            self.bottleneck = IstaBottleneck(m.latent_dim, m.num_atoms, m.lista_steps, m.alpha, m.dictionary,
                                             m.dct_atoms)
        elif m.bottleneck == "vq":
            self.bottleneck = VectorQuantizer(m.latent_dim, m.num_atoms, m.vq_ema, m.ema_decay, rngs=rngs)
        else:
            self.bottleneck = Identity()

    def decoder_input(self, code: jax.Array) -> jax.Array:
        """The decoder input of a (possibly edited) code: D Z for lista and ista, the code itself otherwise."""
        return self.bottleneck.synthesize(code) if self.kind in SPARSE_BOTTLENECKS else code

    def decode_code(self, code: jax.Array) -> jax.Array:
        """Images (B, H, W, C) from codes as returned in ``Output.bottleneck.code``."""
        return self.decoder(self.decoder_input(code))

    def __call__(self, x: jax.Array) -> Output:
        latent = self.encoder(x)
        out = self.bottleneck(latent)
        return Output(self.decoder(out.decoder_input), latent, out)
