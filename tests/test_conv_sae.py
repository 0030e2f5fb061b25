"""Convolutional sparse autoencoder: shapes, code sparsity, pooling, code dropout, training, corruptions
(inpainting, super-resolution), patch averaging."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import load_config
from sparse_ae.models.conv_sae import L2_POOL_EPS, ConvSAE, patch_average, pool
from sparse_ae.train.tasks import conv_sae


def sae_config(arg: str):
    return load_config(f"configs/conv_sae.py:{arg}")


def test_codes_per_sparsity_choice():
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
    for spec, activation in (("l0:5", "relu"), ("l1:0.1", "relu"), ("none", "linear")):
        net = ConvSAE(8, 1, (4, 8), 16, spec, activation, rngs=nnx.Rngs(1))
        x_hat, code, stats = net(x)
        assert x_hat.shape == x.shape and code.shape == (3, 16)
        assert bool(jnp.all((x_hat > 0) & (x_hat < 1)))
        if spec == "l0:5":
            assert np.all(np.count_nonzero(np.asarray(code), axis=1) <= 5)
        if spec.startswith("l1"):
            np.testing.assert_allclose(stats.penalty, 0.1 * np.mean(np.abs(np.asarray(code))), rtol=1e-5)
        if activation == "linear":
            assert np.any(np.asarray(code) < 0) and float(stats.penalty) == 0
    with pytest.raises(ValueError, match="multiple of 2\\^len\\(widths\\) = 4"):
        ConvSAE(10, 1, (4, 8), 16, "none", rngs=nnx.Rngs(0))


def test_each_pool_kind_on_a_hand_made_input():
    h = jnp.array([[1., -2., 0., 0.],
                   [3., 4., 0., 0.],
                   [5., 5., -1., 2.],
                   [5., 5., 3., 6.]]).reshape(1, 4, 4, 1)
    expected = {"max": [[4., 0.], [5., 6.]],
                "avg": [[1.5, 0.], [5., 2.5]],
                "l2": np.sqrt(np.array([[7.5, 0.], [25., 12.5]]) + L2_POOL_EPS)}  # mean squares + eps
    for kind, want in expected.items():
        np.testing.assert_allclose(pool(h, kind)[0, :, :, 0], want, rtol=1e-6, err_msg=kind)
    grads = jax.grad(lambda h: pool(h, "l2").sum())(h)
    assert bool(jnp.all(jnp.isfinite(grads))) and float(jnp.abs(grads[0, :2, 2:]).max()) == 0


def test_default_options_are_max_pooling_without_dropout():
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
    default = ConvSAE(8, 1, (4, 8), 16, "l1:0.1", rngs=nnx.Rngs(1))
    explicit = ConvSAE(8, 1, (4, 8), 16, "l1:0.1", "relu", "max", 0.0, rngs=nnx.Rngs(1))
    for a, b in zip(default(x, jax.random.key(2)), explicit(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_code_dropout_in_training_only():
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
    net = ConvSAE(8, 1, (4, 8), 4096, "none", "linear", dropout=0.5, rngs=nnx.Rngs(1))
    plain = ConvSAE(8, 1, (4, 8), 4096, "none", "linear", rngs=nnx.Rngs(1))
    x_hat, code, _ = net(x)
    for a, b in zip((x_hat, code), plain(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    dropped = np.asarray(net(x, jax.random.key(3))[1])
    zeros = dropped == 0
    assert 0.47 < zeros.mean() < 0.53 and not np.any(np.asarray(code) == 0)
    np.testing.assert_allclose(dropped[~zeros], 2 * np.asarray(code)[~zeros], rtol=1e-6)


@pytest.mark.slow  # a variant of the train step the fast suite runs
def test_one_train_step_with_l2_pooling_and_dropout():
    config = sae_config("dataset=digits,runlocal")
    config.model.update(pool="l2", dropout=0.3)
    conv_sae.validate_config(config)
    task = conv_sae.make_task(config)
    batch = {"image": jax.random.uniform(jax.random.key(0), (4, 16, 16, 1))}
    state, metrics = jax.jit(task.train_step)(jax.jit(task.init)(jax.random.key(1), batch), batch, jax.random.key(2))
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["norm/grads"]))
    assert float(metrics["norm/grads"]) > 0
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(state.params))


@pytest.mark.slow  # trains for many steps
def test_training_lowers_the_reconstruction_error():
    config = sae_config("dataset=digits,code=topk,runlocal")
    conv_sae.validate_config(config)
    config.optim.lr = 3e-3
    task = conv_sae.make_task(config)
    batch = {"image": jax.random.uniform(jax.random.key(0), (8, 16, 16, 1)) ** 4}
    state = task.init(jax.random.key(1), batch)
    step = jax.jit(task.train_step)
    first = None
    for i in range(40):
        state, metrics = step(state, batch, jax.random.key(i))
        first = first if first is not None else float(metrics["loss/recon"])
    assert float(metrics["loss/recon"]) < 0.7 * first
    np.testing.assert_allclose(metrics["sparsity/code"], 4 / 16)


def test_inpainting_keeps_the_known_pixels():
    config = sae_config("dataset=natural_crops,corruption=mask,runlocal")
    conv_sae.validate_config(config)
    task = conv_sae.make_task(config)
    x = jax.random.uniform(jax.random.key(0), (4, 16, 16, 1))
    out = task.eval_step(task.init(jax.random.key(1), {"image": x}), {"image": x})
    known = np.asarray(out["corrupted"]) != 0
    assert 0.3 < known.mean() < 0.7
    np.testing.assert_array_equal(np.asarray(out["reconstruction"])[known], np.asarray(x)[known])
    assert not np.allclose(np.asarray(out["reconstruction"])[~known], 0)


def test_super_resolution_corruption_keeps_the_size_and_block_constant_images():
    small = jax.random.uniform(jax.random.key(0), (2, 8, 6, 3))
    blocky = jnp.repeat(jnp.repeat(small, 2, axis=1), 2, axis=2)        # 16 x 12, constant on 2 x 2 blocks
    np.testing.assert_allclose(conv_sae.down_up(blocky, 2, "nearest"), blocky, rtol=1e-6)
    x = jax.random.uniform(jax.random.key(1), (2, 16, 12, 3))
    for upsample in conv_sae.UPSAMPLINGS:
        degraded = conv_sae.down_up(x, 2, upsample)
        assert degraded.shape == x.shape and float(jnp.abs(degraded - x).mean()) > 0.1
    # Box means of each 2 x 2 block survive nearest upsampling: the image mean is kept.
    np.testing.assert_allclose(conv_sae.down_up(x, 2, "nearest").mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-5)


def test_bicubic_upsampling_reproduces_a_ramp_away_from_the_borders():
    i = np.arange(32.0)
    ramp = jnp.asarray(0.1 + 0.02 * i[:, None] + 0.005 * i[None, :], jnp.float32)[None, :, :, None]
    degraded = np.asarray(conv_sae.down_up(ramp, 2, "bicubic"))
    # The box means are the ramp at the block centres; Keys' cubic reproduces linear functions
    # wherever all four taps lie inside the small image (output pixels 3 … 28).
    np.testing.assert_allclose(degraded[:, 3:-3, 3:-3], np.asarray(ramp)[:, 3:-3, 3:-3], atol=1e-6)
    assert np.abs(degraded - np.asarray(ramp)).max() > 1e-3                 # the borders are not exact


@pytest.mark.parametrize("shape,factor,upsample,match", [
    ((1, 7, 8, 1), 2, "bicubic", "dividing the image size 7x8"),
    ((1, 8, 8, 1), 3, "bicubic", "factor=3 must be an integer >= 2"),
    ((1, 8, 8, 1), 1, "nearest", "factor=1 must be an integer >= 2"),
    ((1, 8, 8, 1), 2, "lanczos", "upsample='lanczos' is not one of"),
])
def test_super_resolution_corruption_rejects_bad_inputs(shape, factor, upsample, match):
    with pytest.raises(ValueError, match=match):
        conv_sae.down_up(jnp.zeros(shape), factor, upsample)


def test_super_resolution_task_restores_from_the_degraded_image():
    config = sae_config("dataset=natural_crops,corruption=sr,runlocal")
    conv_sae.validate_config(config)
    task = conv_sae.make_task(config)
    x = jax.random.uniform(jax.random.key(0), (4, 16, 16, 1))
    state = task.init(jax.random.key(1), {"image": x})
    out = task.eval_step(state, {"image": x})
    np.testing.assert_array_equal(np.asarray(out["corrupted"]), np.asarray(conv_sae.down_up(x, 2, "bicubic")))
    assert out["reconstruction"].shape == x.shape
    _, metrics = jax.jit(task.train_step)(state, {"image": x}, jax.random.key(2))
    assert np.isfinite(float(metrics["loss"])) and float(metrics["norm/grads"]) > 0


@pytest.mark.parametrize("update,match", [
    ({"model.sparsity": "l0:17"}, "k=17 is larger than the 16 entries"),
    ({"model.sparsity": "l0:0"}, "k=0 must be an integer >= 1"),
    ({"model.sparsity": "l1:-0.5"}, r"λ \(weight\)=-0.5 must be a finite number >= 0"),
    ({"model.sparsity": "l0inf:2"}, "use 'l0:<k>'"),
    ({"objective.corruption": "blur"}, "is not one of"),
    ({"objective.mask_rate": 1.0}, "must be in \\[0, 1\\)"),
    ({"objective.sr_factor": 3}, "sr_factor=3 must be >= 2 and divide config.data.image_size=16"),
    ({"objective.sr_factor": 1}, "sr_factor=1 must be >= 2"),
    ({"objective.sr_upsample": "lanczos"}, "config.objective.sr_upsample='lanczos' is not one of"),
    ({"data.image_size": 18}, "multiple of 2\\^len\\(config.model.widths\\) = 4"),
    ({"model.pool": "median"}, "config.model.pool='median' is not one of"),
    ({"model.dropout": 1.0}, "config.model.dropout=1.0 must be in \\[0, 1\\)"),
    ({"model.dropout": -0.1}, "config.model.dropout=-0.1 must be in \\[0, 1\\)"),
])
def test_bad_configs_are_clear_errors(update, match):
    config = sae_config("dataset=digits,runlocal")
    config.update_from_flattened_dict(update)
    with pytest.raises(ValueError, match=match):
        conv_sae.validate_config(config)


def test_patch_average_covers_every_pixel():
    image = np.random.default_rng(0).random((21, 26, 1)).astype(np.float32)
    np.testing.assert_allclose(patch_average(lambda p: p, image, 8, 5, batch=7), image, rtol=1e-6)
    np.testing.assert_allclose(patch_average(lambda p: 2 * p + 1, image, 8, 3), 2 * image + 1, rtol=1e-6)


