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

``config.model`` (see :func:`model_config`) and ``config.objective`` (see
:func:`objective_config`) hold every choice; :func:`validate_config` checks them before
anything compiles.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sparse_ae import data as data_lib
from sparse_ae import optim
from sparse_ae.models import ctrl_pictures
from sparse_ae.models.conv_ctrl import NORMS, ConvCTRL
from sparse_ae.models.csc_ctrl import OUTPUTS, CSCCTRL
from sparse_ae.objectives import ctrl as ctrl_lib
from sparse_ae.objectives import rate_reduction as rr
from sparse_ae.sparse_coding import metrics as sc_metrics
from sparse_ae.train.state import TrainState, global_norms, split_module, update_player
from sparse_ae.train.task import Task

ARCHITECTURES = ("csc", "conv")
UPDATES = ("simultaneous", "alternating")
PLAYERS = ("encoder", "decoder")


def model_config(architecture: str = "csc") -> ml_collections.ConfigDict:
    """Defaults of ``config.model``.

    Shared: feature_dim (d), channels / kernel_sizes / strides (one entry per stage),
    output ('none' | 'sigmoid' | 'clip': decoder nonlinearity; eval reconstructions are clipped
    to [0, 1] either way).
    CSC only: num_iters (T FISTA steps per stage), lam (λ_ℓ init per stage), decoder_lam
    (λ'_ℓ init of the decoder's between-stage thresholds), learn_lam, nonneg (encoder codes z ≥ 0),
    decoder_nonneg (the decoder's between-stage codes ≥ 0), boundary
    ('zero' | 'circular'), tied (decoder reuses the encoder atoms), lipschitz_margin (step
    1/(margin·L)), power_iters (per train step, warm-started), power_iters_init, unroll
    (FISTA scan unroll; 0 = backend default).
    Conv only: norm ('group' | 'none').
    """
    config = ml_collections.ConfigDict(dict(
            architecture=architecture, feature_dim=128, channels=(32, 64), kernel_sizes=(4, 4), strides=(2, 2),
            output="none"))
    if architecture == "csc":
        config.update(num_iters=5, lam=(0.1, 0.1), decoder_lam=(0.02, 0.02), learn_lam=True, nonneg=True,
                      decoder_nonneg=True, boundary="zero", tied=False, lipschitz_margin=1.05, power_iters=1,
                      power_iters_init=50, unroll=0)
    else:
        config.update(norm="group")
    return config


def objective_config() -> ml_collections.ConfigDict:
    """Defaults of ``config.objective``.

    form: 'multiclass' (labels) | 'binary' | 'samplewise' (see sparse_ae.objectives.ctrl).
    eps_sq: ε². num_classes: k of the multiclass form. samplewise_weight: weight of the
    per-sample consistency Σ_i ΔR(z_i, ẑ_i) added to T (a game term). recon_weight: the decoder
    also minimises recon_weight · P, P = ½ mean((g(f(X)) − X)²). encoder_recon_weight: the encoder
    also minimises encoder_recon_weight · P (through Z; a shared autoencoding term, not a game
    term). aug_weight / aug_shift / aug_flip: encoder-only augmentation
    consistency between two random views (circular shifts up to aug_shift pixels, optional
    horizontal flips). update_rule: 'simultaneous' | 'alternating'. logdet: 'slogdet' | 'cholesky' |
    'eigh'.
    """
    return ml_collections.ConfigDict(dict(
            form="multiclass", eps_sq=0.5, num_classes=10, samplewise_weight=0.0, recon_weight=0.0,
            encoder_recon_weight=0.0,
            aug_weight=0.0, aug_shift=2, aug_flip=False, update_rule="simultaneous", logdet=rr.DEFAULT_LOGDET))


