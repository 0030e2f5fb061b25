"""The ``ctrl`` task: config validation (bad input), the players' update directions, and the
runlocal end-to-end run of the main entry point."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from sparse_ae import data as data_lib
from sparse_ae.train.tasks import ctrl


def ctrl_config(name="ctrl_csc.py", arg="runlocal"):
    return load_config(f"configs/{name}:{arg}")


def first_batch(config):
    ds = data_lib.build(config.data, "train", seed=0, train=True, per_process_batch=config.data.batch_size)
    return {k: jnp.asarray(v) for k, v in next(iter(ds)).items()}


@pytest.mark.parametrize("name", ["ctrl_csc.py", "ctrl_conv.py"])
def test_paper_scale_configs_play_in_ctrls_order_and_cpu_ones_simultaneously(name):
    assert ctrl_config(name, "dataset=cifar10").objective.update_rule == "alternating"   # as LDR trains
    assert ctrl_config(name, "dataset=digits").objective.update_rule == "simultaneous"


def test_validate_config_bad_input():
    config = ctrl_config(arg="runlocal,dataset=natural_crops")
    ctrl.validate_config(config)                       # unlabeled data, sample-wise form: fine
    config.objective.form = "multiclass"
    with pytest.raises(ValueError, match="has no labels.*binary' or 'samplewise"):
        ctrl.validate_config(config)
    config = ctrl_config()
    config.model.feature_dim = config.data.batch_size + 1
    with pytest.raises(ValueError, match="feature_dim=.*larger than config.data.batch_size"):
        ctrl.validate_config(config)
    config = ctrl_config()
    config.model.lam = (0.1,)
    with pytest.raises(ValueError, match="config.model.lam"):
        ctrl.validate_config(config)
    config = ctrl_config()
    config.objective.eps_sq = 0.0
    with pytest.raises(ValueError, match="eps_sq"):
        ctrl.validate_config(config)
    config = ctrl_config()
    config.data.image_size = 10
    with pytest.raises(ValueError, match="multiple of the product of config.model.strides"):
        ctrl.validate_config(config)


def first_step(arch, **objective):
    """(config, batch, state, state after one train step) at lr 1e-4 with ``objective`` overrides."""
    config = ctrl_config("ctrl_csc.py" if arch == "csc" else "ctrl_conv.py")
    config.optim.update(lr=1e-4, schedule="constant")
    config.objective.update(objective)
    task = ctrl.make_task(config)
    batch = first_batch(config)
    state = jax.jit(task.init)(jax.random.key(0), batch)
    new, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(1))
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    return config, batch, state, new


def moved_by_each_player(fn, state, new):
    """fn at the start, and with only the encoder / only the decoder moved to their new params."""
    return (fn(state.params), *(fn({**state.params, p: new.params[p]}) for p in ("encoder", "decoder")))


@pytest.mark.parametrize("arch", ["csc", pytest.param("conv", marks=pytest.mark.slow)])
def test_players_move_the_game_value_in_opposite_directions(arch):
    """First Adam step, pure game: the encoder's update raises T, the decoder's lowers it."""
    config, batch, state, new = first_step(arch, recon_weight=0.0, encoder_recon_weight=0.0)
    t0, t_enc, t_dec = moved_by_each_player(jax.jit(lambda p: game_value(config, state, p, batch)), state, new)
    assert t_enc > t0 > t_dec, (float(t_enc), float(t0), float(t_dec))


@pytest.mark.parametrize("arch", ["csc", pytest.param("conv", marks=pytest.mark.slow)])
def test_pixel_terms_pull_both_players_towards_reconstruction(arch):
    """With the pixel terms dominating (weights 1e6), each player's first step lowers P."""
    config, batch, state, new = first_step(arch, recon_weight=1e6, encoder_recon_weight=1e6)
    p0, p_enc, p_dec = moved_by_each_player(jax.jit(lambda p: reconstruction_loss(config, state, p, batch)),
                                            state, new)
    assert p_enc < p0 and p_dec < p0, (float(p0), float(p_enc), float(p_dec))


def merged_model(config, params):
    from flax import nnx  # pylint: disable=import-outside-toplevel

    from sparse_ae.train.state import split_module  # pylint: disable=import-outside-toplevel

    graphdef, _, rest = split_module(ctrl.build_model(config, nnx.Rngs(0)))
    return nnx.merge(graphdef, params, rest)


def reconstruction_loss(config, state, params, batch):
    net = merged_model(config, params)
    z, _ = net.encode(batch["image"], state.extra)
    return 0.5 * jnp.mean((net.decode(z, state.extra) - batch["image"]) ** 2)


def game_value(config, state, params, batch):
    """T at ``params`` with the state's Lipschitz estimates (recomputed from the public pieces)."""
    from sparse_ae.objectives import ctrl as ctrl_lib  # pylint: disable=import-outside-toplevel

    net = merged_model(config, params)
    z, _ = net.encode(batch["image"], state.extra)
    z_hat, _ = net.encode(net.decode(z, state.extra), state.extra)
    membership = jax.nn.one_hot(batch["label"], config.objective.num_classes)
    return ctrl_lib.ctrl_terms(z, z_hat, membership, form="multiclass", eps_sq=config.objective.eps_sq)["T"]


