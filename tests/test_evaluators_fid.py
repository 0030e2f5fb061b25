"""Fréchet distances: FID / IS math against SciPy and first principles, the InceptionV3 weight
loader on random weights, and the digits-classifier distance with a saved classifier or the default one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from flax import nnx

from sparse_ae import config as config_lib
from sparse_ae.evaluators import _digits_classifier_training, fid, frechet_digits
from sparse_ae.models import digits_classifier, inception


def scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


@pytest.mark.parametrize("d", [3, 16])
def test_frechet_distance_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    a, b = rng.standard_normal((400, d)), rng.standard_normal((400, d)) @ rng.standard_normal((d, d)) + 0.5
    stats_a, stats_b = fid.gaussian_stats(a), fid.gaussian_stats(b)
    np.testing.assert_allclose(fid.frechet_distance(*stats_a, *stats_b), scipy_fid(*stats_a, *stats_b), rtol=1e-7)
    assert abs(fid.frechet_distance(*stats_a, *stats_a)) < 1e-8


def test_frechet_distance_closed_form_for_commuting_gaussians():
    """Diagonal covariances: Σ_i (μ1−μ2)_i² + (σ1_i − σ2_i)²."""
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    np.testing.assert_allclose(fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)), expected, rtol=1e-12)


def test_inception_score_bounds():
    k = 10
    confident = np.eye(k)[np.arange(100) % k]           # sure and uniform over classes: IS = k
    np.testing.assert_allclose(fid.inception_score(confident, splits=1)[0], k, rtol=1e-6)
    uniform = np.full((100, k), 1.0 / k)                 # no information: IS = 1
    np.testing.assert_allclose(fid.inception_score(uniform, splits=5)[0], 1.0, rtol=1e-9)


def test_avg_pool_excludes_padding():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    got = np.asarray(inception._avg_pool_exclude_pad(jnp.asarray(x)))[0, :, :, 0]
    pad = np.pad(x[0, :, :, 0], 1, constant_values=np.nan)
    expected = np.array([[np.nanmean(pad[i:i + 3, j:j + 3]) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.fixture(scope="module", name="sd")
def random_torch_state():
    """A random state_dict of the FID network in PyTorch layout, shapes from the module itself."""
    model = nnx.eval_shape(lambda: inception.InceptionV3(rngs=nnx.Rngs(0)))
    state = nnx.state(model)
    rng = np.random.default_rng(0)
    out = {}
    for key, path in inception.weight_map(model).items():
        shape = inception._leaf(state, path).shape
        if len(shape) == 4:                             # ours (kh, kw, I, O) -> torch (O, I, kh, kw)
            kh, kw, cin, cout = shape
            out[key] = rng.standard_normal((cout, cin, kh, kw), np.float32) / np.float32(np.sqrt(kh * kw * cin))
        elif key == "fc.weight":
            out[key] = rng.standard_normal(shape[::-1], np.float32) / np.float32(np.sqrt(shape[0]))
        elif key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            out[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    out["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.array(0)  # present in real state_dicts; ignored
    return out


def torch_basic_conv(x, sd, prefix, stride, pad):
    """NumPy reference of PyTorch Conv2d(no bias, OIHW) + BatchNorm2d(eval, ε=1e-3) + ReLU on NHWC."""
    w = sd[f"{prefix}.conv.weight"]
    o, i, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], ho, wo, o))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, a:a + stride * ho:stride, b:b + stride * wo:stride, :]
            y += np.einsum("nhwi,oi->nhwo", patch, w[:, :, a, b])
    g, beta = sd[f"{prefix}.bn.weight"], sd[f"{prefix}.bn.bias"]
    mean, var = sd[f"{prefix}.bn.running_mean"], sd[f"{prefix}.bn.running_var"]
    return np.maximum((y - mean) / np.sqrt(var + 1e-3) * g + beta, 0)


def test_loader_maps_pytorch_weights_and_runs(tmp_path, sd):
    path = tmp_path / "inception.npz"
    np.savez(path, **sd)
    model = inception.load_weights(path)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)
    first = np.asarray(model.Conv2d_1a_3x3(jnp.asarray(x)))
    np.testing.assert_allclose(first, torch_basic_conv(x, sd, "Conv2d_1a_3x3", 2, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(model.fc.kernel[...]), sd["fc.weight"].T)
    features, logits = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(x))
    assert features.shape == (2, inception.FEATURE_DIM) and logits.shape == (2, inception.NUM_LOGITS)
    assert np.all(np.isfinite(features)) and np.all(np.asarray(features) >= 0)  # mean of ReLU outputs
    np.testing.assert_allclose(logits, np.asarray(features) @ sd["fc.weight"].T + sd["fc.bias"], rtol=1e-4, atol=1e-4)


def test_loader_rejects_wrong_files(tmp_path, sd):
    with pytest.raises(ValueError, match="not a file"):
        inception.load_weights(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in sd.items() if k != "Mixed_5b.branch1x1.conv.weight"})
    with pytest.raises(ValueError, match="missing.*Mixed_5b.branch1x1.conv.weight"):
        inception.load_weights(tmp_path / "bad.npz")
    bad = dict(sd, **{"fc.bias": np.zeros(10, np.float32)})
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="fc.bias has shape"):
        inception.load_weights(tmp_path / "shape.npz")


def test_preprocess_resizes_gray_to_rgb_in_minus_one_one():
    x = jnp.full((1, 8, 8, 1), 0.75)
    y = inception.preprocess(x, 16)
    assert y.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(y, 0.5, atol=1e-6)


def test_frechet_digits_with_a_saved_classifier(tmp_path, monkeypatch):
    model = digits_classifier.DigitsClassifier(8, feature_dim=6, rngs=nnx.Rngs(0))
    digits_classifier.save(model, tmp_path, {"note": "untrained"})
    embed = frechet_digits.embedder(str(tmp_path))
    real = np.asarray(jax.random.uniform(jax.random.key(0), (200, 8, 8, 1)))
    assert abs(frechet_digits.frechet(embed, real, real)) < 1e-6
    assert frechet_digits.frechet(embed, real, np.clip(real + 0.5, 0, 1)) > 1e-3
    config = config_lib.base_config()
    config.data.image_size = 16
    config.frechet_digits = {"classifier": str(tmp_path)}
    with pytest.raises(ValueError, match="trained on 8px digits but config.data.image_size=16"):
        frechet_digits.validate_config(config)
    config.frechet_digits = {"classifier": ""}  # the default classifier: checks the size, trains nothing
    monkeypatch.setattr(_digits_classifier_training, "default_classifier", None)
    frechet_digits.validate_config(config)
    config.data.image_size = 6
    with pytest.raises(ValueError, match="config.data.image_size=6: the digits classifier .* multiple of 4"):
        frechet_digits.validate_config(config)
