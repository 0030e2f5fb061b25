"""DCEA: fast strided convolutions, the unrolled encoder, shift averaging, tasks and evaluators."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from conftest import load_config
from sparse_ae.data import binomial_spikes
from sparse_ae.evaluators import dictionary_recovery, poisson_denoising
from sparse_ae.models import dcea
from sparse_ae.sparse_coding import dictionaries, families, operators, prox, solvers
from sparse_ae.train.tasks import dcea as dcea_task


CONV_CASES = [  # (signal shape (B, H, W, C), kernel (kh, kw, M, C), stride); the paper's in the fast loop
    ((2, 21, 28, 1), (11, 11, 5, 1), 7),    # the paper's shape: k > s, one channel
    pytest.param((2, 12, 12, 2), (3, 3, 4, 2), 2, marks=pytest.mark.slow),   # several channels
    pytest.param((3, 1, 40, 1), (1, 9, 3, 1), 1, marks=pytest.mark.slow),    # 1-D signals, H = 1
]


@pytest.mark.parametrize("boundary", ["zero", "circular"])
@pytest.mark.parametrize("signal_shape,kernel_shape,stride", CONV_CASES)
def test_patch_convolutions_equal_core_operators(signal_shape, kernel_shape, stride, boundary):
    keys = jax.random.split(jax.random.key(0), 3)
    kernel = jax.random.normal(keys[0], kernel_shape)
    x = jax.random.normal(keys[1], signal_shape)
    z = jax.random.normal(keys[2], operators.patch_code_shape(signal_shape, kernel_shape, stride))
    np.testing.assert_allclose(operators.patch_analysis(kernel, x, stride, boundary),
                               operators.conv_analysis(kernel, x, stride, boundary), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(operators.patch_synthesis(kernel, z, stride, boundary),
                               operators.conv_synthesis(kernel, z, stride, boundary), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("signal_shape,kernel_shape,stride", [
    ((2, 25, 32, 1), (11, 11, 5, 1), 7),    # k > s; (H − k) % s = 0 and ≠ 0
    pytest.param((2, 13, 11, 2), (3, 3, 4, 2), 2, marks=pytest.mark.slow)])   # k < s·⌈k/s⌉, several channels
def test_valid_convolutions_are_torch_conv2d_and_adjoint(signal_shape, kernel_shape, stride):
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(0), 3)
        kernel = jax.random.normal(keys[0], kernel_shape, jnp.float64)
        x = jax.random.normal(keys[1], signal_shape, jnp.float64)
        shape = operators.patch_code_shape(signal_shape, kernel_shape, stride, "valid")
        z = jax.random.normal(keys[2], shape, jnp.float64)
        # Analysis = a strided cross-correlation with no padding (torch's conv2d).
        rhs = jnp.transpose(kernel, (2, 3, 0, 1))  # (M, C, kh, kw)
        expected = jax.lax.conv_general_dilated(jnp.transpose(x, (0, 3, 1, 2)), rhs, (stride, stride), "VALID")
        for fast in (True, False):
            op = dcea.conv_pair(kernel, stride, "valid", fast)
            np.testing.assert_allclose(op.adjoint(x), jnp.transpose(expected, (0, 2, 3, 1)), rtol=1e-10, atol=1e-10)
            synthesis = op.forward(z)
            assert synthesis.shape[1:3] == ((shape[1] - 1) * stride + kernel_shape[0], (shape[2] - 1) * stride
                                            + kernel_shape[1])
            y = jax.random.normal(keys[1], synthesis.shape, jnp.float64)
            np.testing.assert_allclose(jnp.vdot(synthesis, y), jnp.vdot(z, op.adjoint(y)), rtol=1e-10)


def _small_config(**overrides) -> dcea.DCEAConfig:
    fields = dict(kernel_size=5, num_filters=4, stride=2, num_iters=6, step=0.05, threshold=0.02,
                  init_lipschitz_margin=0.0, learn_bias=False)
    return dcea.DCEAConfig(**{**fields, **overrides})


def _observations(family: str, trials: int, shape, key) -> jax.Array:
    rate = jax.random.uniform(key, shape, minval=0.1, maxval=0.9)
    if family == "gaussian":
        return rate
    if family == "binomial":
        return jax.random.binomial(key, trials, rate).astype(jnp.float32)
    return jax.random.poisson(key, 3 * rate).astype(jnp.float32)


@pytest.mark.parametrize("family,trials,accelerated,fast", [
    ("gaussian", 1, True, True), pytest.param("binomial", 5, False, True, marks=pytest.mark.slow),
    ("poisson", 1, True, False), pytest.param("poisson", 1, False, True, marks=pytest.mark.slow)])
def test_tied_encoder_equals_core_proximal_gradient(family, trials, accelerated, fast):
    cfg = _small_config(family=family, trials=trials, accelerated=accelerated, fast=fast, mu=0.1, nonneg=False)
    model = dcea.DCEA(cfg, rngs=nnx.Rngs(1))
    y = _observations(family, trials, (2, 12, 12, 1), jax.random.key(2))
    code = model.encode(y)
    fam = families.get_family(family, trials=trials)
    op = operators.conv_operator(model.kernel[...], stride=2, boundary=cfg.boundary)
    expected = solvers.proximal_gradient(
            lambda z: op.adjoint(fam.data_grad(y, op.forward(z) + cfg.mu)),
            lambda v, step: prox.soft_threshold(v, step * cfg.threshold / cfg.step, nonneg=False),
            jnp.zeros_like(code), cfg.step, cfg.num_iters, accelerated=accelerated)
    assert float(jnp.abs(code).max()) > 0
    np.testing.assert_allclose(code, expected, rtol=1e-4, atol=1e-5)


def test_reweighted_encoder_is_a_warm_started_weighted_solve():
    cfg = _small_config(family="binomial", trials=5, accelerated=True, nonneg=True, threshold=0.05,
                        reweight_passes=1, reweight_eps=0.3)
    model = dcea.DCEA(cfg, rngs=nnx.Rngs(1))
    y = _observations("binomial", 5, (2, 12, 12, 1), jax.random.key(2))
    fam = families.get_family("binomial", trials=5)
    op = operators.conv_operator(model.kernel[...], stride=2, boundary=cfg.boundary)

    def solve(z0, threshold):
        return solvers.proximal_gradient(
                lambda z: op.adjoint(fam.data_grad(y, op.forward(z))),
                lambda v, step: prox.soft_threshold(v, threshold, nonneg=True), z0, cfg.step, cfg.num_iters)

    first = solve(jnp.zeros(operators.patch_code_shape(y.shape, model.kernel.shape, 2)), cfg.threshold)
    weights = cfg.reweight_eps / (jnp.abs(first) + cfg.reweight_eps)
    expected = solve(first, cfg.threshold * weights)
    code = model.encode(y)
    np.testing.assert_allclose(code, expected, rtol=1e-4, atol=1e-5)
    # Large entries are thresholded less than by the plain ℓ1 solve: the code grows on the support.
    support = first > 0
    assert int(support.sum()) > 0 and float(jnp.sum(code * support)) > float(jnp.sum(first))


def test_untied_model_starts_equal_to_tied_and_counts_parameters():
    tied_cfg = dcea.DCEAConfig(init_lipschitz_margin=0.0)  # the paper's Poisson configuration
    tied = dcea.DCEA(tied_cfg, rngs=nnx.Rngs(0))
    untied = dcea.DCEA(dataclasses.replace(tied_cfg, tied=False), rngs=nnx.Rngs(0))
    assert optax.tree_utils.tree_size(nnx.state(tied, nnx.Param)) == 169 * 121 + 169            # ≈ 20K
    assert optax.tree_utils.tree_size(nnx.state(untied, nnx.Param)) == 3 * 169 * 121 + 169      # ≈ 61K
    small = _small_config(family="poisson")
    y = _observations("poisson", 1, (1, 10, 10, 1), jax.random.key(0))
    out_tied = dcea.DCEA(small, rngs=nnx.Rngs(3))(y)
    out_untied = dcea.DCEA(dataclasses.replace(small, tied=False), rngs=nnx.Rngs(3))(y)
    np.testing.assert_allclose(out_tied.natural, out_untied.natural, rtol=1e-5, atol=1e-6)


def _authors_canvas(image: np.ndarray, k: int, s: int, row_shift: int, col_shift: int) -> np.ndarray:
    """One shifted canvas as the authors' ``split_image`` / ``calc_pad_sizes`` build it."""
    def pads(n):
        after = 0 if (n + s - k) % s == 0 else s - (n + s - k) % s
        return s, after + s
    (top, bottom), (left, right) = pads(image.shape[0]), pads(image.shape[1])
    return np.pad(image, ((top - row_shift, bottom + row_shift), (left - col_shift, right + col_shift)),
                  mode="reflect")


