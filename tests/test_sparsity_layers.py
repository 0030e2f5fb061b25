"""Sparsity layers: exact support sizes, idempotence, gradients on the support, penalties, bad specs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.models import sparsity
from sparse_ae.models.sparsity import Sparsify


def _x(shape=(3, 4, 4, 8), seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


def test_l0_keeps_exactly_k_largest_entries_per_example():
    x = _x()
    out, stats = Sparsify("l0:7")(x)
    flat_x, flat_out = np.asarray(x).reshape(3, -1), np.asarray(out).reshape(3, -1)
    assert np.all(np.count_nonzero(flat_out, axis=1) == 7)
    for row_x, row_out in zip(flat_x, flat_out):
        keep = np.argsort(-np.abs(row_x))[:7]
        np.testing.assert_array_equal(np.flatnonzero(row_out), np.sort(keep))
        np.testing.assert_array_equal(row_out[keep], row_x[keep])
    np.testing.assert_allclose(stats.nonzero, 7 / 128)


def test_l0inf_keeps_exactly_k_largest_channels_per_needle():
    x = _x()
    out, stats = Sparsify("l0inf:3")(x)
    out, xs = np.asarray(out), np.asarray(x)
    assert np.all(np.count_nonzero(out, axis=-1) == 3)
    third = -np.sort(-np.abs(xs), axis=-1)[..., 2:3]
    np.testing.assert_array_equal(out, np.where(np.abs(xs) >= third, xs, 0))
    np.testing.assert_allclose([stats.nonzero, stats.needle_max], [3 / 8, 3 / 8])


def test_percentages_resolve_per_shape():
    x = _x((2, 4, 4, 8))
    assert np.all(np.count_nonzero(np.asarray(Sparsify("l0:25%")(x)[0]).reshape(2, -1), axis=1) == 32)
    assert np.all(np.count_nonzero(np.asarray(Sparsify("l0inf:25%")(x)[0]), axis=-1) == 2)
    assert str(sparsity.parse_spec("l0inf:25%")) == "l0inf:25%"


@pytest.mark.parametrize("spec", ["l0:10", "l0inf:2", "l0:30%", "l0inf:50%"])
def test_projections_are_idempotent(spec):
    layer = Sparsify(spec)
    once = layer(_x(seed=3))[0]
    np.testing.assert_array_equal(layer(once)[0], once)


@pytest.mark.parametrize("spec", ["l0:9", "l0inf:2"])
def test_gradients_reach_exactly_the_kept_entries(spec):
    x, weights = _x(seed=4), _x(seed=5)
    layer = Sparsify(spec)
    grad = jax.grad(lambda v: jnp.sum(weights * layer(v)[0]))(x)
    kept = np.asarray(layer(x)[0]) != 0
    np.testing.assert_array_equal(grad, np.where(kept, weights, 0.0))


def test_l1_is_identity_with_a_penalty_and_metrics():
    x = _x()
    out, stats = Sparsify("l1:0.5", "h")(x)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_allclose(stats.penalty, 0.5 * np.mean(np.abs(np.asarray(x))), rtol=1e-6)
    relu_stats = Sparsify("none", "r")(jax.nn.relu(x))[1]
    layers = {"h": stats, "r": relu_stats}
    np.testing.assert_allclose(sparsity.total_penalty(layers), stats.penalty)
    assert sparsity.total_penalty({"r": relu_stats}) == 0
    metrics = sparsity.log_metrics(layers)
    assert set(metrics) == {f"sparsity/{n}{s}" for n in "hr" for s in ("", "_needle_max", "_l1")}
    np.testing.assert_allclose(metrics["sparsity/r"], np.mean(np.asarray(x) > 0))
    # L1 gradient: the penalty's derivative is weight·sign(x)/n.
    grad = jax.grad(lambda v: Sparsify("l1:0.5")(v)[1].penalty)(x)
    np.testing.assert_allclose(grad, 0.5 * np.sign(x) / x.size, rtol=1e-6)


@pytest.mark.parametrize("spec,shape,match", [
    ("l0:129", (2, 4, 4, 8), "larger than the 128 entries per example"),
    ("l0inf:9", (2, 4, 4, 8), "larger than the 8 channels per needle"),
])
def test_k_larger_than_the_layer_is_a_clear_error(spec, shape, match):
    with pytest.raises(ValueError, match=match):
        Sparsify(spec, "g2")(jnp.ones(shape))


@pytest.mark.parametrize("spec,match", [
    ("l0:0", "k=0 must be an integer >= 1"),
    ("l0inf:-3", "k=-3 must be an integer >= 1"),
    ("l0:2.5", "must be an integer >= 1"),
    ("l0:0%", "fraction=0.0 must be in \\(0, 1\\]"),
    ("l0inf:150%", "fraction=1.5 must be in \\(0, 1\\]"),
    ("l1:-0.1", "λ \\(weight\\)=-0.1 must be a finite number >= 0"),
    ("l1:nan", "must be a finite number >= 0"),
    ("l2:3", "is not 'none', 'l1:<λ>'"),
    ("l0", "is not 'none', 'l1:<λ>'"),
])
def test_bad_specs_are_clear_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        sparsity.parse_spec(spec, "config.model.sparsity[1]")


def test_bad_spec_lists():
    with pytest.raises(ValueError, match="has 1 entries .* 2 regularisable"):
        sparsity.parse_specs(("none",), 2, "config.model.sparsity")
    with pytest.raises(TypeError, match="sequence of 2 spec strings"):
        sparsity.parse_specs("l0:3", 2, "config.model.sparsity")
    with pytest.raises(ValueError, match=r"config.model.sparsity\[1\]='l0:0'"):
        sparsity.parse_specs(("none", "l0:0"), 2, "config.model.sparsity")
    with pytest.raises(ValueError, match="k / fraction are only meaningful"):
        sparsity.SparsitySpec("l1", k=3)


def test_spatial_map_of_needle_and_example_sparsity():
    x = _x((6, 8, 8, 16), seed=6)
    needles = Sparsify("l0inf:25%")(x)[0]
    np.testing.assert_allclose(sparsity.spatial_map(needles), np.full((8, 8), 0.25))  # every needle keeps 4 of 16
    per_example = np.asarray(sparsity.spatial_map(Sparsify("l0:25%")(x)[0]))
    assert per_example.shape == (8, 8) and per_example.std() > 0  # the budget moves between pixels ...
    np.testing.assert_allclose(per_example.mean(), 0.25, rtol=1e-6)  # ... but totals 25 % of each example
    np.testing.assert_allclose(sparsity.spatial_map(x, "mean_abs"), np.abs(np.asarray(x)).mean(axis=(0, 3)),
                               rtol=1e-6)


@pytest.mark.parametrize("shape,kind,match", [
    ((8, 8, 16), "nonzero", r"needs a \(batch, height, width, channels\) map, got shape \(8, 8, 16\)"),
    ((2, 8, 8, 16), "max", "kind='max' is not one of"),
])
def test_spatial_map_bad_inputs(shape, kind, match):
    with pytest.raises(ValueError, match=match):
        sparsity.spatial_map(jnp.ones(shape), kind)
