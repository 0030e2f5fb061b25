"""Rate-reduction and CTRL game terms against a float64 NumPy reference written from the formulas."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.objectives import ctrl
from sparse_ae.objectives import rate_reduction as rr

EPS_SQ = 0.5


# ---------------------------------------------------------------- float64 NumPy reference
def ref_rate(z):
    """R(Z) = ½ logdet(I_d + d/(n ε²) ZᵀZ) with boolean-indexed data, d × d Gram always."""
    n, d = z.shape
    if n == 0:
        return 0.0
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * EPS_SQ) * z.T @ z)[1]


def ref_logdet(z, m):
    """logdet(I + d/(m ε²) ZᵀZ) with an explicit sample count m."""
    d = z.shape[1]
    return np.linalg.slogdet(np.eye(d) + d / (m * EPS_SQ) * z.T @ z)[1]


def ref_compressed(z, labels, k):
    n = len(z)
    return sum(np.sum(labels == j) / n * ref_rate(z[labels == j]) for j in range(k))


def ref_pair(z, zh, labels, k):
    """Σ_j [½ logdet(I + d/(2n_j ε²) [Z_j;Ẑ_j]ᵀ[Z_j;Ẑ_j]) − ¼ logdet(Z_j) − ¼ logdet(Ẑ_j)]."""
    total = 0.0
    for j in range(k):
        a, b = z[labels == j], zh[labels == j]
        if len(a) == 0:
            continue
        total += (0.5 * ref_logdet(np.concatenate([a, b]), 2 * len(a))
                  - 0.25 * ref_logdet(a, len(a)) - 0.25 * ref_logdet(b, len(b)))
    return total


def ref_T(z, zh, labels, k):
    rr_z = ref_rate(z) - ref_compressed(z, labels, k)
    rr_h = ref_rate(zh) - ref_compressed(zh, labels, k)
    return rr_z + rr_h + ref_pair(z, zh, labels, k)


def sphere(rng, n, d):
    z = rng.standard_normal((n, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, d, k = 48, 16, 5
    labels = rng.integers(0, k - 1, n)          # class k-1 is absent: must contribute 0
    z = sphere(rng, n, d)
    zh = sphere(rng, n, d) + 0.5 * z
    zh /= np.linalg.norm(zh, axis=1, keepdims=True)
    return z, zh, labels, k


def onehot(labels, k):
    return np.eye(k)[labels]


# ---------------------------------------------------------------- rates vs reference
@pytest.mark.parametrize("n", [6, 40])  # n < d uses the n × n Gram, n > d the d × d one
def test_coding_rate_matches_reference_both_gram_sides(n):
    z = sphere(np.random.default_rng(n), n, 16)
    with jax.enable_x64(True):
        got = float(rr.coding_rate(jnp.asarray(z), EPS_SQ))
    np.testing.assert_allclose(got, ref_rate(z), rtol=1e-10)
    np.testing.assert_allclose(float(rr.coding_rate(jnp.asarray(z, jnp.float32), EPS_SQ)),
                               ref_rate(z), rtol=1e-5)


@pytest.mark.parametrize("method", rr.LOGDET_METHODS)
def test_rates_match_reference(data, method):
    z, zh, labels, k = data
    m = onehot(labels, k)
    with jax.enable_x64(True):
        zj, zhj, mj = map(jnp.asarray, (z, zh, m))
        np.testing.assert_allclose(rr.compressed_rate(zj, mj, EPS_SQ, method),
                                   ref_compressed(z, labels, k), rtol=1e-9)
        np.testing.assert_allclose(rr.rate_reduction(zj, mj, EPS_SQ, method),
                                   ref_rate(z) - ref_compressed(z, labels, k), rtol=1e-9)
        np.testing.assert_allclose(jnp.sum(rr.pairwise_rate_reduction(zj, zhj, mj, EPS_SQ, method)),
                                   ref_pair(z, zh, labels, k), rtol=1e-9)
        terms = ctrl.ctrl_terms(zj, zhj, mj, form="multiclass", eps_sq=EPS_SQ, method=method)
        np.testing.assert_allclose(terms["T"], ref_T(z, zh, labels, k), rtol=1e-9)


def test_pair_weights_are_half_and_quarter():
    """One class: ΔR(Z, Ẑ) = ½ logdet(union, 2n) − ¼ logdet(Z, n) − ¼ logdet(Ẑ, n), and = 0 at Ẑ = Z."""
    rng = np.random.default_rng(3)
    z, zh = sphere(rng, 10, 8), sphere(rng, 10, 8)
    ones = np.ones((10, 1))
    with jax.enable_x64(True):
        got = float(rr.pairwise_rate_reduction(jnp.asarray(z), jnp.asarray(zh), jnp.asarray(ones), EPS_SQ)[0])
        same = float(rr.pairwise_rate_reduction(jnp.asarray(z), jnp.asarray(z), jnp.asarray(ones), EPS_SQ)[0])
        binary = ctrl.ctrl_terms(jnp.asarray(z), jnp.asarray(zh), None, form="binary", eps_sq=EPS_SQ)
    expected = 0.5 * ref_logdet(np.concatenate([z, zh]), 20) - 0.25 * ref_logdet(z, 10) - 0.25 * ref_logdet(zh, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(float(binary["T"]), expected, rtol=1e-10)
    assert abs(float(binary["rr_z"])) < 1e-12  # ΔR(Z, Π) vanishes with one class
    assert abs(same) < 1e-12


def test_samplewise_closed_form_and_form_equal_one_class_per_sample():
    rng = np.random.default_rng(4)
    n, d = 12, 8
    z = rng.standard_normal((n, d))  # closed form holds off the sphere too
    zh = rng.standard_normal((n, d))
    with jax.enable_x64(True):
        got = np.asarray(rr.samplewise_rate_reduction(jnp.asarray(z), jnp.asarray(zh), EPS_SQ))
        zs, zhs = sphere(rng, n, d), sphere(rng, n, d)
        terms = ctrl.ctrl_terms(jnp.asarray(zs), jnp.asarray(zhs), None, form="samplewise", eps_sq=EPS_SQ)
    expected = [0.5 * ref_logdet(np.stack([a, b]), 2) - 0.25 * ref_logdet(a[None], 1) - 0.25 * ref_logdet(b[None], 1)
                for a, b in zip(z, zh)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # the sample-wise game is the multiclass game with every sample its own class
    np.testing.assert_allclose(float(terms["T"]), ref_T(zs, zhs, np.arange(n), n), rtol=1e-9)


def test_invariant_to_sample_order(data):
    z, zh, labels, k = data
    perm = np.random.default_rng(7).permutation(len(z))
    kw = dict(form="multiclass", eps_sq=EPS_SQ, samplewise_weight=0.3)
    a = ctrl.ctrl_terms(jnp.asarray(z, jnp.float32), jnp.asarray(zh, jnp.float32), jnp.asarray(onehot(labels, k)), **kw)
    b = ctrl.ctrl_terms(jnp.asarray(z[perm], jnp.float32), jnp.asarray(zh[perm], jnp.float32),
                        jnp.asarray(onehot(labels[perm], k)), **kw)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=2e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("method", rr.LOGDET_METHODS)
def test_gradients_finite_with_rank_deficient_classes(data, method):
    z, zh, labels, k = data  # d = 16 > n_j for most classes: many unit eigenvalues
    m = jnp.asarray(onehot(labels, k), jnp.float32)

    def value(z, zh):
        z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
        return ctrl.ctrl_terms(z, zh, m, form="multiclass", eps_sq=EPS_SQ, method=method)["T"]

    gz, gh = jax.jit(jax.grad(value, argnums=(0, 1)))(jnp.asarray(z, jnp.float32), jnp.asarray(zh, jnp.float32))
    assert np.all(np.isfinite(gz)) and np.all(np.isfinite(gh))
    assert float(jnp.abs(gz).max()) > 0


def test_bad_input_errors():
    z = jnp.ones((4, 3)) / jnp.sqrt(3.0)
    with pytest.raises(ValueError, match="non-finite"):
        rr.coding_rate(z.at[0, 0].set(jnp.nan), EPS_SQ)
    with pytest.raises(ValueError, match="needs class membership"):
        ctrl.ctrl_terms(z, z, None, form="multiclass", eps_sq=EPS_SQ)
    with pytest.raises(ValueError, match="form="):
        ctrl.ctrl_terms(z, z, None, form="triple", eps_sq=EPS_SQ)
    with pytest.raises(ValueError, match="logdet method"):
        rr.logdet_spd(jnp.eye(2), "qr")
    with pytest.raises(ValueError, match="membership"):
        rr.group_stats(z, jnp.ones((3, 2)))


# ---------------------------------------------------------------- sharded == single device
SHARDED = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from sparse_ae.objectives import ctrl
    assert jax.device_count() == 8, jax.devices()
    rng = np.random.default_rng(0)
    n, d, k = 64, 16, 10
    z = rng.standard_normal((n, d)).astype(np.float32); zh = rng.standard_normal((n, d)).astype(np.float32)
    m = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
    out = {}
    for form in ctrl.FORMS:
        def value(z, zh, m):
            z = z / jnp.linalg.norm(z, axis=1, keepdims=True); zh = zh / jnp.linalg.norm(zh, axis=1, keepdims=True)
            fn = lambda z, zh, m, axis_name: ctrl.ctrl_terms(z, zh, m, form=form, eps_sq=0.5,
                                                             samplewise_weight=0.5, axis_name=axis_name)
            t = ctrl.over_global_batch(fn)(z, zh, m)
            return t["T"], t
        f = jax.jit(jax.value_and_grad(value, argnums=(0, 1), has_aux=True))
        (t1, _), g1 = f(z, zh, m)
        mesh = jax.make_mesh((8, 1), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
        with jax.set_mesh(mesh):
            s = NamedSharding(mesh, P("data"))
            args = [jax.device_put(a, s) for a in (z, zh, m)]
            hlo = f.lower(*args).as_text()
            (t8, _), g8 = f(*args)
        out[form] = dict(t1=float(t1), t8=float(t8), psum="all_reduce" in hlo,
                         gdiff=max(float(jnp.abs(a - b).max()) for a, b in zip(g1, g8)),
                         gmax=max(float(jnp.abs(a).max()) for a in g1))
    print(json.dumps(out))
""")