def test_valid_layout_is_the_authors_padding():
    layout = dcea.canvas_layout(128, 128, 11, 7, shift_average=True)
    assert layout.canvas_hw == (144, 144) and layout.boundary == "valid" and len(layout.offsets) == 49
    assert sorted({r for r, _ in layout.offsets}) == list(range(1, 8))
    image = np.random.default_rng(0).uniform(size=(30, 23)).astype(np.float32)
    layout = dcea.canvas_layout(30, 23, 5, 3, shift_average=True)
    canvases = np.asarray(dcea.make_canvases(jnp.asarray(image)[None, :, :, None], layout.canvas_hw,
                                             layout.offsets))[..., 0]
    for index, (row_shift, col_shift) in enumerate((r, c) for r in range(3) for c in range(3)):
        np.testing.assert_array_equal(canvases[index], _authors_canvas(image, 5, 3, row_shift, col_shift))
    assert [(n - 5) % 3 for n in layout.canvas_hw] == [0, 0]  # every valid code reads only the canvas


def test_rounded_layout_and_shift_mean():
    (hp, wp), offsets, boundary = dcea.canvas_layout(128, 128, 11, 7, shift_average=True, layout="rounded")
    assert (hp, wp) == (140, 140) and len(offsets) == 49 and boundary == "zero"
    assert all(r + 128 <= hp and c + 128 <= wp for r, c in offsets)
    y = jax.random.uniform(jax.random.key(0), (2, 30, 23, 1))
    for layout in dcea.LAYOUTS:
        canvas_hw, offsets, _ = dcea.canvas_layout(30, 23, 5, 3, shift_average=True, layout=layout)
        canvases = dcea.make_canvases(y, canvas_hw, offsets)
        assert canvases.shape == (2 * 9, *canvas_hw, 1)
        np.testing.assert_allclose(dcea.average_canvases(canvases, (30, 23), offsets), y, rtol=1e-6)
        r, c = offsets[4]  # each canvas is the reflect-padded image at its offset
        np.testing.assert_allclose(canvases[4, r:r + 30, c:c + 23], y[0], rtol=1e-6)


