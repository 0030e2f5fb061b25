"""ISTA / FISTA: optimality, warm start, history, unroll invariance, gradients, input checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sparse_ae.sparse_coding import operators, solvers


@pytest.fixture(name="dense_problem", scope="module")
def dense_problem_fixture():
    """(op, y (4, 20), step 1/L, D) for a random 20×40 dictionary with unit-norm columns."""
    k1, k2 = jax.random.split(jax.random.key(0))
    D = jax.random.normal(k1, (20, 40))
    D = D / jnp.linalg.norm(D, axis=0)
    y = jax.random.normal(k2, (4, 20))
    return operators.dense_operator(D), y, 1.0 / float(np.linalg.norm(np.asarray(D), 2) ** 2), D


def test_fista_satisfies_lasso_kkt(dense_problem):
    """|Dᵀ(y − Dz)| ≤ λ everywhere and = λ·sign(z) on the support (per-channel λ)."""
    op, y, step, _ = dense_problem
    lam = jnp.linspace(0.05, 0.4, 40)
    z = jax.jit(lambda yy: solvers.fista(op, yy, lam, step, 2000, unroll=1))(y)
    correlation = op.adjoint(y - op.forward(z))
    support = jnp.abs(z) > 1e-6
    assert bool(jnp.any(support)) and not bool(jnp.all(support))
    assert bool(jnp.all(jnp.abs(correlation) <= lam + 1e-4))
    np.testing.assert_allclose(jnp.where(support, correlation, 0), jnp.where(support, lam * jnp.sign(z), 0), atol=1e-4)


def test_nonneg_kkt(dense_problem):
    op, y, step, _ = dense_problem
    z = jax.jit(lambda yy: solvers.fista(op, yy, 0.1, step, 2000, nonneg=True, unroll=1))(y)
    correlation = op.adjoint(y - op.forward(z))
    assert bool(jnp.all(z >= 0))
    assert bool(jnp.all(correlation <= 0.1 + 1e-4))
    np.testing.assert_allclose(jnp.where(z > 1e-6, correlation, 0.1), 0.1, atol=1e-4)


def test_ista_monotone_fista_faster_and_history(dense_problem):
    op, y, step, _ = dense_problem
    run = jax.jit(lambda yy: (solvers.ista(op, yy, 0.1, step, 50, return_history=True),
                              solvers.fista(op, yy, 0.1, step, 50, return_history=True)))
    (z_ista, h_ista), (z_fista, h_fista) = run(y)
    assert h_ista.shape == h_fista.shape == (50,)
    assert bool(jnp.all(jnp.diff(h_ista) <= 1e-5))
    assert h_fista[-1] < h_ista[-1]
    np.testing.assert_allclose(h_fista[-1], solvers.lasso_objective(op, y, z_fista, 0.1), rtol=1e-6)
    np.testing.assert_allclose(h_ista[-1], solvers.lasso_objective(op, y, z_ista, 0.1), rtol=1e-6)


def test_warm_start_and_batching(dense_problem):
    op, y, step, _ = dense_problem

    @jax.jit
    def runs(yy):
        full = solvers.ista(op, yy, 0.1, step, 30)
        resumed = solvers.ista(op, yy, 0.1, step, 20, z0=solvers.ista(op, yy, 0.1, step, 10))
        per_example = jax.vmap(lambda row: solvers.fista(op, row, 0.1, step, 30))(yy)
        return full, resumed, per_example, solvers.fista(op, yy, 0.1, step, 30)

    full, resumed, per_example, batched = runs(y)
    np.testing.assert_allclose(resumed, full, rtol=1e-5, atol=1e-6)  # ISTA is memoryless
    np.testing.assert_allclose(per_example, batched, rtol=1e-5, atol=1e-6)  # the objective separates


@pytest.mark.parametrize("unroll", [1, 3, True])
def test_unroll_does_not_change_results(unroll):
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 2))
    x = jax.random.normal(jax.random.key(2), (2, 8, 8, 2))
    op = operators.conv_operator(kernel, stride=2)

    def solve(u):
        return jax.jit(lambda xx: solvers.fista(op, xx, 0.1, 0.05, 7, unroll=u))(x)

    np.testing.assert_allclose(solve(unroll), solve(None), rtol=1e-5, atol=1e-6)


def test_resolve_unroll():
    expected_cpu = jax.default_backend() == "cpu"
    assert solvers.resolve_unroll(None, 10) == (10 if expected_cpu else 1)
    assert solvers.resolve_unroll(None, 1000) == (solvers.CPU_MAX_UNROLL if expected_cpu else 1)
    assert solvers.resolve_unroll(4, 10) == 4
    assert solvers.resolve_unroll(True, 10) is True
    for bad in (0, -1, 2.5, "full"):
        with pytest.raises(ValueError, match="unroll"):
            solvers.resolve_unroll(bad, 10)


def test_fista_momentum_sequence():
    betas = solvers.fista_momentum(4)
    t = [1.0]
    for _ in range(4):
        t.append((1 + np.sqrt(1 + 4 * t[-1] ** 2)) / 2)
    np.testing.assert_allclose(betas, [(t[k] - 1) / t[k + 1] for k in range(4)])
    assert betas[0] == 0.0


def test_proximal_gradient_generic_with_history():
    """Projected gradient onto the box [0, 1] for ½‖z − c‖²: converges to clip(c)."""
    c = jnp.array([-1.0, 0.3, 2.0])
    z, history = solvers.proximal_gradient(lambda z: z - c, lambda v, step: jnp.clip(v, 0, 1), jnp.zeros(3),
                                           0.5, 40, accelerated=True, history_fn=lambda z: jnp.sum(z))
    np.testing.assert_allclose(z, [0.0, 0.3, 1.0], atol=1e-5)
    assert history.shape == (40,)
    np.testing.assert_allclose(history[-1], 1.3, atol=1e-5)


@pytest.mark.parametrize("stride,boundary,modes", [(1, "circular", ("rev", "fwd")),
                                                   pytest.param(2, "zero", ("rev",), marks=pytest.mark.slow)])
def test_gradient_through_unrolled_conv_fista_matches_finite_differences(stride, boundary, modes):
    """d/d(kernel, x) of the reconstruction loss after 5 unrolled FISTA steps, float64."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        kernel = jnp.asarray(rng.standard_normal((3, 3, 3, 2)) / 3)
        x = jnp.asarray(rng.standard_normal((2, 6, 6, 2)))

        def loss(kernel, x):
            op = operators.conv_operator(kernel, stride, boundary)
            z = solvers.fista(op, x, 0.05, 0.1, 5, unroll=True)
            return 0.5 * jnp.sum((op.forward(z) - x) ** 2) + 0.1 * jnp.sum(z ** 2)

        check_grads(jax.jit(loss), (kernel, x), order=1, modes=modes, eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"lam": 0.0}, "lam must be > 0"),
    ({"lam": jnp.array([0.1, -0.1, 0.1])}, "lam must be > 0"),
    ({"step": -1.0}, "step must be > 0"),
    ({"num_iters": 0}, "num_iters must be an integer >= 1"),
    ({"y": jnp.full((1, 8, 8, 2), jnp.nan)}, "y \\(signal\\) contains NaN"),
    ({"y": jnp.ones((1, 8, 8, 3))}, "x \\(signal\\) has 3 channels"),
    ({"y": jnp.ones((1, 9, 8, 2)), "stride": 2}, "stride 2 does not divide"),
])
def test_bad_inputs_raise_clear_errors(kwargs, match):
    args = {"lam": 0.1, "step": 0.1, "num_iters": 3, "y": jnp.ones((1, 8, 8, 2)), "stride": 1, **kwargs}
    op = operators.conv_operator(jnp.ones((3, 3, 3, 2)), stride=args.pop("stride"))
    with pytest.raises(ValueError, match=match):
        solvers.fista(op, **args)


def test_traced_lam_and_step_are_accepted_under_jit(dense_problem):
    op, y, step, _ = dense_problem
    z = jax.jit(lambda lam, s: solvers.fista(op, y, lam, s, 5))(0.1, step)
    assert z.shape == (4, 40) and bool(jnp.all(jnp.isfinite(z)))
