"""ADMM for convolutional BPDN against SPORCO's admm.cbpdn.ConvBPDN (float64, iterate for iterate),
and the ``solve_csc`` entry point.

Problems: (a) single-channel dictionary: 8 unit-norm 7×7 filters, the 64×64 block mean of
skimage's camera image, λ = 0.05 (as test_sporco_agreement); (b) multi-channel dictionary: 6
unit-norm 5×5×3 filters (SPORCO layout (kh, kw, C, M)), the 32×32 block mean of skimage's RGB
astronaut image, λ = 0.05; (c) multi-image: 4 unit-norm 5×5 filters, three 32×32 crops of the
camera block mean as one problem, stepped one image per chunk. SPORCO runs its default options except ``RelStopTol`` = 0 (a fixed
number of steps) and ``AuxVarObj`` = True (the objective at Y; this changes no iterate).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data
from sporco.admm import cbpdn

from sparse_ae.sparse_coding import admm, csc

LAM = 0.05
ITERS = 50
CHECKPOINTS = (10, 50)


def _unit_filters(shape, seed):
    filters = np.random.default_rng(seed).standard_normal(shape)
    return filters / np.sqrt(np.sum(filters ** 2, axis=tuple(range(len(shape) - 1))))


def _problem(name):
    """(SPORCO filters, signal (H, W) or (H, W, C), our kernel (kh, kw, M, C), our signal (H, W, C))."""
    if name == "single_channel":
        filters = _unit_filters((7, 7, 8), 0)
        image = data.camera().astype(np.float64).reshape(64, 8, 64, 8).mean(axis=(1, 3)) / 255.0
        return filters, image, filters[:, :, :, None], image[:, :, None]
    filters = _unit_filters((5, 5, 3, 6), 1)
    image = data.astronaut().astype(np.float64).reshape(32, 16, 32, 16, 3).mean(axis=(1, 3)) / 255.0
    return filters, image, filters.transpose(0, 1, 3, 2), image


def _sporco_run(filters, image, **options):
    opt = cbpdn.ConvBPDN.Options({"MaxMainIter": ITERS, "RelStopTol": 0.0, "AuxVarObj": True, **options})
    solver = cbpdn.ConvBPDN(filters, image, LAM, opt)
    solver.solve()
    return solver


@pytest.mark.parametrize("name", ["single_channel", "multi_channel"])
def test_admm_matches_sporco_iterate_for_iterate(name, single_threaded):  # pylint: disable=unused-argument
    filters, image, kernel, signal = _problem(name)
    solver = _sporco_run(filters, image)
    assert not solver.opt["fEvalX"] and solver.opt["gEvalY"] and solver.opt["RelaxParam"] == 1.8
    stats = solver.getitstat()
    with jax.enable_x64(True):
        codes, record = admm.cbpdn(jnp.asarray(kernel), jnp.asarray(signal), LAM, ITERS)
        assert codes.dtype == jnp.float64 and int(record.iterations) == ITERS
        record = jax.device_get(record)
    objective = np.asarray(stats.ObjFun)
    for k in CHECKPOINTS:
        assert abs(record.objective[k - 1] - objective[k - 1]) <= 1e-10 * objective[k - 1], (k, record.objective)
    np.testing.assert_allclose(record.rho, stats.Rho, rtol=1e-10)
    np.testing.assert_allclose(record.primal_residual, stats.PrimalRsdl, rtol=1e-8)
    np.testing.assert_allclose(record.dual_residual, stats.DualRsdl, rtol=1e-8)
    np.testing.assert_allclose(codes, solver.Y.reshape(codes.shape), atol=1e-10)
    assert len(np.unique(stats.Rho)) > 3 and objective[9] > objective[49]  # ρ adapts; a real trajectory


def test_admm_multi_image_in_chunks_matches_sporco(single_threaded, monkeypatch):  # pylint: disable=unused-argument
    """Three images, stepped in chunks of one, take SPORCO's multi-image steps (one ρ, residuals over all)."""
    filters = _unit_filters((5, 5, 4), 4)
    camera = data.camera().astype(np.float64).reshape(64, 8, 64, 8).mean(axis=(1, 3)) / 255.0
    images = np.stack([camera[:32, :32], camera[:32, 32:], camera[32:, 16:48]], axis=-1)  # (32, 32, 3)
    monkeypatch.setattr(admm, "CHUNK_BYTES", 2 * 4 * 32 * 32 * 8 - 1)  # under two images' float64 codes
    assert admm.images_per_chunk((3, 4, 32, 32), jnp.float64) == 1
    opt = cbpdn.ConvBPDN.Options({"MaxMainIter": ITERS, "RelStopTol": 0.0, "AuxVarObj": True})
    solver = cbpdn.ConvBPDN(filters, images, LAM, opt, dimK=1)
    solver.solve()
    stats = solver.getitstat()
    with jax.enable_x64(True):
        signal = jnp.asarray(images.transpose(2, 0, 1)[..., None])  # (3, 32, 32, 1)
        codes, record = admm.cbpdn(jnp.asarray(filters[:, :, :, None]), signal, LAM, ITERS)
        record = jax.device_get(record)
    np.testing.assert_allclose(record.objective, stats.ObjFun, rtol=1e-10)
    np.testing.assert_allclose(record.rho, stats.Rho, rtol=1e-10)
    np.testing.assert_allclose(record.primal_residual, stats.PrimalRsdl, rtol=1e-8)
    np.testing.assert_allclose(codes, solver.Y[:, :, 0].transpose(2, 0, 1, 3), atol=1e-10)


