"""Learned solvers: LISTA, LISTA-CP and ALISTA start as (or from) ISTA, and trained LISTA beats FISTA.

The trained check is the classic synthetic problem at a smaller size (A 64×128 with N(0, 1/64)
entries and unit-norm columns, x Bernoulli(0.1)·N(0, 1), noiseless, 8 layers) and looser
bounds than the benchmark's (``benchmarks/lista.py``: 250×500, 16 layers, −25 dB and 10 dB).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_ae.sparse_coding import learned, metrics, operators, solvers

N, K, DENSITY = 64, 128, 0.1


def make_problem(key, batch: int):
    """(A (N, K) unit-norm columns, y (batch, N), x (batch, K)) with y = A x."""
    k_a, k_s, k_v = jax.random.split(key, 3)
    A = jax.random.normal(k_a, (N, K)) / np.sqrt(N)
    A = A / jnp.linalg.norm(A, axis=0)
    x = jax.random.bernoulli(k_s, DENSITY, (batch, K)) * jax.random.normal(k_v, (batch, K))
    return A, x @ A.T, x


def ista_reference(A, y, lam, num_iters):
    return solvers.ista(operators.dense_operator(A), y, lam, 1.0 / learned.lipschitz_constant(A), num_iters)


@pytest.mark.parametrize("tied", [True, False, ("W_e", "S")])
def test_lista_at_init_is_ista(tied):
    A, y, _ = make_problem(jax.random.key(0), 16)
    params = learned.lista_init(A, 0.1, 6, tied=tied)
    z = learned.lista_apply(params, y, num_layers=6)
    np.testing.assert_allclose(z, ista_reference(A, y, 0.1, 6), atol=1e-5)


@pytest.mark.parametrize("tied", [True, False])
def test_lista_cp_at_init_is_ista_and_converts_to_lista(tied):
    A, y, _ = make_problem(jax.random.key(1), 16)
    params = learned.lista_cp_init(A, 0.1, 5, tied=tied)
    z = learned.lista_cp_apply(params, y, A, num_layers=5)
    np.testing.assert_allclose(z, ista_reference(A, y, 0.1, 5), atol=1e-5)
    as_lista = learned.lista_from_coupled(params["W"], params["theta"], A)
    np.testing.assert_allclose(learned.lista_apply(as_lista, y, num_layers=5), z, atol=1e-5)


def test_alista_weight_is_the_constrained_minimiser():
    A, y, _ = make_problem(jax.random.key(2), 8)
    W = learned.alista_weight(A)
    np.testing.assert_allclose(jnp.diag(W.T @ A), 1.0, atol=1e-5)
    # Any feasible perturbation (keeping diag(WᵀA) = 1) has a larger ‖WᵀA‖_F.
    P = jax.random.normal(jax.random.key(3), W.shape) * 1e-2
    P = P - A * jnp.sum(P * A, axis=0) / jnp.sum(A * A, axis=0)  # pᵢᵀaᵢ = 0
    assert jnp.linalg.norm((W + P).T @ A) > jnp.linalg.norm(W.T @ A)
    params = learned.alista_init(A, 0.1, 4)
    z_alista = learned.alista_apply(params, y, A, W)
    z_lista = learned.lista_apply(learned.lista_from_coupled(params["gamma"][:, None, None] * W,
                                                             params["theta"], A), y)
    np.testing.assert_allclose(z_lista, z_alista, atol=1e-5)


def test_support_selection_passes_the_largest_entries_unshrunk():
    v = jnp.array([[3.0, -2.0, 0.5, 1.5, -0.2]])
    out = learned.shrink_support(v, jnp.asarray(0.4), jnp.asarray(2))
    np.testing.assert_allclose(out, [[3.0, -2.0, 0.1, 1.1, 0.0]], atol=1e-6)
    np.testing.assert_allclose(learned.shrink_support(v, jnp.asarray(0.4), jnp.asarray(0)),
                               [[2.6, -1.6, 0.1, 1.1, 0.0]], atol=1e-6)


def test_bad_inputs_name_the_argument():
    A, y, _ = make_problem(jax.random.key(4), 4)
    with pytest.raises(ValueError, match="lam"):
        learned.lista_init(A, 0.0, 4)
    with pytest.raises(ValueError, match="num_layers"):
        learned.lista_init(A, 0.1, 0)
    params = learned.lista_init(A, 0.1, 4)
    with pytest.raises(ValueError, match=r"y \(signal\)"):
        learned.lista_apply(params, y[:, :-1])
    with pytest.raises(ValueError, match="NaN|finite"):
        learned.lista_apply(params, y.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="num_layers"):
        learned.lista_apply(learned.lista_init(A, 0.1, 4, tied=True), y)


@pytest.mark.slow  # trains for many steps
def test_trained_lista_beats_fista_at_equal_depth():
    """Tied LISTA (W_e, S shared, θ per layer), Adam on the last layer's MSE, fresh batches."""
    layers, steps = 8, 1500
    A, y_test, x_test = make_problem(jax.random.key(5), 500)
    def batch(key):  # fresh codes over the same A
        k_s, k_v = jax.random.split(key)
        x = jax.random.bernoulli(k_s, DENSITY, (64, K)) * jax.random.normal(k_v, (64, K))
        return x @ A.T, x

    step = 1.0 / learned.lipschitz_constant(A)
    fista_nmse = min(float(metrics.nmse_db(solvers.fista(operators.dense_operator(A), y_test, lam, step, layers),
                                           x_test)) for lam in (0.03, 0.1, 0.3, 0.6))
    params = learned.lista_init(A, 0.3, layers, tied=("W_e", "S"))
    optimizer = optax.adam(optax.piecewise_constant_schedule(3e-3, {steps // 2: 0.2, 3 * steps // 4: 0.1}))

    @jax.jit
    def train_step(params, opt_state, key):
        y, x = batch(key)
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.square(learned.lista_apply(p, y) - x)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    for i in range(steps):
        params, opt_state, loss = train_step(params, opt_state, jax.random.fold_in(jax.random.key(6), i))
    assert np.isfinite(float(loss))
    lista_nmse = float(metrics.nmse_db(learned.lista_apply(params, y_test), x_test))
    # Measured: FISTA −6.0 dB (best λ of the grid), LISTA −14.6 dB.
    assert lista_nmse <= fista_nmse - 6.0, (lista_nmse, fista_nmse)
    assert lista_nmse <= -12.0, lista_nmse
