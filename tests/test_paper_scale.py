"""The paper-scale configs are valid and their first step traces, on abstract inputs.

Their datasets are TFDS sets or folders that are not on this machine and their steps take
minutes on 2 cores, so each config is checked the way the loop starts it, up to the point
where data and compute would be needed: the config is completed and validated, then the task's
``init``, ``train_step`` and ``eval_step`` are traced with ``jax.eval_shape`` on a global batch
of the config's shape (nothing is compiled or run). This catches a shape that does not fit, a
field a paper-scale branch sets wrongly, or a stage count the image size cannot carry. The list
of configs is ``benchmarks.paper_scale.PAPER_SCALE_CONFIGS``, whose cost estimator is tested last.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import tensorflow_datasets as tfds

from sparse_ae import dip
from sparse_ae.data import tfds_source
from sparse_ae.train import config_files, validation
from sparse_ae.train.task import get_task

from benchmarks import paper_scale
from benchmarks.paper_scale import PAPER_SCALE_CONFIGS
from conftest import REPO

pytestmark = pytest.mark.slow  # about 1.5 min of tracing in all on 2 shared cores


@pytest.fixture(name="tfds_features_only")
def tfds_features_only_fixture(monkeypatch):
    """TFDS builders as TFDS defines them, files not prepared: the config's feature keys are still
    checked against the dataset's real features, only the check that its files exist is skipped."""
    monkeypatch.setattr(tfds_source, "_builder", lambda cfg: tfds.builder(tfds_source.dataset_name(cfg)))


@pytest.mark.parametrize("spec", PAPER_SCALE_CONFIGS)
@pytest.mark.usefixtures("tfds_features_only")
def test_paper_scale_config_validates_and_its_first_step_traces(spec, tmp_path):
    config = config_files.complete(config_files.load(spec, root=REPO))
    if "fid" in config.eval.evaluators:  # the command names converted InceptionV3 weights
        config.fid.weights = str(tmp_path / "inception.npz")
        (tmp_path / "inception.npz").touch()
    validation.validate_run(config, num_devices=1)
    task = get_task(config)
    batch = paper_scale.abstract_batch(config)
    key = jax.random.key(config.seed)

    state = jax.eval_shape(task.init, key, batch)
    new_state, metrics = jax.eval_shape(task.train_step, state, batch, key)
    outputs = jax.eval_shape(task.eval_step, state, batch)

    shapes = lambda tree: jax.tree.map(lambda leaf: (leaf.shape, leaf.dtype), tree)  # noqa: E731
    assert shapes(new_state) == shapes(state), "train_step changed the state's structure"
    assert metrics["loss"].shape == ()
    assert all(leaf.shape[0] == config.data.batch_size for leaf in jax.tree.leaves(outputs))


def test_dip_full_protocol_traces_a_gradient_step_at_set12_size():
    """The DIP runner's default is the full protocol (whole 512×512 Set12 images, 5 levels)."""
    config = dip.load_config("configs/dip_denoise.py", root=REPO)
    dip.validate_config(config)
    model = nnx.eval_shape(lambda: dip.build_model(config.model, nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    inputs = jax.ShapeDtypeStruct((1, 512, 512, config.model.input_channels), jnp.float32)

    def loss(params, inputs):
        out, _ = nnx.merge(graphdef, params, rest)(inputs)
        return jnp.mean(jnp.square(out))

    grads = jax.eval_shape(jax.grad(loss), params, inputs)
    assert jax.tree.map(lambda g: g.shape, grads) == jax.tree.map(lambda p: p.shape, params)


@pytest.mark.parametrize("spec", ["configs/dcea_binomial_ecdl.py", "configs/dip_denoise.py:cpu"])
def test_paper_scale_estimate_counts_flops_and_finite_hours(spec):
    """The estimator of ``benchmarks.paper_scale`` on a train-loop config and on the DIP protocol."""
    row = paper_scale.estimate(spec, mfu=0.3)
    assert row["step_gflop"] > 0 and row["steps"] > 0
    assert row["total_pflop"] == pytest.approx(row["step_gflop"] * row["steps"] / 1e6)
    for where in ("gpu_hours", "tpu_hours"):
        assert math.isfinite(row[where]) and row[where] > 0, row
    # Linear in 1/MFU, and the TPU slice's peak is the larger one.
    assert paper_scale.estimate(spec, mfu=0.6)["gpu_hours"] == pytest.approx(row["gpu_hours"] / 2)
    assert row["tpu_hours"] < row["gpu_hours"]
