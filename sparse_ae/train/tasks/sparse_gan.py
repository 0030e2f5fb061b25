"""Task ``sparse_gan``: a DCGAN whose generator carries per-layer sparsity (none / L1 / L0 / L0,∞ / ML).

One train step (one jitted function) updates both players: ``objective.disc_steps``
discriminator updates (fresh z each, the generator's output held fixed), then one generator
update through the updated discriminator. The generator minimises its GAN loss plus the L1
penalties of its l1 layers; its BatchNorm running statistics live in ``state.extra["batch_stats"]``.
With ``model.discriminator = "sngan"`` the discriminator's weights are spectrally normalised: its
power-iteration vectors live in ``state.extra["power_vectors"]`` and advance by one iteration
before each discriminator update (Miyato et al.: one iteration per update, the vector carried over).
Each player has its own optimizer: ``config.optim`` (generator) and ``config.optim_disc``.

``eval_step`` returns per example ``"samples"`` (B, S, S, C) drawn from a fixed latent per
example (z_i from a key folded with a hash of the i-th real image, so evaluation samples are
the same at every evaluation and across runs), the same array as ``"reconstruction"`` (the key
the FID evaluator reads), and ``"code"``: the generator's last representation h_n, the sparse
map the output dictionary is applied to.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae import optim
from sparse_ae.models import sparsity
from sparse_ae.models.dcgan import (DCGAN, DISCRIMINATORS, SNDiscriminator, generator_widths, num_stages,
                                    power_vectors)
from sparse_ae.objectives import gan
from sparse_ae.train.state import TrainState, batch_stats, global_norms, split_module, update_player
from sparse_ae.train.task import Task
from sparse_ae.utils import sections

PLAYERS = ("generator", "discriminator")
NUM_SAMPLE_IMAGES = 64


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``config.model`` of task ``sparse_gan``."""

    # Length of the generator's latent z.
    latent_dim: int = 64
    # Channels of the generator's last hidden layer (doubled towards the input).
    g_width: int = 32
    # Channels of the discriminator's first layer.
    d_width: int = 32
    # One sparsity spec per generator hidden layer h_1 … h_n ('none' | 'l1:<λ>' | 'l0:<k>' | ...).
    sparsity: tuple[str, ...] = ("none", "none")
    # 'dcgan' (plain convolutions) or 'sngan' (every weight spectrally normalised, Miyato et al. 2018).
    discriminator: Literal[DISCRIMINATORS] = "dcgan"


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """``config.objective`` of task ``sparse_gan``."""

    # GAN loss of both players.
    loss: Literal[gan.LOSSES] = "nonsaturating"
    # λ of the WGAN-GP gradient penalty.
    gp_weight: float = 10.0
    # Discriminator updates per generator update.
    disc_steps: int = 1


def config_sections(config) -> dict[str, type]:
    """The dataclass of each of this task's config sections (``optim_disc``: the discriminator's optimizer)."""
    return {"model": ModelConfig, "objective": ObjectiveConfig, "optim_disc": optim.OptimConfig}


def layer_shapes(config) -> list[tuple[int, int, int]]:
    """(H, W, C) of the generator's hidden layers h_1 … h_n."""
    return [(4 * 2**i, 4 * 2**i, w) for i, w in enumerate(generator_widths(config.data.image_size,
                                                                             config.model.g_width))]


def validate_config(config) -> None:
    m = sections.parse_section(config, "model", ModelConfig)
    o = sections.parse_section(config, "objective", ObjectiveConfig)
    if "optim_disc" not in config:
        raise ValueError("config.optim_disc is missing: the discriminator's optimizer (sparse_ae.optim.optim_config())")
    optim.validate_optim(config, "optim_disc")
    num_stages(config.data.image_size)
    for key in ("latent_dim", "g_width", "d_width"):
        if getattr(m, key) < 1:
            raise ValueError(f"config.model.{key}={getattr(m, key)} must be >= 1")
    shapes = layer_shapes(config)
    specs = sparsity.parse_specs(m.sparsity, len(shapes), "config.model.sparsity")
    for i, (spec, shape) in enumerate(zip(specs, shapes)):
        sparsity.kept_entries(spec, (1, *shape), f"g{i + 1} (config.model.sparsity[{i}])")
    if o.gp_weight < 0:
        raise ValueError(f"config.objective.gp_weight={o.gp_weight} must be >= 0")
    if o.disc_steps < 1:
        raise ValueError(f"config.objective.disc_steps={o.disc_steps} must be >= 1")


def build_model(config, rngs: nnx.Rngs) -> DCGAN:
    m = config.model
    return DCGAN(latent_dim=m.latent_dim, image_size=config.data.image_size, channels=config.data.channels,
                 g_width=m.g_width, d_width=m.d_width, sparsity=tuple(m.sparsity), rngs=rngs,
                 discriminator=m.discriminator)


