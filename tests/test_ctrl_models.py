"""CSC-CTRL and conv-CTRL modules: shapes, sphere, functional atom normalisation, power iteration,
tied decoder, LDR's network choices (BatchNorm, tanh, init), effective atoms, principal directions
and class-conditional samples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sparse_ae.models import ctrl_pictures
from sparse_ae.models import conv_ctrl
from sparse_ae.models.conv_ctrl import ConvCTRL
from sparse_ae.models.csc_ctrl import CSCCTRL
from sparse_ae.sparse_coding import dictionaries, operators, solvers

SHAPE = (8, 8, 1)
GEOMETRY = dict(channels=(4, 6), kernel_sizes=(4, 3), strides=(2, 2), feature_dim=5)


def csc(tied=False, seed=0):
    return CSCCTRL(SHAPE, **GEOMETRY, lam=(0.05, 0.05), decoder_lam=(0.01, 0.01), learn_lam=True, num_iters=3,
                   nonneg=True, boundary="zero", lipschitz_margin=1.05, tied=tied, output="none", unroll=None,
                   rngs=nnx.Rngs(seed))


@pytest.fixture(scope="module")
def images():
    return jax.random.uniform(jax.random.key(1), (3, *SHAPE))


def test_csc_shapes_sphere_and_stage_is_core_fista(images):
    net = csc()
    state = net.init_state(jax.random.key(0), 30)
    z, codes = net.encode(images, state)
    assert z.shape == (3, 5)
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    assert [c.shape for c in codes] == [(3, 4, 4, 4), (3, 2, 2, 6)]
    assert all(float(c.min()) >= 0 for c in codes)  # nonneg codes
    stage = net.encoder.stages[0]
    op = operators.conv_operator(dictionaries.normalize_atoms(stage.kernel[...]), 2, "zero")
    expected = solvers.fista(op, images, stage.lam(), 1 / (1.05 * state["lipschitz"][0]), 3, nonneg=True)
    np.testing.assert_allclose(codes[0], expected, rtol=1e-5, atol=1e-6)
    assert net.decode(z, state).shape == (3, *SHAPE)


def test_atoms_are_normalised_functionally(images):
    a, b = csc(), csc()
    for stage in b.encoder.stages:
        stage.kernel[...] = 7.0 * stage.kernel[...]   # raw scale must not matter
    state = a.init_state(jax.random.key(0), 30)
    np.testing.assert_allclose(a.encode(images, state)[0], b.encode(images, state)[0], rtol=1e-5, atol=1e-6)
    for atoms in a.dictionaries()["encoder"]:
        np.testing.assert_allclose(jnp.sqrt(jnp.sum(atoms ** 2, axis=(0, 1, 3))), 1.0, rtol=1e-5)


def test_power_iteration_state_reaches_operator_norm():
    net = csc()
    state = net.init_state(jax.random.key(0), 200)
    for stage, lip, v in zip(net.encoder.stages, state["lipschitz"], state["power_vectors"]):
        op = stage.operator()
        matrix = jax.jacobian(lambda c: op.forward(c).ravel())(jnp.zeros(v.shape)).reshape(-1, v.size)
        true = float(np.linalg.norm(np.asarray(matrix), 2) ** 2)
        assert float(lip) <= true * (1 + 1e-4)
        np.testing.assert_allclose(float(lip), true, rtol=2e-3)
    warm = net.refresh_state(state, 1)  # one warm-started step keeps the estimate
    np.testing.assert_allclose(warm["lipschitz"], state["lipschitz"], rtol=1e-3)


def test_tied_decoder_uses_encoder_atoms_without_gradient(images):
    net = csc(tied=True)
    state = net.init_state(jax.random.key(0), 20)
    dicts = net.dictionaries()
    for enc, dec in zip(dicts["encoder"], dicts["decoder"]):
        np.testing.assert_array_equal(enc, dec)
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    z = jax.random.normal(jax.random.key(2), (3, 5))

    def decoded(p):
        return jnp.sum(nnx.merge(graphdef, p, rest).decode(z, state) ** 2)

    grads = jax.grad(decoded)(params)
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads["encoder"]))
    assert "kernels" not in grads["decoder"] or grads["decoder"]["kernels"] is None


def test_conv_ctrl_shapes(images):
    net = ConvCTRL(SHAPE, **GEOMETRY, norm="group", output="sigmoid", rngs=nnx.Rngs(0))
    z, acts = net.encode(images, {})
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    x = net.decode(z, {})
    assert x.shape == images.shape and float(x.min()) >= 0 and float(x.max()) <= 1
    assert [a.shape[-1] for a in acts] == [4, 6]


def ldr_net(**overrides):
    settings = dict(norm="batch", output="tanh", init="ldr") | overrides
    return ConvCTRL((16, 16, 1), channels=(32, 64), kernel_sizes=(4, 4), strides=(2, 2), feature_dim=8,
                    **settings, rngs=nnx.Rngs(0))


def test_batch_norm_normalises_with_batch_statistics_in_training_and_running_ones_in_evaluation():
    net = ldr_net()
    x = jax.random.uniform(jax.random.key(3), (6, 16, 16, 1)) * 2 - 1
    other = x.at[1:].set(-x[1:])
    stage2 = net.encoder.convs[1](jax.nn.leaky_relu(net.encoder.convs[0](x), 0.2))
    z, _ = net.encode(x, {})
    np.testing.assert_allclose(net.encoder.norms[1].mean[...], 0.1 * jnp.mean(stage2, axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-7)                  # PyTorch's momentum 0.1
    assert float(jnp.abs(z[0] - net.encode(other, {})[0][0]).max()) > 1e-3   # depends on the batch
    frozen = nnx.view(net, use_running_average=True)
    np.testing.assert_allclose(frozen.encode(x, {})[0][0], frozen.encode(other, {})[0][0], rtol=1e-5, atol=1e-6)


def test_tanh_output_lies_in_minus_one_one():
    net = ldr_net(init="default")
    x = net.decode(10.0 * jax.random.normal(jax.random.key(0), (4, 8)), {})
    assert float(jnp.abs(x).max()) < 1 and float(x.min()) < -0.01 and float(x.max()) > 0.01


def test_ldr_init_draws_weights_of_std_002_without_biases():
    params = nnx.to_pure_dict(nnx.state(ldr_net(), nnx.Param))
    flat = {jax.tree_util.keystr(path): v for path, v in jax.tree_util.tree_leaves_with_path(params)}
    kernels = [v for k, v in flat.items() if k.endswith("['kernel']")]
    assert len(kernels) == 6                            # 2 convs, 2 heads, 2 transposed convs
    for kernel in kernels:
        assert abs(float(jnp.std(kernel)) - conv_ctrl.LDR_STD) < 0.002 and abs(float(jnp.mean(kernel))) < 0.002
    assert not any("bias" in k and "norm" not in k for k in flat), sorted(flat)
    scales = jnp.concatenate([v for k, v in flat.items() if k.endswith("['scale']")])
    assert abs(float(jnp.mean(scales)) - 1) < 0.01 and 0.01 < float(jnp.std(scales)) < 0.03


@pytest.mark.parametrize("field,value", [("norm", "layer"), ("output", "relu"), ("init", "xavier")])
def test_conv_ctrl_bad_choice_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r} is not one of"):
        ldr_net(**{field: value})


def test_class_samples_follow_each_class_gaussian():
    rng = np.random.default_rng(0)
    means, std = np.array([[5.0, 0, 0], [0, 5.0, 0]]), 0.1
    labels = np.repeat([0, 1], 3000)
    z = means[labels] + std * rng.standard_normal((len(labels), 3))
    membership = jax.nn.one_hot(labels, 2)
    halves = [ctrl_pictures.class_moments(jnp.asarray(z[i::2], jnp.float32), membership[i::2]) for i in (0, 1)]
    moments = ctrl_pictures.decayed_moments(*halves, 1.0)            # decay 1: plain sums
    keys = jax.random.split(jax.random.key(0), len(labels))
    samples = ctrl_pictures.class_samples(moments, jnp.asarray(labels), keys)
    np.testing.assert_allclose(jnp.linalg.norm(samples, axis=1), 1.0, rtol=1e-5)
    for j, axis in ((0, 1), (1, 0)):
        mine = samples[labels == j]
        np.testing.assert_allclose(jnp.mean(mine, axis=0), means[j] / 5, atol=0.01)
        np.testing.assert_allclose(float(jnp.std(mine[:, axis])), std / 5, rtol=0.1)   # the class's spread


def test_example_keys_depend_on_the_image_only():
    images = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    draw = jax.vmap(lambda k: jax.random.normal(k, (3,)))
    first = draw(ctrl_pictures.example_keys(images))
    np.testing.assert_array_equal(first[2:], draw(ctrl_pictures.example_keys(images[2:])))
    assert float(jnp.abs(first[0] - first[1]).min()) > 0


def test_effective_atoms_are_the_synthesis_of_a_delta():
    """D_1 ∗ (D_2 ∗ z_2) for a delta at code position q equals the effective atom shifted by s_1·s_2·q."""
    atoms = csc().dictionaries()["decoder"]
    eff = ctrl_pictures.effective_atoms(atoms, (2, 2), "zero")["effective_atoms/stage2"]
    field = 4 + (3 - 1) * 2
    assert eff.shape == (6, field, field, 1)
    m, q = 2, (1, 1)
    z2 = jnp.zeros((1, 6, 6, 6)).at[0, q[0], q[1], m].set(1.0)
    x = operators.conv_synthesis(atoms[0], operators.conv_synthesis(atoms[1], z2, 2, "zero"), 2, "zero")[0]
    patch = x[4 * q[0]:4 * q[0] + field, 4 * q[1]:4 * q[1] + field]
    assert float(jnp.abs(x).sum() - jnp.abs(patch).sum()) < 1e-5      # all of it lies in the field
    low, high = patch.min(), patch.max()
    np.testing.assert_allclose(eff[m], (patch - low) / (high - low), rtol=1e-5, atol=1e-6)


def test_principal_directions_recover_class_axes():
    rng = np.random.default_rng(0)
    d, axes = 6, np.eye(6)
    labels = np.repeat([0, 1], 50)
    z = np.stack([axes[j] * rng.uniform(1, 2) + 0.05 * rng.standard_normal(d) for j in labels])
    dirs = ctrl_pictures.principal_directions(jnp.asarray(z, jnp.float32), jax.nn.one_hot(labels, 2), 2)
    assert dirs.shape == (2, 2, d)
    np.testing.assert_allclose(dirs[0, 0], axes[0], atol=0.05)   # signed towards the class mean
    np.testing.assert_allclose(dirs[1, 0], axes[1], atol=0.05)