def test_admm_stops_at_tolerance_where_sporco_does(single_threaded):  # pylint: disable=unused-argument
    filters, image, kernel, signal = _problem("multi_channel")
    solver = _sporco_run(filters, image, RelStopTol=1e-3, MaxMainIter=500)
    with jax.enable_x64(True):
        _, record = admm.cbpdn(jnp.asarray(kernel), jnp.asarray(signal), LAM, 500, tol=1e-3)
    assert int(record.iterations) == solver.k < 500 and bool(record.converged)
    assert np.all(np.isnan(np.asarray(record.objective[solver.k:])))


def test_admm_without_objective_takes_the_same_steps():
    _, _, kernel, signal = _problem("multi_channel")
    with jax.enable_x64(True):
        codes, record = admm.cbpdn(kernel, signal, LAM, 20)
        quiet_codes, quiet = admm.cbpdn(kernel, signal, LAM, 20, record_objective=False)
        quiet, record = jax.device_get((quiet, record))
    assert np.all(np.isnan(quiet.objective)) and np.all(np.isfinite(record.objective))
    np.testing.assert_allclose(quiet_codes, codes, rtol=0, atol=1e-12)
    for field in ("primal_residual", "dual_residual", "rho"):
        np.testing.assert_allclose(getattr(quiet, field), getattr(record, field), rtol=1e-12)


def test_admm_float32_and_input_checks():
    _, _, kernel, signal = _problem("multi_channel")
    codes, record = admm.cbpdn(kernel.astype(np.float32), signal.astype(np.float32), LAM, 20)
    assert codes.dtype == record.objective.dtype == jnp.float32
    assert record.objective[19] < record.objective[0]
    with pytest.raises(ValueError, match="lam must be > 0"):
        admm.cbpdn(kernel, signal, 0.0, 5)
    with pytest.raises(ValueError, match="x \\(signal\\) has 1 channels but kernel .* expects C=3"):
        admm.cbpdn(kernel, signal[..., :1], LAM, 5)
    with pytest.raises(ValueError, match="NaN or Inf"):
        admm.cbpdn(kernel, np.full_like(signal, np.nan), LAM, 5)
    with pytest.raises(ValueError, match="num_iters must be an integer >= 1"):
        admm.cbpdn(kernel, signal, LAM, 0)


@pytest.fixture(name="small", scope="module")
def small_fixture():
    """4 unit-norm 5×5 filters (kh, kw, M, C) and two 24×24 seeded signals (2, 24, 24, 1), float32."""
    rng = np.random.default_rng(2)
    kernel = _unit_filters((5, 5, 4), 3)[:, :, :, None].astype(np.float32)
    return kernel, rng.standard_normal((2, 24, 24, 1)).astype(np.float32)


def test_solve_csc_picks_method_by_boundary_and_reaches_tolerance(small):
    kernel, signal = small
    _, circular = csc.solve_csc(kernel, signal, 0.2)
    _, zero = csc.solve_csc(kernel, signal, 0.2, boundary="zero")
    _, fista = csc.solve_csc(kernel, signal, 0.2, method="fista")
    assert (circular.method, zero.method, fista.method) == ("admm", "fista", "fista")
    for record in (circular, zero, fista):  # the default tol = 1e-4, well within max_iters = 1000
        assert record.converged and record.residual[-1] < 1e-4 and record.iterations < 1000
        assert record.objective.shape == (record.iterations,)
    # ADMM and FISTA solve the same circular problem; the zero boundary is a different one.
    assert abs(fista.objective[-1] - circular.objective[-1]) <= 1e-3 * circular.objective[-1]
    assert abs(zero.objective[-1] - circular.objective[-1]) > 1e-3 * circular.objective[-1]


def test_solve_csc_rejects_bad_methods(small):
    kernel, signal = small
    with pytest.raises(ValueError, match="method 'admm' solves the circular boundary only"):
        csc.solve_csc(kernel, signal, 0.2, boundary="zero", method="admm")
    with pytest.raises(ValueError, match="method must be None or one of"):
        csc.solve_csc(kernel, signal, 0.2, method="ista")
    with pytest.raises(ValueError, match="boundary must be one of"):
        csc.solve_csc(kernel, signal, 0.2, boundary="reflect")