@pytest.mark.parametrize("layout", dcea.LAYOUTS)
@pytest.mark.parametrize("fast", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_shift_averaged_model_is_the_mean_of_its_canvases(layout, fast):
    cfg = _small_config(family="poisson", stride=3, shift_average=True, layout=layout, fast=fast)
    counts = _observations("poisson", 1, (1, 12, 12, 1), jax.random.key(1))
    model = dcea.DCEA(cfg, rngs=nnx.Rngs(0))
    out = model(counts)
    canvas_hw, offsets, boundary = dcea.canvas_layout(12, 12, 5, 3, True, layout)
    code = model.encode(dcea.make_canvases(counts, canvas_hw, offsets), boundary)
    np.testing.assert_array_equal(code, out.code)
    assert float(jnp.abs(code).max()) > 0
    per_canvas = model.decode(code, boundary)
    manual = np.mean([per_canvas[i, r:r + 12, c:c + 12] for i, (r, c) in enumerate(offsets)], axis=0)
    np.testing.assert_allclose(out.natural[0], manual, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form,expected", [("authors", lambda r, a: a * np.expm1(r)),
                                           ("unit_slope", lambda r, a: a * np.expm1(r / a))])
def test_residual_elu_forms(form, expected):
    model = dcea.DCEA(_small_config(family="poisson", residual_elu=4.0, elu_form=form), rngs=nnx.Rngs(0))
    natural = jnp.linspace(-1.0, 2.5, 50).reshape(1, 5, 10, 1)
    y = jnp.full_like(natural, 2.0)
    r = np.asarray(y - jnp.exp(natural), np.float64)
    np.testing.assert_allclose(model.residual(y, natural), np.where(r > 0, r, expected(r, 4.0)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family,trials,bad,match", [
    ("poisson", 1, -1.0, ">= 0"), ("poisson", 1, 1.5, "integer"),
    ("binomial", 4, 5.0, "trials|4"), ("binomial", 4, 0.5, "integer")])
