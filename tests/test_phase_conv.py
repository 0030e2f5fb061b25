"""The phase-split transposed convolution equals XLA's, gradients included, and never dilates an input."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from sparse_ae.models import phase_conv

# (size, kernel, stride): the fast suite takes the CTRL / DCGAN case (4, 2) and four other shapes
# (odd size, kernel smaller than or not a multiple of the stride); the rest of the grid is slow.
FAST = {(8, 4, 2), (7, 3, 2), (7, 5, 3), (8, 2, 3), (8, 1, 2)}
CASES = [pytest.param(*case, marks=() if case in FAST else pytest.mark.slow)
         for case in itertools.product((7, 8), (1, 2, 3, 4, 5), (2, 3))]


def _inputs(n: int, k: int):
    kx, kw = jax.random.split(jax.random.key(n * 100 + k))
    c, m = 3, 4
    x = jax.random.normal(kx, (2, n, n - 1, c))  # H ≠ W: the axes are handled apart
    return x, jax.random.normal(kw, (k, k, c, m)) / k


def _xla_conv_transpose(x, w, s):
    return lax.conv_transpose(x, w, (s, s), "SAME", dimension_numbers=phase_conv.DIMENSIONS)


@pytest.mark.parametrize("n,k,s", CASES)
def test_equals_xla_values_and_gradients(n, k, s):
    x, w = _inputs(n, k)
    ours, xla = phase_conv.strided_conv_transpose, _xla_conv_transpose
    y = ours(x, w, s)
    np.testing.assert_allclose(y, xla(x, w, s), atol=1e-5)
    cotangent = jax.random.normal(jax.random.key(7), y.shape)
    grads = jax.vjp(lambda a, b: ours(a, b, s), x, w)[1](cotangent)
    expected = jax.vjp(lambda a, b: xla(a, b, s), x, w)[1](cotangent)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_no_dilated_input_in_forward_or_gradient():
    """What makes it fast on CPU: every convolution, gradients included, reads an undilated input."""
    x, w = _inputs(8, 4)

    def loss(a, b):
        return jnp.sum(phase_conv.strided_conv_transpose(a, b, 2) ** 2)

    jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(x, w)
    convs = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert len(convs) == 12  # 4 phases: forward, input and kernel gradients
    assert all(tuple(e.params["lhs_dilation"]) == (1, 1) for e in convs)
    native = jax.make_jaxpr(jax.grad(lambda a: jnp.sum(_xla_conv_transpose(a, w, 2) ** 2)))(x)
    assert any(tuple(e.params["lhs_dilation"]) != (1, 1) for e in native.eqns
               if e.primitive.name == "conv_general_dilated")  # the check can fail


def test_module_keeps_nnx_parameters_and_outputs():
    ours = phase_conv.conv_transpose(3, 5, 4, 2, "phases", rngs=nnx.Rngs(0))
    theirs = phase_conv.conv_transpose(3, 5, 4, 2, "xla", rngs=nnx.Rngs(0))
    assert type(theirs) is nnx.ConvTranspose
    jax.tree.map(np.testing.assert_array_equal, nnx.state(ours, nnx.Param), nnx.state(theirs, nnx.Param))
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)
    graphdef, params = nnx.split(ours)
    gradient = jax.make_jaxpr(jax.grad(lambda p, a: jnp.sum(nnx.merge(graphdef, p)(a) ** 2), argnums=(0, 1)))(params, x)
    assert all(tuple(e.params["lhs_dilation"]) == (1, 1) for e in gradient.eqns
               if e.primitive.name == "conv_general_dilated")  # the module took the phase path


def test_impl_is_checked_and_auto_picks_phases_on_cpu():
    assert phase_conv.resolve_impl("auto") == ("phases" if jax.default_backend() == "cpu" else "xla")
    with pytest.raises(ValueError, match="conv_impl='fast' is not one of"):
        phase_conv.resolve_impl("fast")
