"""LPIPS: the weights loader (PyTorch layout), the distance against a NumPy forward pass, errors."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from sparse_ae.evaluators import lpips


@pytest.fixture(scope="module")
def torch_arrays():
    """Random arrays under the PyTorch names and layouts (He-scaled so activations survive 13 layers)."""
    rng = np.random.default_rng(0)
    out = {}
    for name, shape in lpips.expected_shapes().items():
        if name.startswith("lin"):
            out[name] = rng.uniform(0, 1, shape).astype(np.float32)
        elif name.endswith("weight"):
            out[name] = (rng.standard_normal(shape) * np.sqrt(2 / (9 * shape[1]))).astype(np.float32)
        else:
            out[name] = rng.uniform(0, 0.1, shape).astype(np.float32)
    return out


def numpy_lpips(sd, x, y):
    """Reference: PyTorch-layout convolutions (cross-correlation, zero padding 1) with sliding windows."""
    def taps(images):
        h = (2 * images - 1 - lpips.SHIFT) / lpips.SCALE
        out = []
        for i, block in enumerate(lpips.BLOCKS):
            if i:
                n, hh, ww, c = h.shape
                h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))
            for index in block:
                windows = np.lib.stride_tricks.sliding_window_view(np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0))),
                                                                   (3, 3), axis=(1, 2))
                h = np.maximum(np.einsum("nhwiab,oiab->nhwo", windows, sd[f"features.{index}.weight"])
                               + sd[f"features.{index}.bias"], 0)
            out.append(h)
        return out

    total = 0.0
    for layer, (fx, fy) in enumerate(zip(taps(x), taps(y))):
        nx = fx / (np.sqrt(np.sum(fx ** 2, -1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt(np.sum(fy ** 2, -1, keepdims=True)) + 1e-10)
        total = total + np.mean(np.sum(sd[f"lin{layer}.model.1.weight"].reshape(-1) * (nx - ny) ** 2, -1), (1, 2))
    return total


def test_distance_matches_numpy_forward(tmp_path, torch_arrays):
    path = tmp_path / "lpips_vgg.npz"
    np.savez(path, **torch_arrays)
    params = jax.tree.map(jnp.asarray, lpips.load_weights(path))
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (2, 2, 32, 32, 3)).astype(np.float32)
    got = np.asarray(jax.jit(lpips.distance)(params, x, y))
    np.testing.assert_allclose(got, numpy_lpips(torch_arrays, x.astype(np.float64), y.astype(np.float64)),
                               rtol=2e-4)
    assert np.all(got > 0)
    np.testing.assert_allclose(lpips.distance(params, y, x), got, rtol=1e-5)
    np.testing.assert_allclose(lpips.distance(params, x, x), 0.0, atol=1e-7)
    gray = x[..., :1]
    np.testing.assert_allclose(lpips.distance(params, gray, y[..., :1]),
                               lpips.distance(params, np.repeat(gray, 3, -1), np.repeat(y[..., :1], 3, -1)))


def test_bad_weights_and_config_give_clear_errors(tmp_path, torch_arrays):
    with pytest.raises(ValueError, match="is not a file; convert the LPIPS VGG weights"):
        lpips.load_weights(tmp_path / "missing.npz")
    np.savez(tmp_path / "partial.npz", **{k: v for k, v in torch_arrays.items() if k != "lin4.model.1.weight"})
    with pytest.raises(ValueError, match="no array 'lin4.model.1.weight'"):
        lpips.load_weights(tmp_path / "partial.npz")
    np.savez(tmp_path / "shape.npz", **{**torch_arrays, "features.0.weight": np.zeros((64, 3, 5, 5))})
    with pytest.raises(ValueError, match=r"features.0.weight has shape \(64, 3, 5, 5\), expected \(64, 3, 3, 3\)"):
        lpips.load_weights(tmp_path / "shape.npz")
    config = ml_collections.ConfigDict({"lpips": {"weights": ""}})
    with pytest.raises(ValueError, match="needs config.lpips.weights"):
        lpips.validate_config(config)
    config.lpips.weights = str(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="is not a file"):
        lpips.validate_config(config)


@pytest.mark.slow  # runs the full VGG network on a batch; the distance itself is checked in the fast suite
def test_evaluator_averages_over_valid_examples(tmp_path, torch_arrays):
    path = tmp_path / "lpips_vgg.npz"
    np.savez(path, **torch_arrays)
    config = ml_collections.ConfigDict({"lpips": {"weights": str(path)}})
    lpips.validate_config(config)
    task = types.SimpleNamespace(eval_step=lambda state, batch: {"reconstruction": 0.5 * batch["image"]})
    images = np.random.default_rng(2).uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    valid = np.array([True, True, True, True, True, False])
    batches = [{"image": images[i:i + 3], "valid": valid[i:i + 3]} for i in (0, 3)]
    scalars, pictures = lpips.evaluate(task, None, {"test": lambda: iter(batches)}, config)
    params = jax.tree.map(jnp.asarray, lpips.load_weights(path))
    expected = np.mean(np.asarray(lpips.distance(params, images[:5], 0.5 * images[:5])))
    np.testing.assert_allclose(scalars["test/lpips"], expected, rtol=1e-5)
    assert pictures == {}