def test_bad_counts_raise_clear_errors(family, trials, bad, match):
    model = dcea.DCEA(_small_config(family=family, trials=trials), rngs=nnx.Rngs(0))
    y = jnp.ones((1, 8, 8, 1)).at[0, 3, 3, 0].set(bad)
    with pytest.raises(ValueError, match=match):
        model(y)


@pytest.mark.parametrize("shape", [(1, 4, 12, 1), (1, 12, 3, 1), (1, 12, 12, 2), (12, 12, 1)])
def test_input_smaller_than_the_kernel_or_of_wrong_shape_is_a_clear_error(shape):
    model = dcea.DCEA(_small_config(family="poisson"), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="kernel_size=5.*got shape"):
        model(jnp.ones(shape))


@pytest.mark.parametrize("arg, shifts, batch, init_norm", [("", False, 4, "linear"),
                                                           ("authors_recipe", True, 1, "authors")])
def test_poisson_config_recipes(arg, shifts, batch, init_norm):
    """The default trains one shift per step from this project's scale; ``authors_recipe`` as the
    authors (49 shifts, batch 1, their scale); both with their flips; evaluation averages 49 shifts."""
    config = load_config(f"configs/dcea_poisson_denoise.py:untied,{arg}")
    assert (config.model.shift_average, config.data.batch_size, config.model.init_norm) == (shifts, batch, init_norm)
    assert config.model.eval_shift_average and config.data.random_flip and config.data.random_vflip


@pytest.mark.parametrize("steps, decay_every", [(0, 10_000), (3200, 200)])
def test_authors_recipe_has_their_steplr(steps, decay_every):
    """400 epochs of Train400 at batch 1 with lr × 0.8 every 25 epochs (their StepLR), no warm-up;
    a shorter run keeps the schedule's shape."""
    config = load_config(f"configs/dcea_poisson_denoise.py:untied,authors_recipe,steps={steps}")
    assert config.train.num_steps == (steps or 160_000)
    assert (config.optim.schedule, config.optim.decay_every, config.optim.decay_factor) == ("step", decay_every, 0.8)
    assert config.optim.warmup_steps == 0 and config.optim.eps == 1e-3


def test_config_validation_names_fields():
    with pytest.raises(ValueError, match="config.model.stride"):
        dcea.DCEAConfig(one_d=True, stride=2).validate()
    with pytest.raises(ValueError, match="config.model.boundary"):
        dcea.DCEAConfig(boundary="reflect").validate()
    with pytest.raises(ValueError, match="config.model.layout"):
        dcea.DCEAConfig(layout="same").validate()
    with pytest.raises(ValueError, match="config.model.elu_form"):
        dcea.DCEAConfig(elu_form="selu").validate()
    with pytest.raises(ValueError, match="config.model.init_norm"):
        dcea.DCEAConfig(init_norm="xavier").validate()
    config = load_config("configs/dcea_poisson_denoise.py:runlocal")
    config.model.family = "binomial"
    with pytest.raises(ValueError, match="config.model.family"):
        dcea_task.validate_config(config)
    for peak in (0.0, -1.0):
        config = load_config(f"configs/dcea_poisson_denoise.py:runlocal,peak={peak}")
        with pytest.raises(ValueError, match="config.model.peak"):
            dcea_task.validate_config(config)


def test_simulator_counts_and_templates():
    spikes = binomial_spikes.SpikesConfig(trials=7)
    h = binomial_spikes.templates(spikes)
    np.testing.assert_allclose(np.linalg.norm(h, axis=1), 1.0, rtol=1e-5)
    example = binomial_spikes.simulate(spikes, 200, np.random.default_rng(0))
    counts = example["counts"]
    assert counts.shape == (1, 200, 1) and example["code"].shape == (1, 200, 3)
    assert np.all(counts == np.round(counts)) and counts.min() >= 0 and counts.max() <= 7
    np.testing.assert_allclose(example["image"], counts / 7)
    assert np.count_nonzero(example["code"]) == 3 * spikes.events_per_template
    with pytest.raises(ValueError, match="template_length"):
        binomial_spikes.validate_spikes(spikes, 20)


