"""Exponential families: exact log-likelihoods against scipy.stats, gradients, sample-space checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from sparse_ae.sparse_coding import families

TRIALS = 5
CASES = [("gaussian", 1), ("binomial", TRIALS), ("poisson", 1)]


def _sample(name: str, trials: int, shape=(3, 7), seed: int = 0):
    """(y, eta) as float64 numpy: y drawn from the family at natural parameter eta."""
    rng = np.random.default_rng(seed)
    eta = rng.normal(size=shape)
    if name == "gaussian":
        y = eta + rng.normal(size=shape)
    elif name == "binomial":
        y = rng.binomial(trials, special.expit(eta)).astype(np.float64)
    else:
        y = rng.poisson(np.exp(eta)).astype(np.float64)
    return y, eta


def _scipy_logpmf(name: str, trials: int, y, eta):
    if name == "gaussian":
        return stats.norm(loc=eta, scale=1.0).logpdf(y)
    if name == "binomial":
        return stats.binom(trials, special.expit(eta)).logpmf(y)
    return stats.poisson(np.exp(eta)).logpmf(y)


def _scipy_mean(name: str, trials: int, eta):
    if name == "gaussian":
        return eta
    if name == "binomial":
        return stats.binom(trials, special.expit(eta)).mean()
    return stats.poisson(np.exp(eta)).mean()


@pytest.mark.parametrize("name,trials", CASES)
@pytest.mark.parametrize("x64", [False, True])
def test_log_likelihood_and_mean_match_scipy(name, trials, x64):
    y, eta = _sample(name, trials)
    expected = np.sum(_scipy_logpmf(name, trials, y, eta))
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        fam = families.get_family(name, trials=trials)
        got = fam.log_likelihood(jnp.asarray(y, dtype), jnp.asarray(eta, dtype))
        mean = fam.inverse_link(jnp.asarray(eta, dtype))
        assert got.dtype == dtype and mean.dtype == dtype
    rtol = 1e-12 if x64 else 1e-5
    np.testing.assert_allclose(float(got), expected, rtol=rtol)
    np.testing.assert_allclose(mean, _scipy_mean(name, trials, eta), rtol=rtol)


@pytest.mark.parametrize("name,trials", CASES)
def test_nll_is_minus_log_likelihood_up_to_documented_constant(name, trials):
    y, eta = _sample(name, trials)
    with jax.enable_x64(True):
        fam = families.get_family(name, trials=trials)
        for shift in (0.0, 0.7):  # the constant must not depend on eta
            gap = -fam.log_likelihood(y, eta + shift) - fam.nll(y, eta + shift)
            if name == "gaussian":
                constant = 0.5 * np.log(2 * np.pi) * y.size
            elif name == "binomial":
                constant = -np.sum(np.log(special.comb(trials, y)))
            else:
                constant = np.sum(special.gammaln(y + 1))
            np.testing.assert_allclose(float(gap), constant, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,trials", CASES)
@pytest.mark.parametrize("x64", [False, True])
def test_data_grad_is_gradient_of_nll_and_transforms_compose(name, trials, x64):
    y, eta = _sample(name, trials, shape=(4, 6))
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        fam = families.get_family(name, trials=trials)
        y, eta = jnp.asarray(y, dtype), jnp.asarray(eta, dtype)
        auto = jax.grad(fam.nll, argnums=1)(y, eta)
        got = jax.jit(fam.data_grad)(y, eta)
        per_row = jax.vmap(fam.nll)(y, eta).sum()
        total = fam.nll(y, eta)
        assert got.dtype == dtype and got.shape == eta.shape
    rtol = 1e-12 if x64 else 1e-5
    np.testing.assert_allclose(got, auto, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(per_row, total, rtol=rtol)


@pytest.mark.parametrize("name,trials,bad,message", [
    ("poisson", 1, [0.0, -1.0, 2.0], ">= 0"),
    ("poisson", 1, [0.0, 1.5, 2.0], "integer"),
    ("binomial", 3, [0.0, 4.0, 2.0], "<= trials=3"),
    ("binomial", 3, [0.0, -1.0, 2.0], ">= 0"),
    ("binomial", 3, [0.0, 0.5, 2.0], "integer"),
    ("gaussian", 1, [0.0, np.nan, 2.0], "finite"),
    ("poisson", 1, [0.0, np.inf, 2.0], "finite"),
])
def test_validate_rejects_observations_outside_the_sample_space(name, trials, bad, message):
    fam = families.get_family(name, trials=trials)
    with pytest.raises(ValueError, match=message):
        fam.validate(jnp.asarray(bad))


@pytest.mark.parametrize("name,trials", CASES)
def test_validate_accepts_samples_and_traced_values(name, trials):
    fam = families.get_family(name, trials=trials)
    y, _ = _sample(name, trials)
    fam.validate(y)
    fam.validate(jnp.asarray(y, jnp.float32))
    jax.jit(lambda v: fam.validate(v) or v)(-jnp.ones(3))  # not inspectable inside jit: no error


def test_get_family_rejects_bad_arguments():
    assert families.FAMILIES == ("gaussian", "binomial", "poisson")
    with pytest.raises(ValueError, match="not one of"):
        families.get_family("bernoulli")
    for trials in (0, 2.5, True):
        with pytest.raises(ValueError, match="trials"):
            families.get_family("binomial", trials=trials)
