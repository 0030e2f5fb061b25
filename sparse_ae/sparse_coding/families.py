"""Natural exponential families with canonical links: Gaussian, Binomial (M trials), Poisson.

Conventions: observations ``y`` and natural parameters ``eta`` are arrays of the same
(broadcastable) shape; every family is parameterised by its natural parameter η with
log p(y | η) = y·η − A(η) + c(y):

- gaussian: y ~ N(η, 1), A(η) = η²/2, mean η (identity link);
- binomial: y ~ Binomial(M, sigmoid(η)), A(η) = M·softplus(η), mean M·sigmoid(η);
- poisson:  y ~ Poisson(exp(η)), A(η) = exp(η), mean exp(η).

``nll(y, eta)`` = Σ [A(η) − y·η] + (Gaussian only) Σ y²/2, summed over all elements: it drops
the η-independent constants −c(y) that have no gradient (log 2π/2, −log C(M, y), log y!).
``log_likelihood(y, eta)`` is the exact Σ log p(y | η) including those constants (equal to
scipy.stats' logpdf/logpmf summed). ``data_grad(y, eta)`` = ∂nll/∂η = mean(η) − y, elementwise.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

FAMILIES = ("gaussian", "binomial", "poisson")


class Family(NamedTuple):
    """An exponential family in natural parameterisation (see the module docstring).

    inverse_link(eta) -> mean of y; nll(y, eta) -> scalar (constants dropped);
    log_likelihood(y, eta) -> scalar (exact); data_grad(y, eta) -> ∂nll/∂η (shape of eta);
    validate(y) raises ValueError if concrete observations are outside the sample space.
    """

    name: str
    trials: int
    inverse_link: Callable[[jax.Array], jax.Array]
    nll: Callable[[jax.Array, jax.Array], jax.Array]
    log_likelihood: Callable[[jax.Array, jax.Array], jax.Array]
    data_grad: Callable[[jax.Array, jax.Array], jax.Array]
    validate: Callable[[jax.Array], None]


def _check_observations(name: str, y, *, integer: bool, low: float | None, high: float | None) -> None:
    """ValueError naming ``y`` when concrete observations leave the family's sample space.

    Traced values (inside jit/grad/vmap) cannot be inspected and are accepted as they are.
    """
    if isinstance(y, jax.core.Tracer):
        return
    values = np.asarray(y)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"y must be finite for the {name} family; got NaN or Inf")
    if low is not None and np.any(values < low):
        raise ValueError(f"y must be >= {low:g} for the {name} family (counts); got min {values.min():g}")
    if high is not None and np.any(values > high):
        raise ValueError(f"y must be <= trials={high:g} for the {name} family; got max {values.max():g}. "
                         "Pass the right `trials` to get_family")
    if integer and np.any(values != np.round(values)):
        raise ValueError(f"y must hold integer counts for the {name} family; got non-integer values "
                         "(round or re-simulate the observations)")


def _gaussian() -> Family:
    def nll(y, eta):
        return 0.5 * jnp.sum((y - eta) ** 2)

    def log_likelihood(y, eta):
        size = np.prod(jnp.broadcast_shapes(jnp.shape(y), jnp.shape(eta)))
        return -nll(y, eta) - 0.5 * np.log(2 * np.pi) * size

    return Family(
        name="gaussian", trials=1, inverse_link=lambda eta: eta, nll=nll, log_likelihood=log_likelihood,
        data_grad=lambda y, eta: eta - y,
        validate=lambda y: _check_observations("gaussian", y, integer=False, low=None, high=None))


def _binomial(trials: int) -> Family:
    def nll(y, eta):
        return jnp.sum(trials * jax.nn.softplus(eta) - y * eta)

    def log_likelihood(y, eta):
        log_choose = gammaln(trials + 1.0) - gammaln(y + 1.0) - gammaln(trials - y + 1.0)
        return jnp.sum(log_choose + y * eta - trials * jax.nn.softplus(eta))

    return Family(
        name="binomial", trials=trials, inverse_link=lambda eta: trials * jax.nn.sigmoid(eta), nll=nll,
        log_likelihood=log_likelihood, data_grad=lambda y, eta: trials * jax.nn.sigmoid(eta) - y,
        validate=lambda y: _check_observations("binomial", y, integer=True, low=0, high=trials))


def _poisson() -> Family:
    def nll(y, eta):
        return jnp.sum(jnp.exp(eta) - y * eta)

    def log_likelihood(y, eta):
        return jnp.sum(y * eta - jnp.exp(eta) - gammaln(y + 1.0))

    return Family(
        name="poisson", trials=1, inverse_link=jnp.exp, nll=nll, log_likelihood=log_likelihood,
        data_grad=lambda y, eta: jnp.exp(eta) - y,
        validate=lambda y: _check_observations("poisson", y, integer=True, low=0, high=None))


def get_family(name: str, trials: int = 1) -> Family:
    """The family called ``name`` (one of :data:`FAMILIES`); ``trials`` = M for the binomial."""
    if name not in FAMILIES:
        raise ValueError(f"family name={name!r} is not one of {FAMILIES}")
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1 (binomial number of trials), got {trials!r}")
    if name == "gaussian":
        return _gaussian()
    if name == "binomial":
        return _binomial(int(trials))
    return _poisson()