def _train(config, batches, steps: int):
    task = dcea_task.make_task(config)
    key = jax.random.key(0)
    state = jax.jit(task.init)(key, batches(0))
    step = jax.jit(task.train_step)
    for i in range(steps):
        state, _ = step(state, batches(i), jax.random.fold_in(key, i))
    return task, state


def test_residual_windows_take_each_examples_largest_energy_window():
    residual = np.random.default_rng(0).normal(size=(3, 9, 11, 2)).astype(np.float32)
    residual[1, 4:7, 2:6] += 5.0
    windows = dictionaries.residual_windows(jnp.asarray(residual), (3, 4))
    for b in range(3):
        energy = [[np.sum(residual[b, i:i + 3, j:j + 4] ** 2) for j in range(8)] for i in range(7)]
        i, j = np.unravel_index(np.argmax(energy), (7, 8))
        np.testing.assert_allclose(windows[b], residual[b, i:i + 3, j:j + 4], rtol=1e-6)
    np.testing.assert_allclose(windows[1], residual[1, 4:7, 2:6], rtol=1e-6)


def test_unused_and_duplicate_atoms_are_restarted():
    atoms = np.random.default_rng(0).normal(size=(4, 12))
    atoms[3] = np.concatenate([[0.0, 0.0], atoms[1, :-2]])          # a delayed copy of atom 1
    kernel = jnp.asarray(atoms.T[None, :, :, None], jnp.float32)
    coherence = dictionaries.shift_coherence(kernel)
    np.testing.assert_allclose(np.diag(coherence), 1.0, rtol=1e-5)
    assert float(coherence[1, 3]) > 0.9 and float(coherence[0, 2]) < 0.9
    usage = jnp.zeros((1, 1, 30, 4)).at[0, 0, :3, 1].set(1.0).at[0, 0, :2, 3].set(1.0).at[0, 0, 9, 0].set(1.0)
    np.testing.assert_array_equal(dictionaries.atoms_to_restart(kernel, usage, 0.9), [False, False, True, True])
    usage = usage.at[0, 0, 5:9, 3].set(1.0)                            # the copy is now the busier one
    np.testing.assert_array_equal(dictionaries.atoms_to_restart(kernel, usage, 0.9), [False, True, True, False])


def test_dead_atoms_restart_from_residual_windows():
    kernel = jax.random.normal(jax.random.key(0), (1, 5, 3, 1))
    code = jnp.zeros((2, 1, 20, 3)).at[0, 0, 4, 0].set(1.0)          # atoms 1 and 2 are dead
    residual = jnp.zeros((2, 1, 20, 1)).at[0, 0, 10:15, 0].set(jnp.arange(1.0, 6.0))
    residual = residual.at[1, 0, 2:7, 0].set(-1.0)
    for names in (("kernel",), ("encoder", "loop", "decoder")):
        params = {name: kernel for name in names} | {"bias": jnp.ones(3)}
        new, count = dcea.restart_atoms(params, code, residual, coherence=1.1)
        assert int(count) == 2 and set(new) == set(params)
        np.testing.assert_array_equal(new["bias"], params["bias"])
        for name in names:
            np.testing.assert_array_equal(new[name][..., 0, :], kernel[..., 0, :])
            norms = jnp.linalg.norm(kernel[0, :, :, 0], axis=0)
            for atom, window in ((1, jnp.arange(1.0, 6.0)), (2, -jnp.ones(5))):
                expected = window / jnp.linalg.norm(window) * norms[atom]
                np.testing.assert_allclose(new[name][0, :, atom, 0], expected, rtol=1e-5)


