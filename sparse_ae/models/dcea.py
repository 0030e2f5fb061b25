"""DCEA: deep convolutional exponential-family autoencoders (Tolooshams et al., ICML 2020).

Generative model: y ~ ExpFamily(natural parameter η = H x + mu), x sparse, H a convolutional
dictionary (kernel (kh, kw, M, C), conventions of ``sparse_ae.sparse_coding.operators``).
The encoder unrolls T proximal-gradient steps on −log p(y | η) + λ‖x‖₁:

    x_t = S_b(x_{t−1} + α W_eᵀ r_t),   r_t = ρ(−∂NLL/∂η at η = W_d x_{t−1} + mu)

(Gaussian: y − η; Binomial: y − M·sigmoid(η); Poisson: y − exp(η); ρ = identity or, for the
Poisson denoiser, an ELU bounding negative residuals at −``residual_elu``, see
:class:`DCEAConfig`), S_b the (non-negative) soft threshold with per-filter threshold b, and
decodes η̂ = H x_T + mu. ``reweight_passes`` R > 0 adds R warm-started solves whose thresholds are
reweighted by the previous code (reweighted ℓ1, less shrinkage of large codes).

- :class:`DCEA` with ``tied=True`` is DCEA-C: W_e = W_d = H, one kernel (and optionally b).
- ``tied=False`` is DCEA-UC: untied encoder W_e, in-loop W_d and decoder H, learned bias.

Strided convolutions run as patch GEMMs (``fast=True``, ``operators.patch_operator``), which
equal the core's convolutions (tested) at a fraction of the cost for stride 7 with one input
channel.

Shift averaging (stride s > 1, as in the paper's code): the input is reflect-padded into s²
shifted canvases whose code grids cover every sub-lattice offset; the network runs on all of
them as one batch and the image windows of the natural parameters are averaged. The default
``layout="valid"`` and ``elu_form="authors"`` are the authors' network: their published weights
(``sparse_ae.tools.import_dcea``) give their outputs to float32 precision.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae.sparse_coding import dictionaries, families, operators, prox, solvers

ELU_FORMS = ("authors", "unit_slope")
LAYOUTS = ("valid", "rounded")
INIT_NORMS = ("linear", "authors")


def conv_pair(kernel: jax.Array, stride: int, boundary: str, fast: bool) -> operators.LinearOperator:
    """(synthesis, analysis) of ``kernel`` on the fast path (patch GEMMs) or the core's
    convolutions; boundary 'circular', 'zero' or 'valid' (see ``operators.code_size``)."""
    if fast:
        return operators.patch_operator(kernel, stride, boundary)
    if boundary == "valid":
        return operators.valid_operator(kernel, stride)
    return operators.conv_operator(kernel, stride=stride, boundary=boundary)


# ----------------------------------------------------------------------------------------------
# Shift averaging
# ----------------------------------------------------------------------------------------------

class CanvasLayout(NamedTuple):
    """Where an image sits in its canvases: canvas_hw (Hp, Wp), the (top, left) offset of the
    image in each canvas (one per shift) and the boundary of the canvases' convolutions."""

    canvas_hw: tuple[int, int]
    offsets: tuple[tuple[int, int], ...]
    boundary: str