# ----------------------------------------------------------------------------------- validation
def _ints(m, key: str, n: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    value = tuple(m[key]) if isinstance(m[key], (list, tuple)) else None
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        raise ValueError(f"config.model.{key}={m[key]!r} must be a non-empty sequence of integers >= {minimum}")
    if n is not None and len(value) != n:
        raise ValueError(f"config.model.{key} has {len(value)} entries; config.model.channels has {n} stages")
    return value


def _choice(section: str, value, options) -> None:
    if value not in options:
        raise ValueError(f"config.{section}={value!r} is not one of {tuple(options)}")


def validate_config(config) -> None:
    """Clear errors (naming the field) for the model, the objective and data/batch compatibility."""
    for name, defaults in (("model", model_config(config.model.get("architecture", "csc"))),
                           ("objective", objective_config())):
        if name not in config:
            raise ValueError(f"config.{name} is missing for task 'ctrl' (see ctrl.{name}_config())")
        missing = sorted(set(defaults) - set(config[name]))
        unknown = sorted(set(config[name]) - set(defaults))
        if missing or unknown:
            raise ValueError(f"config.{name}: missing fields {missing}, unknown fields {unknown} "
                             f"(see sparse_ae.train.tasks.ctrl.{name}_config())")
    m, o = config.model, config.objective
    _choice("model.architecture", m.architecture, ARCHITECTURES)
    _choice("model.output", m.output, OUTPUTS)
    stages = len(_ints(m, "channels"))
    _ints(m, "kernel_sizes", stages)
    strides = _ints(m, "strides", stages)
    if m.feature_dim < 1:
        raise ValueError(f"config.model.feature_dim={m.feature_dim} must be >= 1")
    if m.feature_dim > config.data.batch_size:
        raise ValueError(
                f"config.model.feature_dim={m.feature_dim} is larger than config.data.batch_size="
                f"{config.data.batch_size}: the coding rates of a batch of n < d features cannot measure "
                "a d-dimensional spread (every batch is trivially expanded); use feature_dim <= batch_size")
    size = config.data.image_size
    total_stride = 1
    for s in strides:
        total_stride *= s
    if not size or size % total_stride:
        raise ValueError(f"config.data.image_size={size} must be a positive multiple of the product of "
                         f"config.model.strides={tuple(strides)} ({total_stride})")
    if m.architecture == "csc":
        for key in ("lam", "decoder_lam"):
            if len(m[key]) != stages or not all(v > 0 for v in m[key]):
                raise ValueError(f"config.model.{key}={m[key]!r} needs {stages} values > 0 (one per stage)")
        for key in ("num_iters", "power_iters", "power_iters_init"):
            if m[key] < 1:
                raise ValueError(f"config.model.{key}={m[key]} must be >= 1")
        _choice("model.boundary", m.boundary, ("zero", "circular"))
        if not m.lipschitz_margin >= 1:
            raise ValueError(f"config.model.lipschitz_margin={m.lipschitz_margin} must be >= 1")
        if m.unroll < 0:
            raise ValueError(f"config.model.unroll={m.unroll} must be >= 0 (0: backend default)")
    else:
        _choice("model.norm", m.norm, NORMS)
    _choice("objective.form", o.form, ctrl_lib.FORMS)
    _choice("objective.update_rule", o.update_rule, UPDATES)
    _choice("objective.logdet", o.logdet, rr.LOGDET_METHODS)
    if not o.eps_sq > 0:
        raise ValueError(f"config.objective.eps_sq={o.eps_sq} must be > 0 (it is ε², e.g. 0.5)")
    for key in ("samplewise_weight", "recon_weight", "encoder_recon_weight", "aug_weight"):
        if o[key] < 0:
            raise ValueError(f"config.objective.{key}={o[key]} must be >= 0")
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
    m = config.model
    image_shape = (config.data.image_size, config.data.image_size, config.data.channels)
    geometry = dict(channels=tuple(m.channels), kernel_sizes=tuple(m.kernel_sizes), strides=tuple(m.strides),
                    feature_dim=m.feature_dim, output=m.output)
    if m.architecture == "conv":
        return ConvCTRL(image_shape, **geometry, norm=m.norm, rngs=rngs)
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


def make_task(config) -> Task:
    m, o = config.model, config.objective
    graphdef, _, rest = split_module(build_model(config, nnx.Rngs(0)))
    tx = optim.make_optimizer(config.optim, config.train.num_steps)
    power_iters = m.get("power_iters", 1)

    def model(params):
        return nnx.merge(graphdef, params, rest)

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

    def objective(params, batch, extra, rng):
        """L = T − aug_weight·A + recon_weight·P(g_η(sg Z)) − encoder_recon_weight·P(g_{sg η}(Z)):
        −∂L/∂θ and ∂L/∂η are the players' gradients (each P term reaches one player only)."""
        net = model(params)
        x = batch["image"]
        z, codes = net.encode(x, extra)
        x_hat = net.decode(jax.lax.stop_gradient(z), extra)
        z_hat, codes_hat = net.encode(x_hat, extra)
        terms = game_terms(z, z_hat, membership_of(batch))
        recon = 0.5 * jnp.mean((x_hat - x) ** 2)
        value = terms["T"] + o.recon_weight * recon
        if o.encoder_recon_weight:
            frozen_decoder = model({**params, "decoder": jax.lax.stop_gradient(params["decoder"])})
            x_enc = frozen_decoder.decode(z, extra)
            value = value - o.encoder_recon_weight * 0.5 * jnp.mean((x_enc - x) ** 2)
        metrics = {"loss": terms["T"], **{f"loss/{k}": v for k, v in terms.items() if k != "T"},
                   "loss/recon": recon, "recon/psnr": jnp.mean(-10 * jnp.log10(
                           jnp.mean((jnp.clip(x_hat, 0, 1) - x) ** 2, axis=(1, 2, 3)) + 1e-12)),
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
        return value, metrics

    def refresh(params, extra):
        return model(params).refresh_state(extra, power_iters)

    def init(rng, batch):
        membership_of(batch)  # a clear error for unlabeled data in the multiclass form
        param_rng, state_rng = jax.random.split(rng)
        net = build_model(config, nnx.Rngs(params=param_rng))
        _, params, _ = split_module(net)
        extra = net.init_state(state_rng, m.get("power_iters_init", 1))
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state={p: tx.init(params[p]) for p in PLAYERS}, extra=extra)

    def player_grad(params, player, batch, extra, rng):
        """∂L/∂(player's params), the encoder's negated (it ascends T); and the metrics."""
        def fn(own):
            return objective({**params, player: own}, batch, extra, rng)
        grads, metrics = jax.grad(fn, has_aux=True)(params[player])
        return (jax.tree.map(jnp.negative, grads) if player == "encoder" else grads), metrics

    def train_step(state, batch, rng):
        params, opt_state = state.params, state.opt_state
        extra = refresh(params, state.extra)
        if o.update_rule == "simultaneous":
            grads, metrics = jax.grad(objective, has_aux=True)(params, batch, extra, rng)
            grads = {**grads, "encoder": jax.tree.map(jnp.negative, grads["encoder"])}
            for player in PLAYERS:
                params, opt_state = update_player(tx, params, opt_state, grads[player], player)
        else:
            grads = {}
            grads["encoder"], metrics = player_grad(params, "encoder", batch, extra, rng)
            params, opt_state = update_player(tx, params, opt_state, grads["encoder"], "encoder")
            grads["decoder"], _ = player_grad(params, "decoder", batch, extra, rng)  # through the new encoder
            params, opt_state = update_player(tx, params, opt_state, grads["decoder"], "decoder")
        norms = global_norms(grad_encoder=grads["encoder"], grad_decoder=grads["decoder"])
        metrics = {**metrics, **norms}
        if "lipschitz" in extra:
            metrics.update({f"lipschitz/stage{i + 1}": lip for i, lip in enumerate(extra["lipschitz"])})
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, extra=extra)
        return new_state, metrics

    def eval_step(state, batch):
        net = model(state.params)
        z, codes = net.encode(batch["image"], state.extra)
        x_hat = net.decode(z, state.extra)
        out = {"reconstruction": jnp.clip(x_hat, 0.0, 1.0), "features": z}
        for i, c in enumerate(codes):
            out[f"sparsity/stage{i + 1}"] = jnp.mean((c != 0).astype(jnp.float32), axis=tuple(range(1, c.ndim)))
        return out

    def images(state, batch):
        net = model(state.params)
        z, _ = net.encode(batch["image"], state.extra)
        membership = (jax.nn.one_hot(batch["label"], o.num_classes) if "label" in batch
                      else jnp.ones((z.shape[0], 1), z.dtype))
        directions = ctrl_pictures.principal_directions(z, membership, ctrl_pictures.NUM_DIRECTIONS)
        k, p, d = directions.shape
        samples = net.decode(directions.reshape(k * p, d), state.extra)
        out = {"principal_samples": jnp.clip(samples, 0.0, 1.0)}
        dicts = net.dictionaries()
        out.update(ctrl_pictures.atom_images(dicts["decoder"], prefix="atoms_decoder"))
        out.update(ctrl_pictures.atom_images(dicts["encoder"], prefix="atoms_encoder"))
        if m.architecture == "csc":
            out.update(ctrl_pictures.effective_atoms(dicts["decoder"], tuple(m.strides), m.boundary))
        return out

    return Task(init=init, train_step=train_step, eval_step=eval_step, images=images)