@pytest.mark.slow  # a variant: the untied model is checked in the fast suite
def test_untied_binomial_ecdl_learns_three_kernels_from_one_start(tmp_path):
    """``:untied`` is DCEA-UC: encoder, in-loop and decoder kernels all start from the saved
    dictionary, and training moves them apart (3 steps: the first has lr 0, the warmup's start)."""
    assert load_config("configs/dcea_binomial_ecdl.py").model.tied
    config = load_config("configs/dcea_binomial_ecdl.py:untied,runlocal")
    true = binomial_spikes.templates(binomial_spikes.SpikesConfig())
    np.save(tmp_path / "start.npy", true.T[None, :, :, None])
    config.model.init_dictionary = str(tmp_path / "start.npy")
    dcea_task.validate_config(config)
    rng = np.random.default_rng(0)
    examples = [binomial_spikes.simulate(binomial_spikes.SpikesConfig(), 500, rng) for _ in range(4)]
    batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    task = dcea_task.make_task(config)
    state = task.init(jax.random.key(0), batch)
    assert "kernel" not in state.params
    for name in ("encoder", "loop", "decoder"):
        np.testing.assert_allclose(state.params[name], true.T[None, :, :, None], rtol=1e-6)
    step = jax.jit(task.train_step)
    for i in range(3):
        state, metrics = step(state, batch, jax.random.key(i))
    assert np.isfinite(float(metrics["loss"]))
    kernels = [np.asarray(state.params[name]) for name in ("encoder", "loop", "decoder")]
    assert all(np.all(np.isfinite(k)) for k in kernels)
    assert not np.allclose(kernels[0], kernels[2]) and not np.allclose(kernels[1], kernels[2])


@pytest.mark.slow  # trains for many steps
def test_short_ecdl_run_lowers_dictionary_error():
    config = load_config("configs/dcea_binomial_ecdl.py")
    config.model.update(num_iters=40)
    config.optim.update(lr=5e-3, warmup_steps=0)
    config.train.num_steps = 40
    spikes = binomial_spikes.SpikesConfig()
    true = binomial_spikes.templates(spikes)
    noise = np.random.default_rng(7).standard_normal(true.shape) / np.sqrt(true.shape[1])
    init = (true + 0.9 * noise) / np.linalg.norm(true + 0.9 * noise, axis=1, keepdims=True)
    rng = np.random.default_rng(0)

    def batches(_):
        examples = [binomial_spikes.simulate(spikes, 500, rng) for _ in range(8)]
        return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

    task = dcea_task.make_task(config)
    key = jax.random.key(0)
    state = task.init(key, batches(0))
    state = state.replace(params={**state.params, "kernel": jnp.asarray(init.T[None, :, :, None])})
    step = jax.jit(task.train_step)
    for i in range(40):
        state, metrics = step(state, batches(i), jax.random.fold_in(key, i))
    before, _ = dictionary_recovery.template_errors(true, init)
    after, _ = dictionary_recovery.template_errors(true, np.asarray(dcea.decoder_kernel(state.params))[0, :, :, 0].T)
    assert np.isfinite(float(metrics["loss"]))
    assert after.mean() < before.mean() - 0.05, (before, after)


@pytest.mark.slow  # trains for many steps
def test_short_denoising_run_beats_noisy_input():
    from sparse_ae.data import natural_crops
    config = load_config("configs/dcea_poisson_denoise.py:runlocal,untied")
    config.model.update(num_filters=16, kernel_size=7, stride=3, num_iters=5, noise_draws=2, shift_average=False)
    config.data.image_size = 32
    config.optim.update(lr=3e-3, warmup_steps=0)
    photo = natural_crops.load_photo("astronaut").mean(axis=-1, keepdims=True)
    rng = np.random.default_rng(0)

    def crops(_):
        corners = rng.integers(0, 400, size=(4, 2))
        return {"image": np.stack([photo[a:a + 32, b:b + 32] for a, b in corners]).astype(np.float32)}

    task, state = _train(config, crops, steps=60)
    test = {"image": np.stack([photo[450:482, 200:232], photo[100:132, 300:332]]).astype(np.float32)}
    out = jax.jit(task.eval_step)(state, test)
    denoised = poisson_denoising.peak_psnr(out["target"], out["reconstruction"])
    noisy = poisson_denoising.peak_psnr(out["target"], out["noisy"])
    assert np.all(denoised > noisy + 3.0), (denoised, noisy)

