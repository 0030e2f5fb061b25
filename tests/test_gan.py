"""Sparse GAN: losses, one jitted step updates both players, sparsity per layer, eval samples, configs,
and main's runlocal run with the default digits classifier."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from sparse_ae.objectives import gan
from sparse_ae.train import validation
from sparse_ae.train.tasks import sparse_gan


def gan_config(arg: str):
    return load_config(f"configs/sparse_gan.py:{arg}")


def test_losses_at_known_points():
    zero = jnp.zeros(4)
    np.testing.assert_allclose(gan.discriminator_loss(zero, zero, "nonsaturating"), 2 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(gan.generator_loss(zero, "nonsaturating"), np.log(2), rtol=1e-6)
    np.testing.assert_allclose(gan.discriminator_loss(jnp.full(4, 2.0), jnp.full(4, -2.0), "hinge"), 0.0)
    np.testing.assert_allclose(gan.discriminator_loss(jnp.zeros(4), jnp.zeros(4), "hinge"), 2.0)
    np.testing.assert_allclose(gan.discriminator_loss(jnp.full(4, 3.0), jnp.full(4, 1.0), "wgan_gp"), -2.0)
    np.testing.assert_allclose(gan.generator_loss(jnp.full(4, 1.5), "hinge"), -1.5)
    # A linear critic D(x) = <w, x> has gradient w everywhere: penalty (‖w‖ − 1)².
    w = jax.random.normal(jax.random.key(0), (5, 5, 1))
    real, fake = jnp.ones((4, 5, 5, 1)), jnp.zeros((4, 5, 5, 1))
    penalty = gan.gradient_penalty(lambda x: jnp.sum(x * w, axis=(1, 2, 3)), real, fake, jax.random.key(1))
    np.testing.assert_allclose(penalty, (np.linalg.norm(w) - 1) ** 2, rtol=1e-5)
    with pytest.raises(ValueError, match="config.objective.loss='wgan' is not one of"):
        gan.generator_loss(zero, "wgan")


def _changed(a, b, only: str = "") -> list[bool]:
    """Per leaf (whose path contains ``only``): did it change?"""
    pairs = zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b))
    return [not np.array_equal(x, y) for (path, x), y in pairs if only in jax.tree_util.keystr(path)]


@pytest.mark.parametrize("arg", ["reg=ml,runlocal", pytest.param("reg=l1,loss=wgan_gp,runlocal", marks=pytest.mark.slow)])
def test_one_step_updates_both_players(arg):
    config = gan_config(arg)
    config.objective.disc_steps = min(config.objective.disc_steps, 2)
    sparse_gan.validate_config(config)
    task = sparse_gan.make_task(config)
    batch = {"image": jax.random.uniform(jax.random.key(0), (8, 16, 16, 1))}
    state = task.init(jax.random.key(1), batch)
    new_state, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(2))
    for player in sparse_gan.PLAYERS:  # (the critic's output bias has no WGAN gradient: check kernels)
        assert all(_changed(state.params[player], new_state.params[player], "kernel")), player
    assert all(_changed(state.extra, new_state.extra))  # BatchNorm running statistics
    assert int(new_state.step) == 1
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if "l1" in arg:
        assert float(metrics["loss/sparsity"]) > 0 and "loss/gp" in metrics
    else:  # ml: l0inf at both hidden layers, 25% of 8 and of 4 channels per needle
        np.testing.assert_allclose([metrics["sparsity/g1_needle_max"], metrics["sparsity/g2_needle_max"]],
                                   [0.25, 0.25])


def test_low_data_regime_is_a_config_argument():
    config = gan_config("fraction=0.1,runlocal")
    assert config.data.train_fraction == 0.1
    validation.validate_run(config)
    with pytest.raises(ValueError, match="config.data.train_fraction must be in"):
        validation.validate_run(gan_config("fraction=0,runlocal"))


def test_eval_samples_are_fixed_per_example():
    config = gan_config("reg=l0,runlocal")
    task = sparse_gan.make_task(config)
    images = jax.random.uniform(jax.random.key(0), (4, 16, 16, 1))
    state = task.init(jax.random.key(1), {"image": images})
    out = task.eval_step(state, {"image": images})
    again = task.eval_step(state, {"image": images[::-1]})
    np.testing.assert_array_equal(out["samples"], again["samples"][::-1])
    assert not np.allclose(out["samples"][0], out["samples"][1])
    assert out["samples"].shape == (4, 16, 16, 1) and out["code"].shape == (4, 8, 8, 4)
    # l0 keeps 25% of each example's 8·8·4 entries of the last hidden layer
    assert np.all(np.count_nonzero(np.asarray(out["code"]).reshape(4, -1), axis=1) <= 64)


@pytest.mark.parametrize("update,match", [
    ({"model.sparsity": ("none", "l0inf:9")}, r"k=9 is larger than the 4 channels per needle"),
    ({"model.sparsity": ("none",)}, "has 1 entries"),
    ({"model.sparsity": ("l1:-1", "none")}, r"λ \(weight\)=-1.0 must be"),
    ({"data.image_size": 24}, "must be 4 · 2\\^n"),
    ({"objective.loss": "wgan"}, "is not one of"),
    ({"optim_disc.lr": 0.0}, "config.optim_disc.lr=0.0 must be > 0"),
])
def test_bad_configs_are_clear_errors(update, match):
    config = gan_config("runlocal")
    config.update_from_flattened_dict(update)
    with pytest.raises(ValueError, match=match):
        sparse_gan.validate_config(config)




def test_main_runlocal_out_of_the_box(run_python, tmp_path):
    """No classifier folder given: the Fréchet evaluator trains the default one into the cache."""
    workdir, cache = tmp_path / "run", tmp_path / "cache"
    result = run_python(["-m", "sparse_ae.main", "--config=configs/sparse_gan.py:runlocal", f"--workdir={workdir}"],
                        env={"SPARSE_AE_CACHE": str(cache)}, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert np.isfinite(json.loads((workdir / "metrics.json").read_text())["train/frechet_digits"])
    assert "training the digits classifier for 16px" in result.stderr
    assert [p.name for p in (cache / "digits_classifier").iterdir()] == ["16px-f64-s2000-seed0"]


@pytest.mark.slow  # a process that trains 20 steps and draws two figures
def test_figures_option_writes_the_two_pngs_under_out_only(run_python, tmp_path):
    from PIL import Image  # pylint: disable=import-outside-toplevel

    run_python(["-m", "benchmarks.sparse_gan", "--figures", "--disc=sngan", "--figure_reg=ml", "--figure_steps=20",
                "--out", str(tmp_path)], timeout=600, check=True)
    names = {"sparse_gan_sparsity_map.png", "sparse_gan_atoms.png"}
    assert {p.name for p in tmp_path.iterdir()} == names
    for name in names:
        assert min(Image.open(tmp_path / name).size) >= 500   # large enough to read