def canvas_layout(height: int, width: int, kernel_size: int, stride: int, shift_average: bool,
                  layout: str = "valid", boundary: str = "zero") -> CanvasLayout:
    """The :class:`CanvasLayout` of an image (H, W) for kernels k×k at stride s.

    stride 1: the image itself (one shift, no padding, convolutions with ``boundary``). stride
    s > 1, over the s² shifts (r, c) (shift_average) or shift (0, 0) only:

    - ``"valid"`` (the authors' ``split_image`` / ``calc_pad_sizes``): the image at offset
      (s − r, s − c) in a canvas of s + H + p rows, p ≥ s the least with (s + H + p − k) a
      multiple of s (columns alike), coded by 'valid' strided convolutions: each of the
      (Hp − k)/s + 1 code rows reads only canvas pixels.
    - ``"rounded"`` (this project's earlier layout): a margin P = max(k − s, 0), offsets
      P + (r, c), Hp = s·⌈(H + P + s − 1)/s⌉, convolutions with ``boundary``: the last code row
      and column overlap zeros past the canvas.
    """
    if stride == 1:
        return CanvasLayout((height, width), ((0, 0),), boundary)
    shifts = range(stride) if shift_average else range(1)
    if layout == "valid":
        size = lambda n: stride + n + (-(n + stride - kernel_size)) % stride + stride  # noqa: E731
        return CanvasLayout((size(height), size(width)), tuple((stride - r, stride - c) for r in shifts for c in shifts),
                            "valid")
    margin = max(kernel_size - stride, 0)
    size = lambda n: stride * -(-(n + margin + stride - 1) // stride)  # noqa: E731
    return CanvasLayout((size(height), size(width)), tuple((margin + r, margin + c) for r in shifts for c in shifts),
                        boundary)


def make_canvases(y: jax.Array, canvas_hw: tuple[int, int], offsets) -> jax.Array:
    """(B, H, W, C) -> (B·n, Hp, Wp, C): reflect-padded canvases, image at each offset (shift-major
    within each example)."""
    _, height, width, _ = y.shape
    if canvas_hw == (height, width):
        return y
    (hp, wp), top, left = canvas_hw, max(o[0] for o in offsets), max(o[1] for o in offsets)
    big = jnp.pad(y, ((0, 0), (top, hp - height), (left, wp - width), (0, 0)), mode="reflect")
    canvases = jnp.stack([big[:, top - r:top - r + hp, left - c:left - c + wp] for r, c in offsets], axis=1)
    return canvases.reshape(-1, hp, wp, y.shape[-1])


def average_canvases(out: jax.Array, image_hw: tuple[int, int], offsets) -> jax.Array:
    """(B·n, Hp, Wp, C) -> (B, H, W, C): the image window of each canvas, averaged over shifts."""
    height, width = image_hw
    if out.shape[1:3] == (height, width):
        return out
    out = out.reshape(-1, len(offsets), *out.shape[1:])
    windows = [out[:, i, r:r + height, c:c + width] for i, (r, c) in enumerate(offsets)]
    return sum(windows) / len(windows)


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DCEAConfig:
    """Hyperparameters of :class:`DCEA` (static; hashable)."""

    # k: kernels k×k; one_d=True gives kernels (1, k) for signals (B, 1, L, C).
    kernel_size: int = 11
    # M filters (atoms), C signal channels.
    num_filters: int = 169
    channels: int = 1
    one_d: bool = False
    # s (1-D signals need s = 1), T unrolled steps, step size α.
    stride: int = 7
    num_iters: int = 15
    step: float = 1.0
    # Initial per-filter threshold b (= α·λ); learn_bias trains b (else fixed).
    threshold: float = 0.1
    learn_bias: bool = True
    # One-sided threshold (non-negative codes); FISTA momentum (else ISTA).
    nonneg: bool = True
    accelerated: bool = False
    # R extra solves of T steps, each warm-started from the last code x̄ with per-entry thresholds
    # b·ε/(|x̄| + ε) (stop-gradient weights): reweighted ℓ1 (Candès, Wakin & Boyd, 2008), i.e.
    # majorize-minimize steps on λε·Σ log(1 + |x|/ε), which shrinks large codes less; ε > 0.
    reweight_passes: int = 0
    reweight_eps: float = 1.0
    # 0: plain residual; a > 0: an ELU of scale a on the residual (identity for r >= 0, saturating
    # at −a; the Poisson denoiser uses a = peak). elu_form "authors" (their ELU(alpha=peak)):
    # a·(exp(r) − 1) for r < 0; "unit_slope" (this project's earlier form): a·(exp(r/a) − 1). They
    # agree at a = 1; with the authors' weights "unit_slope" loses 3.7–4.9 dB on Set12 at peak 2
    # and 9.1–12.4 dB at peak 4.
    residual_elu: float = 0.0
    elu_form: str = "authors"
    # Known offset of the natural parameter; the exponential family and its trials.
    mu: float = 0.0
    family: str = "poisson"
    trials: int = 1
    # DCEA-C (one kernel) or DCEA-UC (encoder, loop and decoder kernels).
    tied: bool = True
    # Run all s² shifted canvases and average (s > 1); layout: where the image sits in them,
    # "valid" (the authors') or "rounded" (see :func:`canvas_layout`; with the authors' weights
    # "rounded" costs 0.07–0.10 dB on Set12, 0.27 dB for DCEA-UC at peak 4).
    shift_average: bool = False
    layout: str = "valid"
    # Conv boundary at stride 1 and in the "rounded" layout ("valid" codes its canvases with
    # 'valid' convolutions, as the authors).
    boundary: str = "zero"
    # Use unit-norm atoms (functionally, inside the call).
    normalize_atoms: bool = False
    # > 0 scales the random initial kernels by 1/sqrt(margin · L) so the step α = 1 of the paper is
    # stable; 0 keeps unit-norm atoms. init_norm: how L is estimated, "linear" (‖H‖², power
    # iteration on a small canvas) or "authors" (their estimate, see :func:`authors_init_norm`:
    # about 4,600 / 5 for 169 atoms 11×11 at stride 7, so atoms start ~9× smaller than "linear").
    init_lipschitz_margin: float = 5.0
    init_norm: str = "linear"
    # Patch-GEMM convolutions (else the core's); scan unroll (None: backend default, see
    # ``solvers.resolve_unroll``).
    fast: bool = True
    unroll: int | None = None

    @property
    def kernel_hw(self) -> tuple[int, int]:
        return (1, self.kernel_size) if self.one_d else (self.kernel_size, self.kernel_size)

    def validate(self, field: str = "config.model") -> None:
        """ValueError naming the field for out-of-range hyperparameters."""
        for name in ("kernel_size", "num_filters", "channels", "stride", "num_iters", "trials"):
            if getattr(self, name) < 1:
                raise ValueError(f"{field}.{name} must be >= 1, got {getattr(self, name)}")
        if self.one_d and self.stride != 1:
            raise ValueError(f"{field}.stride must be 1 for 1-D signals (one_d=True), got {self.stride}")
        if not self.step > 0:
            raise ValueError(f"{field}.step must be > 0, got {self.step}")
        if self.reweight_passes < 0 or not self.reweight_eps > 0:
            raise ValueError(f"{field}.reweight_passes must be >= 0 and reweight_eps > 0, got "
                             f"{self.reweight_passes} and {self.reweight_eps}")
        if self.threshold < 0 or self.residual_elu < 0 or self.init_lipschitz_margin < 0:
            raise ValueError(f"{field}.threshold, residual_elu and init_lipschitz_margin must be >= 0")
        for name, allowed in (("elu_form", ELU_FORMS), ("layout", LAYOUTS), ("init_norm", INIT_NORMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{field}.{name}={getattr(self, name)!r} is not one of {allowed}")
        if self.boundary not in operators.BOUNDARIES:
            raise ValueError(f"{field}.boundary={self.boundary!r} is not one of {operators.BOUNDARIES}")
        if self.family not in families.FAMILIES:
            raise ValueError(f"{field}.family={self.family!r} is not one of {families.FAMILIES}")


class DCEAOutput(NamedTuple):
    """natural: η̂ = H x + mu (B, H, W, C), shift-averaged; code: x_T (B·n, Hp/s, Wp/s, M) on
    the n canvases per example."""

    natural: jax.Array
    code: jax.Array


def log_penalty_weights(code: jax.Array, eps: float) -> jax.Array:
    """ε/(|x̄| + ε) of a code x̄ (stop-gradient): the slope of ε·log(1 + |x|/ε) at x̄, in (0, 1]."""
    return eps / (jnp.abs(jax.lax.stop_gradient(code)) + eps)


AUTHORS_INIT_CANVAS = 512  # side of the authors' init canvas (their conv_power_method)
AUTHORS_INIT_ITERS = 200


def authors_init_norm(kernel: jax.Array, stride: int, family: families.Family, one_d: bool,
                      fast: bool = True) -> jax.Array:
    """The authors' scale estimate of a kernel (kh, kw, M, C): ‖v‖ after iterating
    v ← W g(Wᵀ v/‖v‖) from a Gaussian v, W the 'valid' correlation at stride s on a 512² canvas
    (512 samples in 1-D), g the family's mean (exp for Poisson, so not ‖W‖² but dominated by the
    response to a flat image)."""
    side = AUTHORS_INIT_CANVAS
    signal = (1, 1 if one_d else side, side, kernel.shape[-1])
    op = conv_pair(kernel, stride, "valid", fast)
    v0 = jax.random.normal(jax.random.key(0), operators.patch_code_shape(signal, kernel.shape, stride, "valid"))

    def body(_, v):
        return op.adjoint(family.inverse_link(op.forward(v / jnp.linalg.norm(v))))

    return jnp.linalg.norm(jax.lax.fori_loop(0, AUTHORS_INIT_ITERS, body, v0))


def _init_kernel(cfg: DCEAConfig, key: jax.Array) -> jax.Array:
    """Gaussian kernel with unit-norm atoms, scaled by 1/sqrt(margin · L) when margin > 0 (L per
    ``cfg.init_norm``)."""
    kh, kw = cfg.kernel_hw
    kernel = dictionaries.normalize_atoms(jax.random.normal(key, (kh, kw, cfg.num_filters, cfg.channels)))
    if cfg.init_lipschitz_margin == 0:
        return kernel
    if cfg.init_norm == "authors":
        norm = authors_init_norm(kernel, cfg.stride, families.get_family(cfg.family, trials=cfg.trials), cfg.one_d,
                                 cfg.fast)
    else:
        side = 8 * cfg.stride * max(-(-cfg.kernel_size // cfg.stride), 1)
        signal = (1, 1 if cfg.one_d else side, side, cfg.channels)
        v0 = jax.random.normal(jax.random.fold_in(key, 1), operators.patch_code_shape(signal, kernel.shape, cfg.stride))
        norm, _ = operators.power_iteration(conv_pair(kernel, cfg.stride, cfg.boundary, fast=False), v0, num_iters=50)
    return kernel / jnp.sqrt(cfg.init_lipschitz_margin * norm)


class DCEA(nnx.Module):
    """DCEA-C (``cfg.tied``) or DCEA-UC. Parameters: ``kernel`` (tied) or ``encoder``, ``loop``,
    ``decoder`` (untied), each (kh, kw, M, C); ``bias`` (M,) when learned."""

    def __init__(self, cfg: DCEAConfig, *, rngs: nnx.Rngs):
        cfg.validate()
        self.cfg = cfg
        kernel = _init_kernel(cfg, rngs.params())
        if cfg.tied:
            self.kernel = nnx.Param(kernel)
        else:
            self.encoder, self.loop, self.decoder = (nnx.Param(kernel) for _ in range(3))
        if cfg.learn_bias:
            self.bias = nnx.Param(jnp.full((cfg.num_filters,), cfg.threshold, jnp.float32))

    def kernels(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(W_e, W_d, H) as used in the call (atoms normalised if configured)."""
        raw = (self.kernel,) * 3 if self.cfg.tied else (self.encoder, self.loop, self.decoder)
        values = tuple(jnp.asarray(k[...]) for k in raw)
        return tuple(map(dictionaries.normalize_atoms, values)) if self.cfg.normalize_atoms else values

    def threshold(self) -> jax.Array:
        return self.bias[...] if self.cfg.learn_bias else jnp.full((self.cfg.num_filters,), self.cfg.threshold)

    def residual(self, y: jax.Array, natural: jax.Array) -> jax.Array:
        """r = −∂NLL/∂η (through the ELU of scale ``residual_elu`` if set, see ``elu_form``)."""
        family = families.get_family(self.cfg.family, trials=self.cfg.trials)
        r = -family.data_grad(y, natural)
        alpha = self.cfg.residual_elu
        if alpha == 0:
            return r
        if self.cfg.elu_form == "authors":
            return jax.nn.elu(r, alpha)
        return alpha * jax.nn.elu(r / alpha)

    def encode(self, y: jax.Array, boundary: str | None = None) -> jax.Array:
        """Codes (B', h, w, M) of canvases y (B', Hp, Wp, C): T proximal-gradient steps, then T
        more per reweighting pass; convolutions with ``boundary`` (default ``cfg.boundary``)."""
        cfg = self.cfg
        boundary = boundary or cfg.boundary
        w_e, w_d, _ = self.kernels()
        enc = conv_pair(w_e, cfg.stride, boundary, cfg.fast)
        dec = enc if cfg.tied else conv_pair(w_d, cfg.stride, boundary, cfg.fast)
        grad_fn = lambda z: -enc.adjoint(self.residual(y, dec.forward(z) + cfg.mu))  # noqa: E731

        def solve(z0, threshold):
            prox_fn = lambda v, step: prox.soft_threshold(v, threshold, nonneg=cfg.nonneg)  # noqa: E731
            return solvers.proximal_gradient(grad_fn, prox_fn, z0, cfg.step, cfg.num_iters,
                                             accelerated=cfg.accelerated, unroll=cfg.unroll)

        threshold = self.threshold()
        z = solve(jnp.zeros(operators.patch_code_shape(y.shape, w_e.shape, cfg.stride, boundary), y.dtype), threshold)
        for _ in range(cfg.reweight_passes):
            z = solve(z, threshold * log_penalty_weights(z, cfg.reweight_eps))
        return z

    def decode(self, code: jax.Array, boundary: str | None = None) -> jax.Array:
        """η = H x + mu on the canvases (convolutions with ``boundary``, default ``cfg.boundary``)."""
        _, _, h = self.kernels()
        return conv_pair(h, self.cfg.stride, boundary or self.cfg.boundary, self.cfg.fast).forward(code) + self.cfg.mu

    def __call__(self, y: jax.Array) -> DCEAOutput:
        """y (B, H, W, C) observations in the family's sample space -> :class:`DCEAOutput`.

        Outside jit the observations are checked first (``Family.validate``: e.g. negative or
        non-integer Poisson counts, Binomial counts above ``trials``) with a clear ValueError.
        """
        cfg = self.cfg
        kh, kw = cfg.kernel_hw
        if y.ndim != 4 or y.shape[1] < kh or y.shape[2] < kw or y.shape[3] != cfg.channels:
            raise ValueError(f"DCEA input must be (B, H, W, {cfg.channels}) with H >= {kh} and W >= {kw} (the "
                             f"kernel, config.model.kernel_size={cfg.kernel_size}), got shape {tuple(y.shape)}")
        if not isinstance(y, jax.core.Tracer):  # concrete input: check the sample space
            families.get_family(cfg.family, trials=cfg.trials).validate(y)
        layout = canvas_layout(y.shape[1], y.shape[2], cfg.kernel_size, cfg.stride, cfg.shift_average, cfg.layout,
                               cfg.boundary)
        code = self.encode(make_canvases(y, layout.canvas_hw, layout.offsets), layout.boundary)
        natural = self.decode(code, layout.boundary)
        return DCEAOutput(average_canvases(natural, y.shape[1:3], layout.offsets), code)


# ----------------------------------------------------------------------------------------------
# Parameter trees: the decoder dictionary, atom restarts
# ----------------------------------------------------------------------------------------------

KERNELS = ("kernel", "encoder", "loop", "decoder")   # tied: kernel; untied: encoder, loop, decoder
RESTART_COHERENCE = 0.9  # shift coherence above which the less used of two atoms restarts


def decoder_kernel(params) -> jax.Array:
    """The decoder dictionary H (kh, kw, M, C) from ``state.params`` (tied or untied)."""
    return params["kernel"] if "kernel" in params else params["decoder"]


def with_kernels(params, kernel: jax.Array):
    """``params`` with every kernel (the tied one, or encoder, loop and decoder) set to ``kernel``."""
    return {**params, **{k: kernel for k in KERNELS if k in params}}


def restart_atoms(params, code: jax.Array, residual: jax.Array, coherence: float = RESTART_COHERENCE):
    """(params, number restarted): each atom m of :func:`atoms_to_restart` (judged on the decoder
    dictionary) takes the residual window (``residual`` (B, H, W, C) = −∂NLL/∂η at the fit) of
    example k mod B, k the rank of m among those restarted, scaled to the old atom's norm; the
    same atom in every kernel (tied or untied). Where the data exceed the fit the window is
    positive, so a non-negative code of the new atom lowers the NLL there."""
    restart = dictionaries.atoms_to_restart(jax.lax.stop_gradient(decoder_kernel(params)), code, coherence)
    names = [k for k in KERNELS if k in params]
    kh, kw = params[names[0]].shape[:2]
    windows = dictionaries.residual_windows(jax.lax.stop_gradient(residual), (kh, kw))
    rank = (jnp.cumsum(restart) - 1) % windows.shape[0]
    unit = dictionaries.normalize_atoms(jnp.transpose(windows[rank], (1, 2, 0, 3)))  # (kh, kw, M, C)

    def update(kernel):
        norm = jnp.sqrt(jnp.sum(kernel ** 2, axis=(0, 1, 3), keepdims=True))
        return jnp.where(restart[None, None, :, None], unit * norm, kernel)

    return {**params, **{k: update(params[k]) for k in names}}, jnp.sum(restart)
