"""Task ``sc_vae``: SC-VAE and its baselines (VQ-VAE, plain autoencoder), one model with a
``config.model.bottleneck`` switch ("lista" | "ista" | "vq" | "none"); see :mod:`sparse_ae.models.sc_vae`
for the model and :mod:`sparse_ae.objectives.sc_vae` for the loss terms and their scaling.

State: ``params`` (the module's ``nnx.Param``s), ``extra["model"]`` (its other variables: the
fixed DCT dictionary, a fixed α, the EMA codebook state). A VQ codebook starts from latent
vectors of the first batch. With ``vq_ema`` the codebook is updated after the gradient step
from the batch's assignments.

Metrics: ``loss``, ``loss/<term>``, ``norm/grad``; lista: ``alpha``, ``lista/theta``; ista: ``ista/step``
(c); both: ``sparsity/code_nonzero`` (fraction of non-zero entries of Z), ``sparsity/code_hoyer`` (mean Hoyer
sparsity of the code vectors); vq: ``vq/usage`` (fraction of codewords used in the batch),
``vq/perplexity``. ``eval_step``: "reconstruction" (B, H, W, C), "latent" E (B, h, w, n), "code"
(B, h, w, K | n), and "indices" (B, h, w) for vq. The task also carries
``decode(state, code) -> images`` (used by the code_edits evaluator).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from sparse_ae import optim
from sparse_ae.models import sc_vae as sc_vae_model
from sparse_ae.objectives import sc_vae as objectives
from sparse_ae.sparse_coding import metrics as sc_metrics
from sparse_ae.train.state import TrainState, global_norms, split_module
from sparse_ae.train.task import Task


@dataclasses.dataclass(frozen=True)
class CodecTask(Task):
    """A :class:`Task` that can also decode codes: ``decode(state, code) -> images (B, H, W, C)``,
    ``code`` shaped like ``eval_step``'s "code"."""

    decode: Callable | None = None


def config_sections(config) -> dict[str, type]:
    """The dataclass of this task's config section."""
    return {"model": sc_vae_model.ModelConfig}


def validate_config(config) -> None:
    sc_vae_model.validate(config.model, config.data.image_size)


def codebook_stats(indices: jax.Array, num_codes: int) -> dict[str, jax.Array]:
    """Fraction of the K codewords used and the perplexity exp(H(p)) of their frequencies p."""
    counts = jnp.bincount(indices.reshape(-1), length=num_codes)
    p = counts / jnp.maximum(jnp.sum(counts), 1)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return {"vq/usage": jnp.mean(counts > 0), "vq/perplexity": jnp.exp(entropy)}


def make_task(config) -> CodecTask:
    m = config.model
    validate_config(config)
    size, channels = config.data.image_size, config.data.channels
    build = lambda rngs: sc_vae_model.SCVAE(m, size, channels, rngs=rngs)  # noqa: E731
    graphdef, _, _ = split_module(nnx.eval_shape(lambda: build(nnx.Rngs(0))))
    tx = optim.make_optimizer(config.optim, config.train.num_steps)

    def model(state_or_params, rest=None) -> sc_vae_model.SCVAE:
        if rest is None:
            return nnx.merge(graphdef, state_or_params.params, state_or_params.extra["model"])
        return nnx.merge(graphdef, state_or_params, rest)

    def init(rng, batch):
        param_rng, codebook_rng = jax.random.split(rng)
        net = build(nnx.Rngs(params=param_rng))
        if m.bottleneck == "vq":
            net.bottleneck.init_from_latents(net.encoder(batch["image"]), codebook_rng)
        _, params, rest = split_module(net)
        return TrainState.create(params, tx, extra={"model": rest})

    def loss_terms(net, x, out: sc_vae_model.Output) -> tuple[objectives.Terms, dict[str, jax.Array]]:
        bottleneck = out.bottleneck
        if m.bottleneck in sc_vae_model.SPARSE_BOTTLENECKS:
            code = bottleneck.code
            if m.bottleneck == "lista":
                alpha = net.bottleneck.alpha()
                terms = objectives.sc_vae_terms(x, out.reconstruction, out.latent, bottleneck.decoder_input, code,
                                                alpha, m.latent_weight)
                stats = {"alpha": alpha, "lista/theta": net.bottleneck.theta[...]}
            else:
                terms = objectives.authors_code_terms(x, out.reconstruction, out.latent, bottleneck.decoder_input,
                                                      m.latent_weight)
                stats = {"ista/step": net.bottleneck.step[...]}
            stats.update({"sparsity/code_nonzero": sc_metrics.fraction_nonzero(code),
                          "sparsity/code_hoyer": jnp.mean(sc_metrics.hoyer_sparsity(code))})
        elif m.bottleneck == "vq":
            terms = objectives.vq_terms(x, out.reconstruction, out.latent, bottleneck.code, m.latent_weight,
                                        m.commitment, m.vq_ema)
            stats = codebook_stats(bottleneck.indices, m.num_atoms)
        else:
            terms, stats = objectives.autoencoder_terms(x, out.reconstruction), {}
        return terms, stats

    def train_step(state, batch, rng):
        del rng  # deterministic
        x = batch["image"]

        def loss_fn(params):
            net = model(params, state.extra["model"])
            out = net(x)
            terms, stats = loss_terms(net, x, out)
            loss = sum(terms.values())
            return loss, ({**terms, **stats}, (out.bottleneck.counts, out.bottleneck.sums))

        (loss, (metrics, assignment)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_state = state.apply_gradients(grads, tx)
        if m.bottleneck == "vq" and m.vq_ema:
            net = model(new_state)
            net.bottleneck.ema_update(*assignment)
            new_state = new_state.replace(extra={"model": split_module(net)[2]})
        return new_state, {"loss": loss, **metrics, **global_norms(grad=grads)}

    def eval_step(state, batch):
        out = model(state)(batch["image"])
        outputs = {"reconstruction": out.reconstruction, "latent": out.latent, "code": out.bottleneck.code}
        if out.bottleneck.indices is not None:
            outputs["indices"] = out.bottleneck.indices
        return outputs

    def decode(state, code):
        return model(state).decode_code(code)

    return CodecTask(init=init, train_step=train_step, eval_step=eval_step, decode=decode)