def test_nonfinite_features_are_reported_by_name():
    config = ctrl_config()
    task = ctrl.make_task(config)
    batch = first_batch(config)
    state = jax.jit(task.init)(jax.random.key(0), batch)
    params = state.params
    params["encoder"]["head"]["bias"] = params["encoder"]["head"]["bias"].at[0].set(jnp.nan)
    _, metrics = jax.jit(task.train_step)(state.replace(params=params), batch, jax.random.key(1))
    assert not np.isfinite(float(metrics["features/norm"]))  # the loop names this key on NaN/Inf


def test_main_runlocal_end_to_end(run_python, tmp_path):
    workdir = tmp_path / "run"
    result = run_python(["-m", "sparse_ae.main", "--config=configs/ctrl_csc.py:runlocal", f"--workdir={workdir}"],
                        timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = json.loads((workdir / "metrics.json").read_text())
    for key in ("test/psnr", "test/ssim", "test/subspace_acc", "train/subspace_acc", "test/sparsity/stage1",
                "test/sparsity/stage2"):
        assert np.isfinite(metrics[key]), key
    images = {p.name for p in (workdir / "images").rglob("*.png")}
    assert any("principal_samples" in n for n in images) and any("effective_atoms" in n for n in images), images
    # Start-up noise is silenced: TensorFlow's native loading notices, JAX's TPU probe.
    for noise in ("oneDNN", "cuda drivers", "cpu_feature_guard", "absl::InitializeLog", "libtpu"):
        assert noise not in result.stderr, noise


def test_ldr_argument_sets_ldrs_networks_and_pure_game():
    config = ctrl_config("ctrl_conv.py", "ldr")
    assert (config.model.norm, config.model.output, config.model.init, config.model.pixel_range) == (
            "batch", "tanh", "ldr", "symmetric")
    o = config.objective
    assert (o.update_rule, o.recon_weight, o.encoder_recon_weight, config.optim.lr) == ("alternating", 0, 0, 1.5e-4)
    default = ctrl_config("ctrl_conv.py", "dataset=digits")
    assert (default.model.norm, default.model.output, default.model.init) == ("group", "sigmoid", "default")


@pytest.mark.parametrize("field,value", [("norm", "layer"), ("init", "xavier"), ("output", "relu"),
                                         ("pixel_range", "byte")])
def test_bad_network_choice_names_the_field(field, value):
    config = ctrl_config("ctrl_conv.py", "ldr,runlocal")
    config.model[field] = value
    with pytest.raises(ValueError, match=f"config.model.{field}={value!r} is not one of"):
        ctrl.validate_config(config)
    config = ctrl_config(arg="runlocal,dataset=natural_crops")
    config.model.class_moments_decay = 0.9
    with pytest.raises(ValueError, match="class_moments_decay=0.9 needs labels"):
        ctrl.validate_config(config)


@pytest.mark.slow  # a jitted LDR step; batch norm itself is checked in test_ctrl_models
def test_ldr_step_moves_running_statistics_and_evaluation_uses_them():
    config = ctrl_config("ctrl_conv.py", "ldr,runlocal")
    task = ctrl.make_task(config)
    batch = first_batch(config)
    state = jax.jit(task.init)(jax.random.key(0), batch)
    assert "bias" not in state.params["encoder"]["head"]
    new, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(1))
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.extra["batch_stats"], new.extra["batch_stats"])
    assert min(jax.tree.leaves(moved)) > 0, moved
    eval_step = jax.jit(task.eval_step)
    out = eval_step(new, batch)
    assert float(out["reconstruction"].min()) >= 0 and float(out["reconstruction"].max()) <= 1
    other = {**batch, "image": batch["image"].at[1:].set(1 - batch["image"][1:])}
    np.testing.assert_allclose(out["features"][0], eval_step(new, other)["features"][0], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # trains a classifier and evaluates end to end; the evaluator is checked in test_evaluators_fid
def test_frechet_argument_scores_reconstructions_and_class_samples(tmp_path):
    from flax import nnx  # pylint: disable=import-outside-toplevel

    from sparse_ae.evaluators import frechet_digits  # pylint: disable=import-outside-toplevel
    from sparse_ae.models import digits_classifier  # pylint: disable=import-outside-toplevel

    config = ctrl_config(arg="frechet,runlocal")
    digits_classifier.save(digits_classifier.DigitsClassifier(8, feature_dim=6, rngs=nnx.Rngs(0)), tmp_path, {})
    config.frechet_digits.classifier = str(tmp_path)
    task = ctrl.make_task(config)
    batch = first_batch(config)
    state, _ = jax.jit(task.train_step)(jax.jit(task.init)(jax.random.key(0), batch), batch, jax.random.key(1))
    assert float(state.extra["class_moments"]["count"].sum()) == config.data.batch_size
    test = data_lib.build(config.data, "test", seed=0, train=False, per_process_batch=16)
    datasets = {"test": lambda: ({k: jnp.asarray(v) for k, v in b.items()} for b, _ in zip(test, range(2)))}
    scalars, _ = frechet_digits.evaluate(dataclasses.replace(task, eval_step=jax.jit(task.eval_step)), state,
                                         datasets, config)
    assert sorted(scalars) == ["test/digits_score_reconstruction", "test/digits_score_samples",
                               "test/frechet_digits_reconstruction", "test/frechet_digits_samples"]
    assert all(np.isfinite(v) and v >= 0 for v in scalars.values()), scalars
    assert scalars["test/frechet_digits_samples"] != scalars["test/frechet_digits_reconstruction"]
