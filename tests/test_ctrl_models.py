"""CSC-CTRL and conv-CTRL modules: shapes, sphere, functional atom normalisation, power iteration,
tied decoder, effective atoms and principal directions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sparse_ae.models import ctrl_pictures
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