def test_device_split_choice_and_errors(small):
    assert admm.split_for(4, 6, 2) == "images" and admm.split_for(1, 8, 2) == "atoms"
    with pytest.raises(ValueError, match="cannot split the codes of 2 image\\(s\\) with 6 atoms over 4 devices"):
        admm.split_for(2, 6, 4)
    with pytest.raises(ValueError, match="devices must name at least one device"):
        admm.device_mesh([])
    kernel, signal = small
    with pytest.raises(ValueError, match="devices splits the ADMM's codes only"):
        csc.solve_csc(kernel, signal, 0.2, boundary="zero", devices=jax.devices())
    problem = admm.make_problem(kernel, signal, 0.2)
    with pytest.raises(ValueError, match="run's mesh must have the one axis 'codes'"):
        admm.run(problem, admm.init_state(problem), 5, mesh=jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("x",)))


def test_admm_on_a_one_device_mesh_takes_the_same_steps(small):
    kernel, signal = small
    with jax.enable_x64(True):
        codes, record = admm.cbpdn(kernel.astype(np.float64), signal.astype(np.float64), 0.2, 30)
        split_codes, split = admm.cbpdn(kernel.astype(np.float64), signal.astype(np.float64), 0.2, 30,
                                        devices=jax.devices()[:1])
        record, split = jax.device_get((record, split))
    np.testing.assert_allclose(split_codes, codes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(split.objective, record.objective, rtol=1e-12)
    np.testing.assert_allclose(split.rho, record.rho, rtol=1e-12)
    nested = signal[:, None]  # (2, 1, 24, 24, 1): two leading image axes, which place flattens into one
    problem = admm.make_problem(kernel, nested, 0.2)
    mesh = admm.device_mesh(jax.devices()[:1])
    placed = admm.place(problem, admm.init_state(problem), mesh)
    assert placed[0].signal.shape == (2, 1, 24, 24) and placed[1].y.shape == (2, 4, 24, 24)
    state, placed_record = admm.run(*placed, 30, mesh=mesh)
    expected, expected_record = admm.run(problem, admm.init_state(problem), 30)
    np.testing.assert_allclose(state.y, expected.y[:, 0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(placed_record.objective, expected_record.objective, rtol=1e-6)


SPLIT_CHECK = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from sparse_ae.sparse_coding import admm, csc
rng = np.random.default_rng(5)
for channels, images, atoms, devices, split in [(1, 4, 6, 4, "images"), (1, 1, 8, 4, "atoms"), (3, 2, 6, 2, "images"),
                                                (3, 3, 4, 2, "atoms"), (1, 6, 4, 2, "images")]:
    kernel = rng.standard_normal((5, 5, atoms, channels))
    kernel /= np.sqrt(np.sum(kernel ** 2, axis=(0, 1, 3), keepdims=True))
    signal = rng.standard_normal((images, 24, 24, channels))
    assert admm.split_for(images, atoms, devices) == split
    admm.CHUNK_BYTES = 24 * 24 * atoms * 8  # one image per chunk: the split and the chunks together
    codes, record = admm.cbpdn(kernel, signal, 0.1, 500, tol=1e-3)
    split_codes, split_record = admm.cbpdn(kernel, signal, 0.1, 500, tol=1e-3, devices=jax.devices()[:devices])
    assert len(split_codes.sharding.device_set) == devices
    n = int(record.iterations)
    assert 10 < n < 500 and int(split_record.iterations) == n and bool(split_record.converged)
    np.testing.assert_allclose(split_record.objective[:n], record.objective[:n], rtol=1e-11)
    np.testing.assert_allclose(split_record.rho[:n], record.rho[:n], rtol=1e-11)
    np.testing.assert_allclose(split_codes, codes, rtol=0, atol=1e-10)
    mesh = admm.device_mesh(jax.devices()[:devices])
    problem = admm.make_problem(kernel, signal, 0.1)
    placed = admm.place(problem, admm.init_state(problem), mesh)  # on the devices before the run
    assert all(len(a.sharding.device_set) == devices for a in (placed[1].y, placed[1].u))
    state, placed_record = admm.run(*placed, 500, tol=1e-3, mesh=mesh)
    assert state.y.shape == (images, atoms, 24, 24) and len(state.y.sharding.device_set) == devices
    np.testing.assert_array_equal(placed_record.objective, split_record.objective)
    z, convergence = csc.solve_csc(kernel, signal, 0.1, tol=1e-3, devices=jax.devices()[:devices])
    assert convergence.method == "admm" and convergence.converged and len(z.sharding.device_set) == devices
print("split ok")
"""


@pytest.mark.slow
def test_admm_split_over_four_fake_devices_takes_the_same_steps(run_python):
    """By images and by atoms, one and three channels, chunked: the iterates of one device (float64)."""
    result = run_python(["-c", SPLIT_CHECK], devices=4, timeout=300, check=True)
    assert "split ok" in result.stdout
