"""SC-VAE model, bottlenecks, losses, task and its evaluators on tiny models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from sparse_ae.data import composites
from sparse_ae.evaluators import code_edits, code_sparsity, patch_clusters, segmentation
from sparse_ae.models import sc_vae, vqgan_blocks
from sparse_ae.objectives import sc_vae as objectives
from sparse_ae.sparse_coding import dictionaries
from sparse_ae.train.tasks import sc_vae as task_lib
from sparse_ae.utils import sections

TINY = dict(channels=4, channel_mult=(1, 2), num_res_blocks=1, latent_dim=16, num_atoms=32, lista_steps=3)


def tiny_model_section(bottleneck: str, **overrides) -> ml_collections.ConfigDict:
    return sections.complete({"bottleneck": bottleneck, **TINY, **overrides}, sc_vae.ModelConfig, "config.model")


def tiny_model(bottleneck: str, num_down: int = 2, size: int = 16, **overrides) -> sc_vae.SCVAE:
    m = tiny_model_section(bottleneck, num_down=num_down, **overrides)
    return sc_vae.SCVAE(m, size, 3, rngs=nnx.Rngs(0))


def tiny_config(bottleneck: str = "lista", **model) -> ml_collections.ConfigDict:
    from sparse_ae import config as config_lib  # pylint: disable=import-outside-toplevel

    config = config_lib.base_config()
    config.task = "sc_vae"
    config.data.update(name="composites", image_size=16, channels=3, batch_size=4, num_eval_examples=6)
    config.model = tiny_model_section(bottleneck, **model)
    config.train.num_steps = 2
    config.eval.num_images = 4
    config.segmentation = segmentation.default_config()
    config.code_edits = code_edits.default_config(num_components=2, num_values=3, interpolation_steps=3)
    config.patch_clusters = patch_clusters.default_config(num_clusters=3, clusters_shown=2, patches_shown=3)
    return config


# ------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("num_down", [0, 1, 2, 3, 4])
def test_encoder_decoder_shapes_for_every_depth(num_down):
    size = 16
    kw = dict(channels=4, channel_mult=(1, 2, 2), num_res_blocks=1, num_down=num_down,
              attn_resolutions=(size // 2,), image_size=size)

    def run(x):  # traced only (jax.eval_shape): shapes without compiling
        encoder = vqgan_blocks.Encoder(3, 8, **kw, rngs=nnx.Rngs(0))
        latent = encoder(x)
        return latent, vqgan_blocks.Decoder(3, 8, **kw, rngs=nnx.Rngs(0))(latent)

    latent, recon = jax.eval_shape(run, jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32))
    assert latent.shape == (2, size // 2 ** num_down, size // 2 ** num_down, 8)
    assert recon.shape == (2, size, size, 3)


@pytest.mark.parametrize("bottleneck", sc_vae.BOTTLENECKS)
def test_model_output_shapes(bottleneck):
    out = jax.eval_shape(lambda x: tiny_model(bottleneck)(x), jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32))
    assert out.reconstruction.shape == (2, 16, 16, 3)
    assert out.latent.shape == (2, 4, 4, 16)
    assert out.bottleneck.decoder_input.shape == (2, 4, 4, 16)
    assert out.bottleneck.code.shape == (2, 4, 4, 32 if bottleneck in sc_vae.SPARSE_BOTTLENECKS else 16)
    assert (out.bottleneck.indices is not None) == (bottleneck == "vq")


# ------------------------------------------------------------------------------ bottlenecks
def numpy_ista(D, y, lam, steps):
    L = np.linalg.norm(D, 2) ** 2
    z = np.zeros((*y.shape[:-1], D.shape[1]))
    for _ in range(steps):
        v = z - (z @ D.T - y) @ D / L
        z = np.sign(v) * np.maximum(np.abs(v) - lam / L, 0)
    return z


@pytest.mark.parametrize("dictionary", sc_vae.DICTIONARIES)
def test_lista_at_init_equals_ista(dictionary):
    bottleneck = sc_vae.ListaBottleneck(16, 32, num_steps=7, alpha=0.3, dictionary=dictionary, learn_alpha=True)
    latent = jax.random.normal(jax.random.key(1), (2, 3, 3, 16))
    out = bottleneck(latent)
    D = np.asarray(dictionaries.overcomplete_dct(4, 32), np.float64)
    expected = numpy_ista(D, np.asarray(latent, np.float64), 0.3, 7)
    assert np.mean(expected != 0) > 0.05  # the comparison is not between two all-zero codes
    np.testing.assert_allclose(out.code, expected, atol=2e-5)
    np.testing.assert_allclose(out.decoder_input, expected @ D.T, atol=2e-5)
    assert float(bottleneck.alpha()) == pytest.approx(0.3)


def numpy_authors_ista(D, e, alpha, steps):
    """The authors' code's bottleneck from its formulas: c = ‖D‖₂², z = soft(Dᵀe, α/c), then ``steps`` times
    z = soft(z (I − DᵀD/c) + Dᵀe/c, α/c)."""
    c = np.linalg.norm(D, 2) ** 2
    shrink = lambda v: np.sign(v) * np.maximum(np.abs(v) - alpha / c, 0)  # noqa: E731
    y = e @ D
    z = shrink(y)
    for _ in range(steps):
        z = shrink(z @ (np.eye(D.shape[1]) - D.T @ D / c) + y / c)
    return z


@pytest.mark.parametrize("steps", [0, 5])
def test_ista_bottleneck_is_the_authors_iteration(steps):
    bottleneck = sc_vae.IstaBottleneck(16, 32, steps, alpha=1.5, dictionary="learned", dct_atoms="ksvd")
    latent = jax.random.normal(jax.random.key(2), (2, 3, 3, 16))
    out = bottleneck(latent)
    D = np.asarray(dictionaries.ksvd_dct(4, 32), np.float64)
    expected = numpy_authors_ista(D, np.asarray(latent, np.float64), 1.5, steps)
    assert 0.05 < np.mean(expected != 0) < 0.95  # neither all-zero nor dense codes
    np.testing.assert_allclose(out.code, expected, atol=5e-5)
    np.testing.assert_allclose(out.decoder_input, expected @ D.T, atol=5e-5)
    np.testing.assert_allclose(bottleneck.step[...], np.linalg.norm(D, 2) ** 2, rtol=1e-5)
    # the dictionary and the step constant c are trained (the threshold α/c moves with c)
    grads = nnx.to_pure_dict(nnx.grad(lambda b: jnp.sum(jnp.square(b(latent).decoder_input - latent)))(bottleneck))
    assert set(grads) == {"dictionary", "step"}
    assert all(np.all(np.isfinite(g)) and np.any(g != 0) for g in grads.values())


def test_authors_code_loss_against_numpy():
    rng = np.random.default_rng(1)
    x, x_hat = rng.random((2, 8, 8, 3)), rng.random((2, 8, 8, 3))
    latent, synth = rng.standard_normal((2, 2, 2, 4)), rng.standard_normal((2, 2, 2, 4))
    terms = objectives.authors_code_terms(x, x_hat, latent, synth, latent_weight=1.0)
    assert set(terms) == {"loss/recon", "loss/latent"}  # no ‖Z‖₁ term
    # their weight 1/(h·w·n) on every element of (E − DZ)², then the mean over the batch's elements
    np.testing.assert_allclose(terms["loss/latent"], np.mean((latent - synth) ** 2 / (2 * 2 * 4)), rtol=1e-6)
    np.testing.assert_allclose(terms["loss/recon"], np.mean((x_hat - x) ** 2), rtol=1e-6)


@pytest.mark.slow  # a variant: the DCT dictionary is the default checked in the fast suite
def test_learned_dictionary_is_normalised_and_trainable():
    model = tiny_model("lista", dictionary="learned")
    model.bottleneck.dictionary[...] = 3.0 * model.bottleneck.dictionary[...]
    np.testing.assert_allclose(jnp.linalg.norm(model.bottleneck.atoms(), axis=0), 1.0, rtol=1e-5)
    learned = nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[1])
    fixed = nnx.to_pure_dict(nnx.split(tiny_model("lista"), nnx.Param, ...)[1])
    assert "dictionary" in learned["bottleneck"] and "dictionary" not in fixed["bottleneck"]


def test_vector_quantizer_nearest_codeword_and_straight_through():
    vq = sc_vae.VectorQuantizer(4, 6, ema=False, decay=0.99, rngs=nnx.Rngs(0))
    codebook = np.asarray(jax.random.normal(jax.random.key(0), (6, 4)))
    vq.codebook[...] = jnp.asarray(codebook)
    latent = jax.random.normal(jax.random.key(1), (2, 3, 3, 4))
    out = vq(latent)
    flat = np.asarray(latent).reshape(-1, 4)
    nearest = np.argmin(((flat[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(out.indices.reshape(-1), nearest)
    np.testing.assert_allclose(out.code.reshape(-1, 4), codebook[nearest], rtol=1e-6)
    grad = jax.grad(lambda e: jnp.sum(vq(e).decoder_input * 2.0))(latent)
    np.testing.assert_allclose(grad, 2.0)  # straight-through: identity Jacobian


def test_vq_ema_update_against_numpy():
    vq = sc_vae.VectorQuantizer(3, 4, ema=True, decay=0.9, rngs=nnx.Rngs(0))
    latent = jax.random.normal(jax.random.key(2), (5, 3))
    vq.init_from_latents(latent, jax.random.key(3))
    size0, sum0 = np.asarray(vq.cluster_size[...]), np.asarray(vq.embed_sum[...])
    out = vq(latent)
    vq.ema_update(out.counts, out.sums)
    one_hot = np.eye(4)[np.asarray(out.indices)]
    size = 0.9 * size0 + 0.1 * one_hot.sum(0)
    sums = 0.9 * sum0 + 0.1 * one_hot.T @ np.asarray(latent)
    smoothed = (size + sc_vae.EMA_EPS) / (size.sum() + 4 * sc_vae.EMA_EPS) * size.sum()
    np.testing.assert_allclose(vq.codebook[...], sums / smoothed[:, None], rtol=1e-5)
    np.testing.assert_allclose(vq.cluster_size[...], size, rtol=1e-6)


# ------------------------------------------------------------------------------ losses
def test_loss_terms_against_numpy():
    rng = np.random.default_rng(0)
    x, x_hat = rng.random((2, 8, 8, 3)), rng.random((2, 8, 8, 3))
    latent, synth = rng.standard_normal((2, 2, 2, 4)), rng.standard_normal((2, 2, 2, 4))
    code = rng.standard_normal((2, 2, 2, 6)) * (rng.random((2, 2, 2, 6)) < 0.3)
    alpha, beta, gamma = 0.7, 0.5, 0.25
    mse = np.sum((x_hat - x) ** 2) / x.size
    # the paper's loss over H·W·C = 192: latent sums per vector, mean over 2 images × 2 × 2 positions
    per_vector = lambda v: np.sum(v) / 8.0 / 192.0  # noqa: E731
    terms = objectives.sc_vae_terms(x, x_hat, latent, synth, code, alpha, beta)
    np.testing.assert_allclose(terms["loss/recon"], mse, rtol=1e-6)
    np.testing.assert_allclose(terms["loss/latent"], beta * per_vector((latent - synth) ** 2), rtol=1e-6)
    np.testing.assert_allclose(terms["loss/l1"], beta * alpha * per_vector(np.abs(code)), rtol=1e-6)
    vq = objectives.vq_terms(x, x_hat, latent, synth, beta, gamma)
    np.testing.assert_allclose(vq["loss/codebook"], beta * per_vector((latent - synth) ** 2), rtol=1e-6)
    np.testing.assert_allclose(vq["loss/commit"], beta * gamma * per_vector((latent - synth) ** 2), rtol=1e-6)
    assert set(objectives.vq_terms(x, x_hat, latent, synth, ema=True)) == {"loss/recon", "loss/commit"}
    assert set(objectives.autoencoder_terms(x, x_hat)) == {"loss/recon"}
    # stop-gradients: the codebook term moves only the codewords, the commitment term only E
    g_latent = jax.grad(lambda e: objectives.vq_terms(x, x_hat, e, synth)["loss/codebook"])(latent)
    g_code = jax.grad(lambda q: objectives.vq_terms(x, x_hat, latent, q)["loss/commit"])(synth)
    assert not np.any(g_latent) and not np.any(g_code)


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_give_clear_errors():
    config = tiny_config()
    config.data.image_size = 18
    with pytest.raises(ValueError, match=r"config.data.image_size=18 is not divisible by 2\^num_down = 4"):
        task_lib.validate_config(config)
    with pytest.raises(ValueError, match="divisible by 2\\^num_down = 4"):
        tiny_model("none")(jnp.ones((1, 14, 16, 3)))
    with pytest.raises(ValueError, match="config.model.num_atoms=8 < config.model.latent_dim=16"):
        task_lib.validate_config(tiny_config(num_atoms=8))
    with pytest.raises(ValueError, match="num_atoms=8 < model.latent_dim=16"):
        sc_vae.ListaBottleneck(16, 8, 3, 1.0, "dct", True)
    task_lib.validate_config(tiny_config(num_atoms=8, dictionary="learned"))  # allowed when learned
    with pytest.raises(ValueError, match="config.model.latent_dim=15 must be a perfect square"):
        task_lib.validate_config(tiny_config(latent_dim=15))
    with pytest.raises(ValueError, match="config.model.bottleneck='vqgan'"):
        task_lib.validate_config(tiny_config(bottleneck="vqgan"))


# ------------------------------------------------------------------------------ task + evaluators
@pytest.mark.parametrize("bottleneck,ema", [("lista", False), ("ista", False),
                                            pytest.param("vq", False, marks=pytest.mark.slow),
                                            pytest.param("vq", True, marks=pytest.mark.slow),
                                            pytest.param("none", False, marks=pytest.mark.slow)])
def test_task_train_and_eval_steps(bottleneck, ema):
    config = tiny_config(bottleneck, vq_ema=ema, num_down=1, channel_mult=(1,))  # small: compile time
    task = task_lib.make_task(config)
    images, _ = composites.make_arrays("train", 4, 16, 3)
    batch = {"image": jnp.asarray(images)}
    state = task.init(jax.random.key(0), batch)
    new_state, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(1))
    assert int(new_state.step) == 1
    assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
    expected = {"lista": {"loss/latent", "loss/l1", "sparsity/code_hoyer", "alpha"},
                "ista": {"loss/latent", "sparsity/code_hoyer", "ista/step"},
                "vq": {"loss/commit", "vq/usage", "vq/perplexity"} | (set() if ema else {"loss/codebook"}),
                "none": {"loss/recon"}}[bottleneck]
    assert expected <= set(metrics)
    assert float(metrics["loss"]) == pytest.approx(sum(float(v) for k, v in metrics.items() if k.startswith("loss/")),
                                                   rel=1e-5)
    if bottleneck == "vq":
        codebook = lambda s: (s.extra["model"] if ema else s.params)["bottleneck"]["codebook"]  # noqa: E731
        latent = task.eval_step(state, batch)["latent"]
        # data-dependent init: every codeword is one of the first batch's latent vectors
        vectors = np.asarray(latent).reshape(-1, 16)
        distance = np.min(np.sum((np.asarray(codebook(state))[:, None] - vectors) ** 2, -1), 1)
        np.testing.assert_allclose(distance, 0.0, atol=1e-8)
        assert not np.allclose(codebook(state), codebook(new_state))
    outputs = task.eval_step(new_state, batch)
    assert outputs["reconstruction"].shape == images.shape
    np.testing.assert_allclose(task.decode(new_state, outputs["code"]), outputs["reconstruction"], atol=1e-5)


@pytest.mark.slow  # trains 100 steps
def test_lista_codes_stay_nonzero_in_training():
    """At the paper's balance of the loss terms the codes stay alive; with latent terms H·W·C times
    heavier (a per-pixel MSE next to unscaled latent sums) every code of this model is zero by step 50."""
    config = tiny_config("lista", num_down=1, channel_mult=(1,))
    config.optim.update(name="adam", lr=1e-3, schedule="constant", warmup_steps=0, grad_clip=1.0)
    task = task_lib.make_task(config)
    images, _ = composites.make_arrays("train", 64, 16, 3)
    state = task.init(jax.random.key(0), {"image": jnp.asarray(images[:8])})
    step = jax.jit(task.train_step)
    for i in range(100):
        start = (8 * i) % 64
        state, metrics = step(state, {"image": jnp.asarray(images[start:start + 8])}, jax.random.key(i))
    assert float(metrics["sparsity/code_nonzero"]) > 0.01


@pytest.mark.slow  # runs every SC-VAE evaluator end to end; each is checked alone in the fast suite
def test_evaluators_run_on_the_task():
    config = tiny_config("lista")
    config.eval.evaluators = ("code_sparsity", "code_edits", "patch_clusters", "segmentation")
    task = task_lib.make_task(config)
    images, masks = composites.make_arrays("test", 6, 16, 3)
    valid = np.array([True] * 6 + [False] * 2)
    batches = [{"image": jnp.asarray(np.concatenate([images, images[:2]])[i:i + 4]),
                "mask": jnp.asarray(np.concatenate([masks, masks[:2]])[i:i + 4]),
                "valid": jnp.asarray(valid[i:i + 4])} for i in (0, 4)]
    state = task.init(jax.random.key(0), batches[0])
    datasets = {"test": lambda: iter(batches)}
    scalars, pictures = {}, {}
    for module in (code_sparsity, code_edits, patch_clusters, segmentation):
        getattr(module, "validate_config", lambda c: None)(config)
        s, p = module.evaluate(task, state, datasets, config)
        scalars.update(s)
        pictures.update(p)
    assert 0 <= scalars["test/code_hoyer"] <= 1 and 0 <= scalars["test/code_nonzero"] <= 1
    assert 0 <= scalars["test/seg_iou"] <= 1 and 0 <= scalars["test/seg_dice_colour"] <= 1
    assert set(pictures) == {"test/traversal", "test/interpolation", "test/patch_clusters", "test/patch_kmeans",
                             "test/segmentation"}
    assert all(p.ndim == 4 and p.shape[0] == 1 for p in pictures.values())
    assert pictures["test/patch_kmeans"].shape[1:] == (2 * 17 + 1, 4 * 17 + 1, 3)  # inputs, colour maps × 4 images
    assert pictures["test/traversal"].shape[1:3] == (2 * 17 + 1, 3 * 17 + 1)  # 2 components × 3 values


# ------------------------------------------------------------------------------ helpers


def test_composites_are_deterministic_with_matched_statistics():
    a, mask_a = composites.make_arrays("test", 3, 32, 3, seed=1)
    b, mask_b = composites.make_arrays("test", 3, 32, 3, seed=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert a.shape == (3, 32, 32, 3) and mask_a.dtype == bool
    assert 0.05 < mask_a.mean() < 0.8
    rng = np.random.default_rng(0)
    fg = composites.transforms.crop(composites.textures(3)[1], 32, rng)
    bg = composites.match_statistics(composites.transforms.crop(composites.textures(3)[0], 32, rng), fg)
    np.testing.assert_allclose(bg.mean(axis=(0, 1)), fg.mean(axis=(0, 1)), atol=0.02)


# ------------------------------------------------------------------------------ paper config, figures


def test_paper_config_sets_the_papers_optimiser_and_keeps_the_best_validation_mse():
    from conftest import load_config  # pylint: disable=import-outside-toplevel
    from sparse_ae.train import validation  # pylint: disable=import-outside-toplevel

    config = load_config("configs/sc_vae.py:paper")
    validation.validate_run(config)
    assert (config.optim.name, config.optim.lr, config.optim.schedule) == ("adam", 1e-4, "constant")
    assert config.data.batch_size == 16 and config.model.num_atoms == 512
    assert config.train.num_steps == 10 * 4125 and config.train.eval_every == 4125   # 10 epochs of 66,000 / 16
    assert config.train.keep_best == "test/mse"
    assert load_config("configs/sc_vae.py:paper,train_examples=33").train.num_steps == 10 * 3   # 33 / 16 -> 3
    validation.validate_run(load_config("configs/sc_vae.py:paper,runlocal"))   # keeps the best of 2 evaluations
    with pytest.raises(ValueError, match="train_examples"):
        load_config("configs/sc_vae.py:paper,train_examples=many")


def test_ista_config_is_the_authors_bottleneck():
    from conftest import load_config  # pylint: disable=import-outside-toplevel
    from sparse_ae.train import validation  # pylint: disable=import-outside-toplevel

    config = load_config("configs/sc_vae.py:bottleneck=ista")
    assert (config.model.bottleneck, config.model.dictionary, config.model.dct_atoms) == ("ista", "learned", "ksvd")
    validation.validate_run(config)
    validation.validate_run(load_config("configs/sc_vae.py:paper,bottleneck=ista,runlocal"))
    with pytest.raises(ValueError, match=r"config.model.dct_atoms='dct'"):
        task_lib.validate_config(tiny_config("ista", dct_atoms="dct"))


@pytest.mark.slow  # trains the benchmark model 2 steps
def test_compare_part_runs_the_named_models_only(run_python, tmp_path):
    import json  # pylint: disable=import-outside-toplevel

    out = tmp_path / "compare.json"
    run_python(["-m", "benchmarks.sc_vae", "--quick", "--parts=compare", "--steps=2", "--models=sc_vae_ista",
                "--out", str(out)], timeout=600, check=True)
    record = json.loads(out.read_text())
    assert [row["model"] for row in record["rows"]] == ["sc_vae_ista"] and "psnr_gap_sc_minus_vq_db" not in record
    assert 0 < record["rows"][0]["code_nonzero"] < 1
    failed = run_python(["-m", "benchmarks.sc_vae", "--quick", "--parts=compare", "--models=sc_vae_lista"],
                        timeout=600)
    assert failed.returncode != 0 and "--models: unknown ['sc_vae_lista']" in failed.stderr


@pytest.mark.slow  # about 1.5 minutes: loads the committed benchmark model and draws four figures
def test_figures_part_writes_the_four_figures_under_out_only(run_python, tmp_path):
    import json  # pylint: disable=import-outside-toplevel

    from PIL import Image  # pylint: disable=import-outside-toplevel

    run_python(["-m", "benchmarks.sc_vae", "--quick", "--parts=figures", "--out", str(tmp_path)], timeout=600,
               check=True)
    names = {f"sc_vae_{n}.png" for n in ("dct_atoms", "code_edits", "interpolation", "patch_kmeans")}
    assert {p.name for p in tmp_path.iterdir()} == names | {"sc_vae_figures.json"}
    for name in names:
        assert min(Image.open(tmp_path / name).size) >= 600   # upscaled enough to read
    record = json.loads((tmp_path / "sc_vae_figures.json").read_text())
    for sizes in record["cluster_sizes"]:   # 5 clusters of each crop's 16 x 16 codes, largest first
        assert len(sizes) == 5 and sum(sizes) == 256 and sizes == sorted(sizes, reverse=True)