def run_fresh(code, env_extra=None, timeout=120):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow  # starts processes
def test_sharded_equals_single_device():
    res = run_fresh(SHARDED, {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for form, r in out.items():
        assert r["psum"], form
        np.testing.assert_allclose(r["t8"], r["t1"], rtol=1e-5, err_msg=form)
        assert r["gdiff"] <= 1e-5 * max(1.0, r["gmax"]), (form, r)


# ---------------------------------------------------------------- no deadlock in fresh processes
FRESH_STEP = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from sparse_ae.objectives import ctrl
    rng = np.random.default_rng(0)
    n, d, k = 256, 128, 10
    z = jnp.asarray(rng.standard_normal((n, d)), jnp.float32); zh = jnp.asarray(rng.standard_normal((n, d)), jnp.float32)
    m = jax.nn.one_hot(jnp.asarray(rng.integers(0, k, n)), k)
    for method in ("slogdet", "cholesky", "eigh"):
        def value(z, zh):
            z = z / jnp.linalg.norm(z, axis=1, keepdims=True); zh = zh / jnp.linalg.norm(zh, axis=1, keepdims=True)
            return ctrl.ctrl_terms(z, zh, m, form="multiclass", eps_sq=0.5, samplewise_weight=1.0, method=method)["T"]
        v, g = jax.jit(jax.value_and_grad(value, argnums=(0, 1)))(z, zh)
        assert np.isfinite(float(v))
    print("ok")
""")


@pytest.mark.slow  # starts processes
def test_compiled_rate_step_runs_in_fresh_processes():
    """No logdet path may hang: three separate vmapped batched Cholesky factorisations in one
    program deadlocked in 3 of 4 fresh XLA:CPU processes here; these formulations must not."""
    procs = [subprocess.Popen([sys.executable, "-c", FRESH_STEP], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    for p in procs:
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("compiled rate-reduction step hung in a fresh process")
        assert p.returncode == 0 and out.startswith("ok"), err[-2000:]