def eval_latents(images: jax.Array, latent_dim: int) -> jax.Array:
    """(B, latent_dim) normals, each from a key folded with a hash of the example's image."""
    flat = images.reshape(images.shape[0], -1)
    weights = jnp.arange(1, flat.shape[1] + 1, dtype=jnp.float32) / flat.shape[1]
    hashes = jax.lax.bitcast_convert_type(flat @ weights, jnp.int32)
    base = jax.random.key(20_250_101)
    return jax.vmap(lambda h: jax.random.normal(jax.random.fold_in(base, h), (latent_dim,)))(hashes)


def _merge(graphdef: nnx.GraphDef, params: dict, extra: dict) -> DCGAN:
    return nnx.merge(graphdef, params, extra["batch_stats"], extra["power_vectors"])


def trained_model(config, state: TrainState) -> DCGAN:
    """The DCGAN holding ``state``'s parameters, BatchNorm statistics and power vectors."""
    graphdef, _, _ = split_module(build_model(config, nnx.Rngs(0)))
    return _merge(graphdef, state.params, state.extra)


def make_task(config) -> Task:
    m, o = config.model, config.objective
    graphdef, _, _ = split_module(build_model(config, nnx.Rngs(0)))
    txs = {"generator": optim.make_optimizer(config.optim, config.train.num_steps),
           "discriminator": optim.make_optimizer(config.optim_disc, config.train.num_steps)}

    def model(params, extra):
        return _merge(graphdef, params, extra)

    def advance_power_vectors(params, extra):
        """``extra`` with the SN discriminator's vectors one power iteration further (unchanged for dcgan)."""
        net = model(params, extra)
        if isinstance(net.discriminator, SNDiscriminator):
            net.discriminator.power_step()
        return {**extra, "power_vectors": power_vectors(net)}

    def disc_objective(d_params, g_params, extra, real, fake, key):
        net = model({"generator": g_params, "discriminator": d_params}, extra)
        real_logits, fake_logits = net.discriminator(real), net.discriminator(fake)
        loss = gan.discriminator_loss(real_logits, fake_logits, o.loss)
        metrics = {"loss/d": loss, "d/real": jnp.mean(real_logits), "d/fake": jnp.mean(fake_logits)}
        if o.loss == "wgan_gp":
            penalty = gan.gradient_penalty(net.discriminator, real, fake, key)
            loss = loss + o.gp_weight * penalty
            metrics["loss/gp"] = penalty
        return loss, metrics

    def gen_objective(g_params, d_params, extra, z):
        net = model({"generator": g_params, "discriminator": d_params}, extra)
        fake, layer_stats = net.generator(z, train=True)
        adversarial = gan.generator_loss(net.discriminator(fake), o.loss)
        penalty = sparsity.total_penalty(layer_stats)
        metrics = {"loss": adversarial + penalty, "loss/g": adversarial, "loss/sparsity": penalty,
                   **sparsity.log_metrics(layer_stats)}
        return adversarial + penalty, (metrics, batch_stats(net))

    def init(rng, batch):
        del batch
        net = build_model(config, nnx.Rngs(params=rng))
        _, params, _ = split_module(net)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state={p: txs[p].init(params[p]) for p in PLAYERS},
                          extra={"batch_stats": batch_stats(net), "power_vectors": power_vectors(net)})

    def train_step(state, batch, rng):
        real = batch["image"]
        params, opt_state, extra = state.params, state.opt_state, state.extra
        keys = jax.random.split(rng, 2 * o.disc_steps + 1)
        metrics = {}
        for i in range(o.disc_steps):
            z = jax.random.normal(keys[2 * i], (real.shape[0], m.latent_dim))
            fake, _ = model(params, extra).generator(z, train=True)
            extra = advance_power_vectors(params, extra)
            d_grads, metrics = jax.grad(disc_objective, has_aux=True)(
                    params["discriminator"], params["generator"], extra, real, jax.lax.stop_gradient(fake),
                    keys[2 * i + 1])
            params, opt_state = update_player(txs["discriminator"], params, opt_state, d_grads, "discriminator")
        z = jax.random.normal(keys[-1], (real.shape[0], m.latent_dim))
        g_grads, (g_metrics, new_stats) = jax.grad(gen_objective, has_aux=True)(
                params["generator"], params["discriminator"], extra, z)
        params, opt_state = update_player(txs["generator"], params, opt_state, g_grads, "generator")
        metrics = {**metrics, **g_metrics, **global_norms(grad_g=g_grads, grad_d=d_grads)}
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  extra={**extra, "batch_stats": new_stats})
        return new_state, metrics

    def sample(state, z):
        net = model(state.params, state.extra)
        code, _ = net.generator.hidden(z, train=False)
        return jax.nn.sigmoid(net.generator.out(code)), code

    def eval_step(state, batch):
        samples, code = sample(state, eval_latents(batch["image"], m.latent_dim))
        return {"samples": samples, "reconstruction": samples, "code": code}

    def images(state, batch):
        del batch
        z = jax.random.normal(jax.random.key(0), (NUM_SAMPLE_IMAGES, m.latent_dim))
        return {"samples": sample(state, z)[0]}

    return Task(init=init, train_step=train_step, eval_step=eval_step, images=images)

