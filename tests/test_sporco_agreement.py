"""Agreement with SPORCO (a peer implementation) on a fixed convolutional BPDN problem, float64.

Problem: 8 unit-norm 7×7 filters (seeded Gaussian), the 64×64 block-mean of skimage's camera
image in [0, 1], λ = 0.05. SPORCO's CBPDN objective is ½‖Σ_m d_m ∗ x_m − s‖² + λ Σ_m ‖x_m‖₁,
summed over images, with true (circular) convolution and the filter origin at [0, 0] — exactly
``lasso_objective`` with ``conv_operator(kernel, stride=1, boundary="circular")`` and kernel
(7, 7, 8, 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data
from sporco.admm import cbpdn as admm_cbpdn
from sporco.pgm import cbpdn as pgm_cbpdn

from sparse_ae.sparse_coding import operators, solvers

LAM = 0.05
CHECKPOINTS = (10, 50, 200)
LONG_RUN = 1000


@pytest.fixture(name="problem", scope="module")
def problem_fixture():
    """(filters (7, 7, 8) as SPORCO takes them, image (64, 64), L = ‖A‖² of the circular operator)."""
    rng = np.random.default_rng(0)
    filters = rng.standard_normal((7, 7, 8))
    filters /= np.sqrt(np.sum(filters ** 2, axis=(0, 1)))
    image = data.camera().astype(np.float64).reshape(64, 8, 64, 8).mean(axis=(1, 3)) / 255.0
    lipschitz = np.max(np.sum(np.abs(np.fft.fft2(filters, s=(64, 64), axes=(0, 1))) ** 2, axis=-1))
    return filters, image, float(lipschitz)


@pytest.fixture(name="jax_history", scope="module")
def jax_history_fixture(problem):
    """FISTA objective after each of 1000 iterations (float64, step 1/L), and the code after 200."""
    filters, image, lipschitz = problem
    with jax.enable_x64(True):
        kernel = jnp.asarray(filters[:, :, :, None])
        np.testing.assert_allclose(operators.circular_lipschitz(kernel, (64, 64)), lipschitz, rtol=1e-12)
        op = operators.conv_operator(kernel)
        y = jnp.asarray(image)[None, :, :, None]

        @jax.jit
        def run(y):
            z200 = solvers.fista(op, y, LAM, 1.0 / lipschitz, CHECKPOINTS[-1], unroll=1)
            _, history = solvers.fista(op, y, LAM, 1.0 / lipschitz, LONG_RUN, unroll=1, return_history=True)
            return z200, history

        z200, history = run(y)
        assert history.dtype == jnp.float64
        return np.asarray(z200), np.asarray(history)


@pytest.fixture(name="sporco_pgm", scope="module")
def sporco_pgm_fixture(problem, single_threaded):  # pylint: disable=unused-argument
    """SPORCO PGM (FISTA momentum, fixed L, no backtracking): {iterations: objective}, codes after 200."""
    filters, image, lipschitz = problem
    opt = pgm_cbpdn.ConvBPDN.Options({"L": lipschitz, "Backtrack": None, "StepSizePolicy": None,
                                      "Monotone": False, "FastSolve": True, "RelStopTol": 0.0,
                                      "MaxMainIter": CHECKPOINTS[0]})
    solver = pgm_cbpdn.ConvBPDN(filters, image, LAM, opt)
    objectives, done = {}, 0
    for checkpoint in CHECKPOINTS:  # solve() resumes from the current iterate and momentum
        solver.opt["MaxMainIter"] = checkpoint - done
        solver.solve()
        done = checkpoint
        objectives[checkpoint] = float(solver.eval_objfn()[0])
    assert solver.k == CHECKPOINTS[-1]
    return objectives, solver.X.reshape(64, 64, 8)


@pytest.fixture(name="sporco_admm_optimum", scope="module")
def sporco_admm_optimum_fixture(problem, single_threaded):  # pylint: disable=unused-argument
    """SPORCO ADMM objective after 1000 iterations, evaluated at its sparse variable Y.

    SPORCO's ADMM reports the objective at X (the non-sparse, least-squares side of the split),
    which is not a LASSO iterate; Y (the ℓ1 side) is, so the optimum is read at Y — with SPORCO's
    own objective code (a PGM ConvBPDN object started at X0 = Y).
    """
    filters, image, _ = problem
    opt = admm_cbpdn.ConvBPDN.Options({"MaxMainIter": LONG_RUN, "RelStopTol": 1e-12, "FastSolve": True,
                                       "Verbose": False})
    admm = admm_cbpdn.ConvBPDN(filters, image, LAM, opt)
    admm.solve()
    at_y = pgm_cbpdn.ConvBPDN(filters, image, LAM, pgm_cbpdn.ConvBPDN.Options({"X0": admm.Y}))
    return float(at_y.eval_objfn()[0])


def test_fista_matches_sporco_pgm_iteration_for_iteration(jax_history, sporco_pgm):
    (z200, history), (objectives, sporco_codes) = jax_history, sporco_pgm
    for k in CHECKPOINTS:
        assert abs(history[k - 1] - objectives[k]) <= 1e-10 * objectives[k], (k, history[k - 1], objectives[k])
    np.testing.assert_allclose(z200[0], sporco_codes, atol=1e-9)
    assert objectives[10] > objectives[50] > objectives[200]  # a real trajectory, not a fixed point


def test_fista_reaches_sporco_admm_optimum(jax_history, sporco_admm_optimum):
    _, history = jax_history
    assert abs(history[LONG_RUN - 1] - sporco_admm_optimum) <= 1e-5 * sporco_admm_optimum
    # FISTA is not done at 200 iterations, so the 1e-5 agreement above is informative.
    assert history[CHECKPOINTS[-1] - 1] - sporco_admm_optimum > 1e-5 * sporco_admm_optimum
