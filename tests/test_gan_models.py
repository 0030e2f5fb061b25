"""Sparse GAN model pieces: the spectral norm of the SN discriminator (against numpy's SVD), its
jitted train step, the effective atoms of the generator, and the low-data training subset."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import load_config
from sparse_ae import data
from sparse_ae.data import digits
from sparse_ae.models import dcgan
from sparse_ae.train import validation
from sparse_ae.train.tasks import sparse_gan


@pytest.mark.parametrize("shape", [(4, 4, 3, 8), (20, 10), (64, 1)])
def test_spectral_norm_after_power_iterations_matches_svd(shape):
    kernel = jax.random.normal(jax.random.key(0), shape)
    u = jax.random.normal(jax.random.key(1), (shape[-1],))
    u = dcgan.power_iteration(kernel, u, steps=200)
    normalised, sigma = dcgan.spectral_normalise(kernel, u)
    matrix = np.asarray(kernel).reshape(-1, shape[-1])
    np.testing.assert_allclose(sigma, np.linalg.svd(matrix, compute_uv=False)[0], rtol=1e-4)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(normalised).reshape(-1, shape[-1]), compute_uv=False)[0], 1.0,
                               rtol=1e-4)
    # u is state, not a variable of the loss: no gradient reaches it
    grad_u = jax.grad(lambda v: jnp.sum(dcgan.spectral_normalise(kernel, v)[0] ** 2))(u)
    np.testing.assert_array_equal(grad_u, np.zeros_like(grad_u))


def test_sn_discriminator_layers_have_unit_spectral_norm():
    disc = dcgan.SNDiscriminator(16, 1, 4, rngs=nnx.Rngs(0))
    disc.power_step(steps=200)
    for kernel in disc.kernels():
        np.testing.assert_allclose(np.linalg.svd(np.asarray(kernel).reshape(-1, kernel.shape[-1]),
                                                 compute_uv=False)[0], 1.0, rtol=1e-4)
    plain = dcgan.Discriminator(16, 1, 4, rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(2), (3, 16, 16, 1))
    layer_outputs = 2 * x - 1
    for conv in plain.convs:  # the explicit-kernel forward pass is the nnx layers' one
        layer_outputs = jax.nn.leaky_relu(conv(layer_outputs), 0.2)
    np.testing.assert_allclose(plain(x), plain.head(layer_outputs.reshape(3, -1))[:, 0], rtol=1e-5)


def test_sngan_train_step_runs_jitted_and_advances_the_power_vectors():
    config = load_config("configs/sparse_gan.py:reg=l0inf,disc=sngan,runlocal")
    assert config.model.discriminator == "sngan"
    sparse_gan.validate_config(config)
    task = sparse_gan.make_task(config)
    batch = {"image": jax.random.uniform(jax.random.key(0), (8, 16, 16, 1))}
    state = task.init(jax.random.key(1), batch)
    new_state, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(2))
    for player in sparse_gan.PLAYERS:
        changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), state.params[player], new_state.params[player])
        assert all(jax.tree.leaves(changed)), player
    old, new = (s.extra["power_vectors"]["discriminator"]["u"] for s in (state, new_state))
    assert not np.allclose(old[0], new[0]) and not np.allclose(old[1], new[1])  # conv layers (head: 1 output)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert float(metrics["sparsity/g2_needle_max"]) == 0.25


def test_unknown_discriminator_is_a_clear_error():
    config = load_config("configs/sparse_gan.py:runlocal")
    config.model.discriminator = "wgan"
    with pytest.raises(ValueError, match=r"config.model.discriminator='wgan' is not one of \('dcgan', 'sngan'\)"):
        sparse_gan.validate_config(config)
    with pytest.raises(ValueError, match="config.model.discriminator='wgan'"):
        dcgan.DCGAN(latent_dim=4, image_size=16, channels=1, g_width=4, d_width=4, sparsity=("none", "none"),
                    rngs=nnx.Rngs(0), discriminator="wgan")


def _generator(shift: float = 0.0) -> dcgan.Generator:
    """A 16 × 16 generator (h_1: 4 × 4 × 8, h_2: 8 × 8 × 4) whose BatchNorm at h_2 scales its channels
    unequally (γ / √var = 0.25 … 1.5) and shifts them by β = ``shift``."""
    generator = dcgan.Generator(8, 16, 1, 4, ("none", "none"), rngs=nnx.Rngs(0))
    norm = generator.norms[1]
    norm.scale[...], norm.var[...] = jnp.array([0.5, 1.0, 2.0, 3.0]), jnp.full((4,), 4.0)
    norm.bias[...] = jnp.full((4,), shift)
    return generator


def test_effective_atoms_of_the_last_layer_are_the_output_dictionary():
    generator = _generator()
    atoms = dcgan.effective_atoms(generator, 2)
    assert atoms.shape == (4, 16, 16, 1)
    code = jnp.zeros((1, 8, 8, 4)).at[0, 4, 4, 2].set(3.0)
    np.testing.assert_allclose(generator.out(code) - generator.out(jnp.zeros_like(code)), 3 * atoms[2:3],
                               atol=1e-6)
    assert np.count_nonzero(np.abs(np.asarray(atoms)).max(axis=(0, 3))) == 16  # a 4 × 4 kernel's footprint


def test_effective_atoms_are_exact_where_the_later_relus_are_active():
    """With h_2's BatchNorm shifted far positive its ReLU is the identity, so the later layers are affine
    in h_1 and D_eff must be exactly their response to an impulse, minus their response to zero."""
    generator = _generator(shift=100.0)
    atoms = dcgan.effective_atoms(generator, 1)
    assert atoms.shape == (8, 16, 16, 1)

    def later_layers(h1):
        h2 = jax.nn.relu(generator.norms[1](generator.deconvs[0](h1), use_running_average=True))
        return generator.out(h2)

    impulse = jnp.zeros((1, 4, 4, 8)).at[0, 2, 2, 5].set(1.0)
    np.testing.assert_allclose(later_layers(impulse) - later_layers(jnp.zeros_like(impulse)), atoms[5:6],
                               atol=1e-4)


@pytest.mark.parametrize("layer", [0, 3, 1.0])
def test_effective_atoms_bad_layer(layer):
    with pytest.raises(ValueError, match=r"must be an integer in \[1, 2\]"):
        dcgan.effective_atoms(_generator(), layer)


@pytest.mark.parametrize("fraction", [0.1, 0.2])
def test_low_data_regime_reads_the_rounded_up_share_of_the_split(fraction):
    """``fraction=f`` trains on ⌈f · N⌉ of the N training digits, the same ones for every seed."""
    config = load_config(f"configs/sparse_gan.py:fraction={fraction},runlocal")
    validation.validate_run(config)
    images, _ = digits._arrays("train", 16, 1)  # pylint: disable=protected-access
    expected = math.ceil(fraction * len(images))
    subset = data.pipeline.training_subset(len(images), fraction)
    assert len(subset) == expected == {0.1: 150, 0.2: 300}[fraction]
    for seed in (0, 1):
        pipeline = iter(data.build(config.data, "train", seed=seed, train=True, per_process_batch=50))
        seen = [x.tobytes() for _ in range(2 * expected // 50) for x in next(pipeline)["image"]]
        assert set(seen) == {images[i].tobytes() for i in subset}  # two epochs of the subset, nothing else
