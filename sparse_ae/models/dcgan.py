"""DCGAN generator and discriminator for S × S images, S = 4 · 2^n (n ≥ 1; 32 for CIFAR-10).

Generator: z (B, latent_dim) -> linear to 4 × 4 × w_0, BatchNorm, ReLU -> h_1; then per
stage a 4 × 4 transposed convolution (stride 2), BatchNorm, ReLU -> h_2 … h_n (widths halve,
w_{n-1} = ``width``); the output layer is a 4 × 4 stride-2 transposed convolution of h_n — a
convolutional dictionary applied to the last representation — followed by a sigmoid (images in
[0, 1]). Each hidden representation h_i goes through its sparsity layer ("g<i>", see
:mod:`sparse_ae.models.sparsity`) before the next layer. BatchNorm uses batch statistics in
training and running averages (kept by the caller, see :func:`batch_stats`) for sampling.
:func:`effective_atoms` reads the generator as a multi-layer convolutional dictionary: the image
each channel of a hidden layer synthesises.

Discriminator: per stage a 4 × 4 stride-2 convolution and LeakyReLU(0.2) (widths double from
``width``; no normalisation, so it suits WGAN-GP too), down to 4 × 4, then a linear map to
one logit. Inputs in [0, 1] are mapped to [−1, 1] first.

SN discriminator (SNGAN, Miyato et al. 2018): the same layers, each weight W (a conv kernel
(kh, kw, c_in, c_out) or dense kernel (d_in, d_out), viewed as the c_out × rest matrix) divided
by its largest singular value σ(W) ≈ uᵀ W v, estimated by power iteration with one vector u per
layer (:class:`PowerVector`, model state, not a parameter) advanced once per discriminator update
(:meth:`SNDiscriminator.power_step`); gradients flow through W in uᵀ W v but not through u, v.
Miyato et al.'s own CIFAR "standard CNN" is deeper (3 × 3 convolutions); here only the
normalisation changes, so a comparison with the plain discriminator isolates it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae.models.sparsity import LayerStats, Sparsify, parse_specs

BN_MOMENTUM = 0.9
DISCRIMINATORS = ("dcgan", "sngan")


def num_stages(image_size: int) -> int:
    """n with image_size = 4 · 2^n; ValueError otherwise."""
    n = round(math.log2(max(image_size, 1) / 4))
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"config.data.image_size={image_size} must be 4 · 2^n with n >= 1 (8, 16, 32, 64, ...)")
    return n


def generator_widths(image_size: int, width: int) -> list[int]:
    """Channels of h_1 … h_n: width · 2^(n-1), …, width."""
    n = num_stages(image_size)
    return [width * 2 ** (n - 1 - i) for i in range(n)]


class Generator(nnx.Module):
    """``(z (B, latent_dim), train) -> (images (B, S, S, channels), {"g<i>": LayerStats})``."""

    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, sparsity: Sequence[str], *,
                 rngs: nnx.Rngs):
        widths = generator_widths(image_size, width)
        specs = parse_specs(sparsity, len(widths), "config.model.sparsity")
        self.project = nnx.Linear(latent_dim, 16 * widths[0], rngs=rngs)
        self.deconvs = nnx.List([nnx.ConvTranspose(a, b, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
                                 for a, b in zip(widths[:-1], widths[1:])])
        self.norms = nnx.List([nnx.BatchNorm(w, momentum=BN_MOMENTUM, rngs=rngs) for w in widths])
        self.sparsify = nnx.List([Sparsify(s, f"g{i + 1}") for i, s in enumerate(specs)])
        self.out = nnx.ConvTranspose(widths[-1], channels, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
        self.width0 = widths[0]

    def representations(self, z: jax.Array, train: bool) -> tuple[list[jax.Array], dict[str, LayerStats]]:
        """h_1 … h_n after their sparsity layers (h_i: (B, 4 · 2^(i-1), 4 · 2^(i-1), w_i)), and all stats."""
        h = self.project(z).reshape(z.shape[0], 4, 4, self.width0)
        hs, stats = [], {}
        for i, (norm, sparsify) in enumerate(zip(self.norms, self.sparsify)):
            if i > 0:
                h = self.deconvs[i - 1](h)
            h, stats[sparsify.name] = sparsify(jax.nn.relu(norm(h, use_running_average=not train)))
            hs.append(h)
        return hs, stats

    def hidden(self, z: jax.Array, train: bool) -> tuple[jax.Array, dict[str, LayerStats]]:
        """The last representation h_n (B, S/2, S/2, width) after its sparsity layer, and all stats."""
        hs, stats = self.representations(z, train)
        return hs[-1], stats

    def __call__(self, z: jax.Array, train: bool = True) -> tuple[jax.Array, dict[str, LayerStats]]:
        h, stats = self.hidden(z, train)
        return jax.nn.sigmoid(self.out(h)), stats


def _linear_part(layer, x: jax.Array) -> jax.Array:
    """``layer(x) − layer(0)``: the linear part of an affine layer."""
    return layer(x) - layer(jnp.zeros_like(x))


def effective_atoms(generator: Generator, layer: int) -> jax.Array:
    """The effective atoms D_eff of hidden layer h_``layer`` (1-based): (w_layer, S, S, channels), atom c
    being the pre-sigmoid image synthesised from the unit impulse e_c (1 in channel c of the centre
    pixel of h_layer's map, 0 elsewhere).

    The generator is read as multi-layer convolutional sparse coding (Papyan et al.): image logits
    = D_n h_n with h_{i+1} = ReLU(BN(D_i h_i)); the effective dictionary of h_i is the product
    D_n · BN_n · … · D_{i+1} of the linear synthesis maps after it: each transposed convolution
    and each BatchNorm with running statistics contributes its linear part (bias and shift
    dropped), and ReLU and the sparsity layers count as the identity (which they are on the
    positive entries a code keeps; where every later ReLU is active the atoms are exact). We chose this ML-CSC product rather than pushing
    the impulse through the actual later layers because the latter is dominated by the biases
    (G(0) is already an image), depends on the impulse's amplitude through the ReLUs, and is not
    a dictionary; for h_n both readings agree up to G(0) — its atoms are the output layer's
    kernels. Uses the running BatchNorm statistics (sampling mode).
    """
    num_layers = len(generator.sparsify)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= num_layers:
        raise ValueError(f"layer={layer!r} must be an integer in [1, {num_layers}] (the generator's hidden layers)")
    size = 4 * 2 ** (layer - 1)
    width = generator.norms[layer - 1].num_features
    channels = jnp.arange(width)
    h = jnp.zeros((width, size, size, width)).at[channels, size // 2, size // 2, channels].set(1.0)
    for deconv, norm in zip(generator.deconvs[layer - 1:], generator.norms[layer:]):
        h = _linear_part(lambda x, n=norm: n(x, use_running_average=True), _linear_part(deconv, h))
    return _linear_part(generator.out, h)


class Discriminator(nnx.Module):
    """``(images (B, S, S, channels) in [0, 1]) -> logits (B,)``."""

    def __init__(self, image_size: int, channels: int, width: int, *, rngs: nnx.Rngs):
        n = num_stages(image_size)
        widths = [width * 2**i for i in range(n)]
        self.convs = nnx.List([nnx.Conv(a, b, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
                               for a, b in zip([channels, *widths[:-1]], widths)])
        self.head = nnx.Linear(16 * widths[-1], 1, rngs=rngs)

    def layers(self) -> list[nnx.Module]:
        """The weighted layers, input to output: the convolutions, then the head."""
        return [*self.convs, self.head]

    def kernels(self) -> list[jax.Array]:
        """The weights the forward pass uses (here the raw kernels)."""
        return [layer.kernel[...] for layer in self.layers()]

    def __call__(self, x: jax.Array) -> jax.Array:
        *conv_kernels, head_kernel = self.kernels()
        h = 2.0 * x - 1.0
        for conv, kernel in zip(self.convs, conv_kernels):
            h = jax.lax.conv_general_dilated(h, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = jax.nn.leaky_relu(h + conv.bias[...], 0.2)
        return (h.reshape(h.shape[0], -1) @ head_kernel + self.head.bias[...])[:, 0]


class PowerVector(nnx.Variable):
    """A spectral-norm power-iteration vector u (c_out,): model state, neither a parameter nor differentiated."""


def weight_matrix(kernel: jax.Array) -> jax.Array:
    """A conv (kh, kw, c_in, c_out) or dense (d_in, d_out) kernel as the (c_out, rest) matrix W."""
    return kernel.reshape(-1, kernel.shape[-1]).T


def _unit(x: jax.Array) -> jax.Array:
    return x / (jnp.linalg.norm(x) + 1e-12)


def power_iteration(kernel: jax.Array, u: jax.Array, steps: int = 1) -> jax.Array:
    """u ← W v / ‖W v‖ with v = Wᵀ u / ‖Wᵀ u‖, ``steps`` times, without gradient (u tends to W's top left
    singular vector)."""
    w = jax.lax.stop_gradient(weight_matrix(kernel))
    for _ in range(steps):
        u = _unit(w @ _unit(w.T @ u))
    return jax.lax.stop_gradient(u)


def spectral_normalise(kernel: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(kernel / σ, σ) with σ = uᵀ W v, v = Wᵀ u / ‖Wᵀ u‖ (u, v held constant: the gradient reaches W
    only through W itself and through σ's linear dependence on it, as in Miyato et al.)."""
    u = jax.lax.stop_gradient(u)
    w = weight_matrix(kernel)
    v = jax.lax.stop_gradient(_unit(w.T @ u))
    sigma = u @ w @ v
    return kernel / sigma, sigma


class SNDiscriminator(Discriminator):
    """:class:`Discriminator` with every weight spectrally normalised (see the module docstring)."""

    def __init__(self, image_size: int, channels: int, width: int, *, rngs: nnx.Rngs):
        super().__init__(image_size, channels, width, rngs=rngs)
        self.u = nnx.List([PowerVector(_unit(jax.random.normal(rngs.params(), (layer.kernel.shape[-1],))))
                           for layer in self.layers()])

    def kernels(self) -> list[jax.Array]:
        return [spectral_normalise(layer.kernel[...], u[...])[0] for layer, u in zip(self.layers(), self.u)]

    def power_step(self, steps: int = 1) -> None:
        """Advances every layer's u by ``steps`` power iterations on its current weight (in place)."""
        for layer, u in zip(self.layers(), self.u):
            u[...] = power_iteration(layer.kernel[...], u[...], steps)


class DCGAN(nnx.Module):
    """Both players; ``params["generator"]`` / ``params["discriminator"]`` after a split."""

    def __init__(self, *, latent_dim: int, image_size: int, channels: int, g_width: int, d_width: int,
                 sparsity: Sequence[str], rngs: nnx.Rngs, discriminator: str = "dcgan"):
        if discriminator not in DISCRIMINATORS:
            raise ValueError(f"config.model.discriminator={discriminator!r} is not one of {DISCRIMINATORS}")
        self.generator = Generator(latent_dim, image_size, channels, g_width, sparsity, rngs=rngs)
        make = SNDiscriminator if discriminator == "sngan" else Discriminator
        self.discriminator = make(image_size, channels, d_width, rngs=rngs)


def power_vectors(module: nnx.Module) -> dict:
    """The module's spectral-norm vectors u as a pure dict ({} without an SN discriminator)."""
    return nnx.to_pure_dict(nnx.state(module, PowerVector))


def count_flops(latent_dim: int, image_size: int, channels: int, g_width: int, d_width: int) -> dict[str, int]:
    """Multiply-adds × 2 per example of one forward pass of each player (convolutions and linears)."""
    widths = generator_widths(image_size, g_width)
    g = 2 * latent_dim * 16 * widths[0]
    size = 4
    for a, b in zip(widths, [*widths[1:], channels]):
        size *= 2
        g += 2 * size * size * a * b * 4  # 4×4 kernel, stride 2: 4 taps per output and input channel
    d, size, cin = 0, image_size, channels
    for i in range(num_stages(image_size)):
        size //= 2
        cout = d_width * 2**i
        d += 2 * size * size * cin * cout * 16
        cin = cout
    return {"generator": g, "discriminator": d + 2 * 16 * cin}
