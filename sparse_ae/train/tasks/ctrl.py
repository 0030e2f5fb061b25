"""Task ``ctrl``: closed-loop transcription (CTRL) with a CSC or a plain conv autoencoder.

``config.model.architecture`` picks the players: ``"csc"`` (CSC-CTRL,
:mod:`sparse_ae.models.csc_ctrl`) or ``"conv"`` (the original DCGAN-style CTRL,
:mod:`sparse_ae.models.conv_ctrl`); everything else is shared.

One train step (both players, one jitted function): refresh the power-iteration Lipschitz
estimates (CSC), then Z = f(X), X̂ = g(sg(Z)), Ẑ = f(X̂) and the game value T
(:func:`sparse_ae.objectives.ctrl.ctrl_terms`, over the global batch). The encoder maximises
T − aug_weight·Σ_i ΔR(z_i, z_i') (two random views of each image; any form) − encoder_recon_weight·P;
the decoder minimises T + recon_weight·P, P = ½ mean((X̂ − X)²). ``update_rule``:
  - ``"simultaneous"``: one forward and one backward give both players' gradients (the encoder
    reaches X̂ only through sg(Z), so ∂/∂θ treats X̂ as data — as CTRL's encoder step does — and
    the pixel term has no encoder gradient); both update at once.
  - ``"alternating"``: CTRL's order, encoder step then a decoder step through the updated
    encoder: two forward/backward passes.
Each player has its own optimizer state (``config.optim`` settings for both).

``model.pixel_range="symmetric"`` shows the networks images scaled to [−1, 1] (x ↦ 2x − 1, LDR's
``Normalize(0.5, 0.5)``) and reads their output back as (x̂ + 1)/2: data, the pixel loss P, PSNR
and every evaluation output stay on [0, 1]. With BatchNorm (conv ``norm="batch"``) every pass of
the game runs in training mode and moves the running statistics (``state.extra["batch_stats"]``),
in the order LDR's loop does (f(X), g(Z), f(X̂) in each player's pass, the decoder's after the
encoder's when alternating); the encoder's pixel-loss pass, which repeats g(Z), does not move them again.
``eval_step`` and ``images`` use the running statistics.

``model.class_moments_decay`` > 0 (multiclass form) keeps running per-class first and second moments
of f(X) over training (``state.extra["class_moments"]``; decayed by that factor per step, weighted by
class counts), and ``eval_step`` adds ``"samples"``: per example one class-conditional sample, a
draw from the Gaussian of its label's features, put on the sphere and decoded
(:func:`sparse_ae.models.ctrl_pictures.class_samples`).

``config.model`` (:class:`CSCModelConfig` or :class:`ConvModelConfig`) and ``config.objective``
(:class:`ObjectiveConfig`) hold every choice; :func:`validate_config` checks them before anything
compiles.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae import data as data_lib
from sparse_ae import optim
from sparse_ae.models import conv_ctrl, ctrl_pictures, phase_conv
from sparse_ae.models.conv_ctrl import INITS, NORMS, ConvCTRL
from sparse_ae.models.csc_ctrl import OUTPUTS, CSCCTRL
from sparse_ae.objectives import ctrl as ctrl_lib
from sparse_ae.objectives import rate_reduction as rr
from sparse_ae.sparse_coding import metrics as sc_metrics
from sparse_ae.train.state import TrainState, batch_stats, global_norms, split_module, update_player
from sparse_ae.train.task import Task
from sparse_ae.utils import sections

ARCHITECTURES = ("csc", "conv")
UPDATES = ("simultaneous", "alternating")
PLAYERS = ("encoder", "decoder")
PIXEL_RANGES = ("unit", "symmetric")


@dataclasses.dataclass(frozen=True)
class PlayersConfig:
    """``config.model`` fields shared by both architectures (one tuple entry per stage)."""

    # "csc" (CSC-CTRL) or "conv" (the original DCGAN-style CTRL).
    architecture: Literal[ARCHITECTURES] = "csc"
    # Feature dimension d of f(X).
    feature_dim: int = 128
    # Channels, kernel sizes and strides of the stages.
    channels: tuple[int, ...] = (32, 64)
    kernel_sizes: tuple[int, ...] = (4, 4)
    strides: tuple[int, ...] = (2, 2)
    # Decoder nonlinearity (evaluation clips reconstructions to [0, 1] either way).
    output: Literal[OUTPUTS] = "none"
    # Pixel scale the networks see: "unit" ([0, 1], as loaded) or "symmetric" ([−1, 1], as LDR).
    pixel_range: Literal[PIXEL_RANGES] = "unit"
    # > 0: running per-class feature moments with this decay per step, for eval_step's
    # class-conditional "samples" (multiclass form only); 0: none kept.
    class_moments_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class CSCModelConfig(PlayersConfig):
    """``config.model`` with ``architecture="csc"``: :class:`sparse_ae.models.csc_ctrl.CSCCTRL`."""

    # FISTA steps T per stage.
    num_iters: int = 5
    # Initial λ_ℓ of the encoder stages and λ'_ℓ of the decoder's between-stage thresholds.
    lam: tuple[float, ...] = (0.1, 0.1)
    decoder_lam: tuple[float, ...] = (0.02, 0.02)
    # Train the λs.
    learn_lam: bool = True
    # Non-negative encoder codes z; non-negative between-stage decoder codes.
    nonneg: bool = True
    decoder_nonneg: bool = True
    # Convolution boundary.
    boundary: Literal["zero", "circular"] = "zero"
    # The decoder reuses the encoder atoms.
    tied: bool = False
    # ≥ 1: FISTA step 1/(margin·L).
    lipschitz_margin: float = 1.05
    # Power iterations per train step (warm-started) and at initialisation.
    power_iters: int = 1
    power_iters_init: int = 50
    # FISTA scan unroll; 0: the backend default.
    unroll: int = 0


@dataclasses.dataclass(frozen=True)
class ConvModelConfig(PlayersConfig):
    """``config.model`` with ``architecture="conv"``: :class:`sparse_ae.models.conv_ctrl.ConvCTRL`."""

    architecture: Literal[ARCHITECTURES] = "conv"
    # Decoder nonlinearity; "tanh" suits pixel_range="symmetric".
    output: Literal[conv_ctrl.OUTPUTS] = "none"
    # Normalisation layers of the conv players: "group", "batch" (LDR's) or "none".
    norm: Literal[NORMS] = "group"
    # "default" (flax's initialisers, biases) or "ldr" (N(0, 0.02) weights, no biases, as LDR).
    init: Literal[INITS] = "default"
    # How the decoder's transposed convolutions run: "xla", "phases" (split by phase: the same
    # result, several times faster to train on CPU) or "auto" (phases on CPU, XLA's elsewhere).
    conv_impl: Literal[phase_conv.IMPLEMENTATIONS] = "auto"


MODEL_CONFIGS = dict(zip(ARCHITECTURES, (CSCModelConfig, ConvModelConfig)))


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """``config.objective``: the game (see :mod:`sparse_ae.objectives.ctrl`) and the update."""

    # "multiclass" (labels), "binary" or "samplewise".
    form: Literal[ctrl_lib.FORMS] = "multiclass"
    # ε² of the coding rates; k of the multiclass form.
    eps_sq: float = 0.5
    num_classes: int = 10
    # Weight of the per-sample consistency Σ_i ΔR(z_i, ẑ_i) added to T (a game term).
    samplewise_weight: float = 0.0
    # P = ½ mean((g(f(X)) − X)²): the decoder also minimises recon_weight·P, the encoder
    # encoder_recon_weight·P through Z (an autoencoding term, not a game term).
    recon_weight: float = 0.0
    encoder_recon_weight: float = 0.0
    # Encoder-only consistency between two random views: weight, circular shift range (px), flips.
    aug_weight: float = 0.0
    aug_shift: int = 2
    aug_flip: bool = False
    # "simultaneous" or "alternating" (see the module docstring).
    update_rule: Literal[UPDATES] = "simultaneous"
    # Log-determinant of the coding rates: "slogdet", "cholesky" or "eigh".
    logdet: Literal[rr.LOGDET_METHODS] = rr.DEFAULT_LOGDET


def _model_class(architecture: str) -> type[CSCModelConfig | ConvModelConfig]:
    if architecture not in MODEL_CONFIGS:
        raise ValueError(f"config.model.architecture={architecture!r} is not one of {tuple(MODEL_CONFIGS)}")
    return MODEL_CONFIGS[architecture]


def config_sections(config) -> dict[str, type]:
    """The dataclass of each of this task's config sections (the model's by its architecture)."""
    return {"model": _model_class(config.get("model", {}).get("architecture", "csc")), "objective": ObjectiveConfig}


def parse_model(config) -> CSCModelConfig | ConvModelConfig:
    """``config.model`` parsed as the dataclass of its ``architecture``."""
    architecture = config.model.get("architecture", "csc") if "model" in config else "csc"
    return sections.parse_section(config, "model", _model_class(architecture))


# ----------------------------------------------------------------------------------- validation
def _stages(m, key: str, n: int | None = None) -> tuple:
    value = getattr(m, key)
    if not value:
        raise ValueError(f"config.model.{key} must have one entry per stage, got {value!r}")
    if n is not None and len(value) != n:
        raise ValueError(f"config.model.{key} has {len(value)} entries; config.model.channels has {n} stages")
    return value


def validate_config(config) -> None:
    """Clear errors (naming the field) for the model, the objective and data/batch compatibility."""
    m, o = parse_model(config), sections.parse_section(config, "objective", ObjectiveConfig)
    stages = len(_stages(m, "channels"))
    _stages(m, "kernel_sizes", stages)
    strides = _stages(m, "strides", stages)
    for key in ("channels", "kernel_sizes", "strides"):
        if min(getattr(m, key)) < 1:
            raise ValueError(f"config.model.{key}={getattr(m, key)!r} must hold integers >= 1")
    if m.feature_dim < 1:
        raise ValueError(f"config.model.feature_dim={m.feature_dim} must be >= 1")
    if not 0 <= m.class_moments_decay < 1:
        raise ValueError(f"config.model.class_moments_decay={m.class_moments_decay} must be in [0, 1)")
    if m.class_moments_decay and o.form != "multiclass":
        raise ValueError(f"config.model.class_moments_decay={m.class_moments_decay} needs labels: the class "
                         f"Gaussians are fitted per class, config.objective.form={o.form!r} has none; set it to 0")
    if m.feature_dim > config.data.batch_size:
        raise ValueError(
                f"config.model.feature_dim={m.feature_dim} is larger than config.data.batch_size="
                f"{config.data.batch_size}: the coding rates of a batch of n < d features cannot measure "
                "a d-dimensional spread (every batch is trivially expanded); use feature_dim <= batch_size")
    size = config.data.image_size
    total_stride = math.prod(strides)
    if not size or size % total_stride:
        raise ValueError(f"config.data.image_size={size} must be a positive multiple of the product of "
                         f"config.model.strides={tuple(strides)} ({total_stride})")
    if isinstance(m, CSCModelConfig):
        for key in ("lam", "decoder_lam"):
            if len(getattr(m, key)) != stages or not all(v > 0 for v in getattr(m, key)):
                raise ValueError(f"config.model.{key}={getattr(m, key)!r} needs {stages} values > 0 (one per stage)")
        for key in ("num_iters", "power_iters", "power_iters_init"):
            if getattr(m, key) < 1:
                raise ValueError(f"config.model.{key}={getattr(m, key)} must be >= 1")
        if not m.lipschitz_margin >= 1:
            raise ValueError(f"config.model.lipschitz_margin={m.lipschitz_margin} must be >= 1")
        if m.unroll < 0:
            raise ValueError(f"config.model.unroll={m.unroll} must be >= 0 (0: backend default)")
    if not o.eps_sq > 0:
        raise ValueError(f"config.objective.eps_sq={o.eps_sq} must be > 0 (it is ε², e.g. 0.5)")
    for key in ("samplewise_weight", "recon_weight", "encoder_recon_weight", "aug_weight"):
        if getattr(o, key) < 0:
            raise ValueError(f"config.objective.{key}={getattr(o, key)} must be >= 0")
    if o.form == "multiclass":
        if "label" not in data_lib.element_spec(config.data):
            raise ValueError(
                    f"config.objective.form='multiclass' is supervised but config.data.name="
                    f"{config.data.name!r} has no labels; use form='binary' or 'samplewise' (unsupervised)")
        if o.num_classes < 2:
            raise ValueError(f"config.objective.num_classes={o.num_classes} must be >= 2 for the multiclass form")


# ----------------------------------------------------------------------------------- model
def build_model(config, rngs: nnx.Rngs) -> CSCCTRL | ConvCTRL:
    """The model named by ``config.model.architecture`` for ``config.data`` images."""
    m = parse_model(config)
    image_shape = (config.data.image_size, config.data.image_size, config.data.channels)
    geometry = dict(channels=tuple(m.channels), kernel_sizes=tuple(m.kernel_sizes), strides=tuple(m.strides),
                    feature_dim=m.feature_dim, output=m.output)
    if m.architecture == "conv":
        return ConvCTRL(image_shape, **geometry, norm=m.norm, conv_impl=m.conv_impl, init=m.init, rngs=rngs)
    return CSCCTRL(image_shape, **geometry, lam=tuple(m.lam), decoder_lam=tuple(m.decoder_lam),
                   learn_lam=m.learn_lam, num_iters=m.num_iters, nonneg=m.nonneg,
                   decoder_nonneg=m.decoder_nonneg, boundary=m.boundary,
                   lipschitz_margin=m.lipschitz_margin, tied=m.tied, unroll=m.unroll or None, rngs=rngs)


def _augment(x: jax.Array, rng: jax.Array, shift: int, flip: bool) -> jax.Array:
    """Per-example random circular shift in [−shift, shift]² and optional horizontal flip."""
    k_shift, k_flip = jax.random.split(rng)
    shifts = jax.random.randint(k_shift, (x.shape[0], 2), -shift, shift + 1)
    x = jax.vmap(lambda img, s: jnp.roll(img, (s[0], s[1]), axis=(0, 1)))(x, shifts)
    if flip:
        mask = jax.random.bernoulli(k_flip, 0.5, (x.shape[0], 1, 1, 1))
        x = jnp.where(mask, x[:, :, ::-1], x)
    return x


def pixel_maps(pixel_range: str):
    """(to the networks' scale, back to [0, 1]) for ``model.pixel_range``."""
    if pixel_range == "symmetric":
        return (lambda x: 2.0 * x - 1.0), (lambda y: 0.5 * (y + 1.0))
    return (lambda x: x), (lambda y: y)


def make_task(config) -> Task:
    m, o = parse_model(config), sections.parse_section(config, "objective", ObjectiveConfig)
    graphdef, _, _ = split_module(build_model(config, nnx.Rngs(0)))
    tx = optim.make_optimizer(config.optim, config.train.num_steps)
    power_iters = getattr(m, "power_iters", 1)
    to_net, to_unit = pixel_maps(m.pixel_range)

    def model(params, extra):
        return nnx.merge(graphdef, params, extra.get("batch_stats", {}))

    def eval_model(state):
        """The model with running BatchNorm statistics (unchanged without BatchNorm)."""
        return nnx.view(model(state.params, state.extra), use_running_average=True, raise_if_not_found=False)

    def game_terms(z, z_hat, membership):
        fn = functools.partial(ctrl_lib.ctrl_terms, form=o.form, eps_sq=o.eps_sq,
                               samplewise_weight=o.samplewise_weight, method=o.logdet)
        if membership is None:
            return ctrl_lib.over_global_batch(lambda z, zh, axis_name: fn(z, zh, None, axis_name=axis_name))(z, z_hat)
        return ctrl_lib.over_global_batch(lambda z, zh, mb, axis_name: fn(z, zh, mb, axis_name=axis_name))(
                z, z_hat, membership)

    def membership_of(batch):
        if o.form != "multiclass":
            return None
        if "label" not in batch:
            raise ValueError("config.objective.form='multiclass' needs batches with 'label'; this data has "
                             f"keys {sorted(batch)} — use form='binary' or 'samplewise'")
        return jax.nn.one_hot(batch["label"], o.num_classes, dtype=jnp.float32)

    def pixel_loss(x_net, target):
        """P = ½ mean((x̂ − x)²) on the [0, 1] scale."""
        return 0.5 * jnp.mean((to_unit(x_net) - target) ** 2)

    def objective(params, batch, extra, rng):
        """L = T − aug_weight·A + recon_weight·P(g_η(sg Z)) − encoder_recon_weight·P(g_{sg η}(Z)):
        −∂L/∂θ and ∂L/∂η are the players' gradients (each P term reaches one player only).
        Aux: metrics, the moved BatchNorm statistics, Z."""
        net = model(params, extra)
        target = batch["image"]
        x = to_net(target)
        z, codes = net.encode(x, extra)
        x_hat = net.decode(jax.lax.stop_gradient(z), extra)
        z_hat, codes_hat = net.encode(x_hat, extra)
        terms = game_terms(z, z_hat, membership_of(batch))
        recon = pixel_loss(x_hat, target)
        value = terms["T"] + o.recon_weight * recon
        if o.encoder_recon_weight:
            frozen_decoder = model({**params, "decoder": jax.lax.stop_gradient(params["decoder"])}, extra)
            value = value - o.encoder_recon_weight * pixel_loss(frozen_decoder.decode(z, extra), target)
        metrics = {"loss": terms["T"], **{f"loss/{k}": v for k, v in terms.items() if k != "T"},
                   "loss/recon": recon, "recon/psnr": jnp.mean(-10 * jnp.log10(
                           jnp.mean((jnp.clip(to_unit(x_hat), 0, 1) - target) ** 2, axis=(1, 2, 3)) + 1e-12)),
                   "features/norm": jnp.mean(jnp.linalg.norm(z, axis=1)),
                   "features/cos_recon": jnp.mean(jnp.sum(z * z_hat, axis=1))}
        if o.aug_weight:
            z_aug, _ = net.encode(_augment(x, rng, o.aug_shift, o.aug_flip), extra)
            aug = ctrl_lib.over_global_batch(
                    lambda a, b, axis_name: {"A": ctrl_lib.augmentation_consistency(a, b, o.eps_sq, axis_name)})(
                    z, z_aug)["A"]
            value = value - o.aug_weight * aug
            metrics["loss/aug"] = aug
        for i, (c, ch) in enumerate(zip(codes, codes_hat)):
            metrics[f"sparsity/z{i + 1}"] = sc_metrics.fraction_nonzero(c)
            metrics[f"sparsity/zhat{i + 1}"] = sc_metrics.fraction_nonzero(ch)
        return value, (metrics, batch_stats(net), z)

    def refresh(params, extra):
        return {**extra, **model(params, extra).refresh_state(extra, power_iters)}

    def init(rng, batch):
        membership = membership_of(batch)  # a clear error for unlabeled data in the multiclass form
        param_rng, state_rng = jax.random.split(rng)
        net = build_model(config, nnx.Rngs(params=param_rng))
        _, params, _ = split_module(net)
        extra = net.init_state(state_rng, getattr(m, "power_iters_init", 1))
        if batch_stats(net):
            extra["batch_stats"] = batch_stats(net)
        if m.class_moments_decay:
            extra["class_moments"] = ctrl_pictures.class_moments(
                    jnp.zeros((membership.shape[0], m.feature_dim)), jnp.zeros_like(membership))
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state={p: tx.init(params[p]) for p in PLAYERS}, extra=extra)

    def player_grad(params, player, batch, extra, rng):
        """∂L/∂(player's params), the encoder's negated (it ascends T); and the aux."""
        def fn(own):
            return objective({**params, player: own}, batch, extra, rng)
        grads, aux = jax.grad(fn, has_aux=True)(params[player])
        return (jax.tree.map(jnp.negative, grads) if player == "encoder" else grads), aux

    def with_stats(extra, stats):
        return {**extra, "batch_stats": stats} if stats else extra

    def train_step(state, batch, rng):
        params, opt_state = state.params, state.opt_state
        extra = refresh(params, state.extra)
        if o.update_rule == "simultaneous":
            grads, (metrics, stats, z) = jax.grad(objective, has_aux=True)(params, batch, extra, rng)
            grads = {**grads, "encoder": jax.tree.map(jnp.negative, grads["encoder"])}
            for player in PLAYERS:
                params, opt_state = update_player(tx, params, opt_state, grads[player], player)
        else:
            grads = {}
            grads["encoder"], (metrics, stats, z) = player_grad(params, "encoder", batch, extra, rng)
            params, opt_state = update_player(tx, params, opt_state, grads["encoder"], "encoder")
            extra = with_stats(extra, stats)
            grads["decoder"], (_, stats, _) = player_grad(params, "decoder", batch, extra, rng)  # new encoder
            params, opt_state = update_player(tx, params, opt_state, grads["decoder"], "decoder")
        extra = with_stats(extra, stats)
        if m.class_moments_decay:
            extra["class_moments"] = ctrl_pictures.decayed_moments(
                    extra["class_moments"], ctrl_pictures.class_moments(z, membership_of(batch)),
                    m.class_moments_decay)
        norms = global_norms(grad_encoder=grads["encoder"], grad_decoder=grads["decoder"])
        metrics = {**metrics, **norms}
        if "lipschitz" in extra:
            metrics.update({f"lipschitz/stage{i + 1}": lip for i, lip in enumerate(extra["lipschitz"])})
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, extra=extra)
        return new_state, metrics

    def decode_unit(net, features, extra):
        return jnp.clip(to_unit(net.decode(features, extra)), 0.0, 1.0)

    def eval_step(state, batch):
        net = eval_model(state)
        z, codes = net.encode(to_net(batch["image"]), state.extra)
        out = {"reconstruction": decode_unit(net, z, state.extra), "features": z}
        if m.class_moments_decay:
            drawn = ctrl_pictures.class_samples(state.extra["class_moments"], batch["label"],
                                                ctrl_pictures.example_keys(batch["image"]))
            out["samples"] = decode_unit(net, drawn, state.extra)
        for i, c in enumerate(codes):
            out[f"sparsity/stage{i + 1}"] = jnp.mean((c != 0).astype(jnp.float32), axis=tuple(range(1, c.ndim)))
        return out

    def images(state, batch):
        net = eval_model(state)
        z, _ = net.encode(to_net(batch["image"]), state.extra)
        membership = (jax.nn.one_hot(batch["label"], o.num_classes) if "label" in batch
                      else jnp.ones((z.shape[0], 1), z.dtype))
        directions = ctrl_pictures.principal_directions(z, membership, ctrl_pictures.NUM_DIRECTIONS)
        k, p, d = directions.shape
        out = {"principal_samples": decode_unit(net, directions.reshape(k * p, d), state.extra)}
        dicts = net.dictionaries()
        out.update(ctrl_pictures.atom_images(dicts["decoder"], prefix="atoms_decoder"))
        out.update(ctrl_pictures.atom_images(dicts["encoder"], prefix="atoms_encoder"))
        if m.architecture == "csc":
            out.update(ctrl_pictures.effective_atoms(dicts["decoder"], tuple(m.strides), m.boundary))
        return out

    return Task(init=init, train_step=train_step, eval_step=eval_step, images=images)
