"""FLOP counts: of any traced step (``model_flops``, read from its jaxpr; used by
``benchmarks.accelerator`` and ``benchmarks.paper_scale``) and the closed form of the DCEA
network's useful multiply-adds (``dcea_conv_flops``, the yardstick of ``benchmarks.dcea_perf``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from jax.extend import core as jex_core

from sparse_ae.models.dcea import DCEAConfig, canvas_layout
from sparse_ae.sparse_coding.operators import code_size


def dcea_conv_flops(cfg: DCEAConfig, image_hw: tuple[int, int], batch: int = 1) -> dict[str, float]:
    """Useful multiply-add FLOPs (2 per MAC) of one forward pass and of one training step.

    Per canvas and conv: 2 · (Hp/s · Wp/s) · M · kh · kw · C. A forward pass runs 2T(1 + R) + 1
    convs (synthesis and analysis per iteration, the first synthesis of a zero code included, over
    1 + R solves, plus the decoder); a training step ~3× the forward (backward = 2 convs per conv:
    input and kernel gradients).
    """
    (hp, wp), offsets, boundary = canvas_layout(*image_hw, cfg.kernel_size, cfg.stride, cfg.shift_average, cfg.layout,
                                                cfg.boundary)
    kh, kw = cfg.kernel_hw
    codes = code_size(hp, kh, cfg.stride, boundary) * code_size(wp, kw, cfg.stride, boundary)
    per_conv = 2.0 * codes * cfg.num_filters * kh * kw * cfg.channels
    forward = batch * len(offsets) * (2 * cfg.num_iters * (1 + cfg.reweight_passes) + 1) * per_conv
    return {"forward": forward, "train_step": 3.0 * forward}


def _subjaxprs(value: Any) -> list:
    """The jaxprs in one equation parameter (a jaxpr, a closed jaxpr or a tuple of them)."""
    if isinstance(value, jex_core.ClosedJaxpr):
        return [value.jaxpr]
    if isinstance(value, jex_core.Jaxpr):
        return [value]
    if isinstance(value, (tuple, list)):
        return [j for v in value for j in _subjaxprs(v)]
    return []


def _executed(eqn) -> list:
    """The jaxprs an equation runs: those of its parameters, but of a linear solve only ``solve``
    (its matvec and transposes are there for differentiation)."""
    if eqn.primitive.name == "custom_linear_solve":
        return _subjaxprs(eqn.params["jaxprs"].solve)
    return [j for value in eqn.params.values() for j in _subjaxprs(value)]


def _dot_flops(eqn) -> float:
    """FLOPs of a real ``dot_general``: every lhs entry meets every free rhs entry, a multiply and
    an add each (a multiply alone without contracting axes)."""
    (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    free = math.prod(d for i, d in enumerate(rhs) if i not in (*rhs_contract, *rhs_batch))
    return (2.0 if rhs_contract else 1.0) * math.prod(lhs) * free


def _conv_flops(eqn) -> float:
    """2 × multiply-adds of a ``conv_general_dilated``, counting per spatial axis only the
    (output, kernel tap) pairs that land on an input entry, not on padding or dilation zeros."""
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    lhs, rhs, out = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape, eqn.outvars[0].aval.shape
    taps = 1
    for i, (l, r, o) in enumerate(zip(lhs_spec[2:], rhs_spec[2:], out_spec[2:])):
        where = (np.arange(out[o])[:, None] * p["window_strides"][i]
                 + np.arange(rhs[r])[None, :] * p["rhs_dilation"][i] - p["padding"][i][0])
        dilation = p["lhs_dilation"][i]
        taps *= int(np.count_nonzero((where >= 0) & (where <= (lhs[l] - 1) * dilation) & (where % dilation == 0)))
    return 2.0 * out[out_spec[0]] * out[out_spec[1]] * rhs[rhs_spec[1]] * taps


def model_flops(jaxpr) -> tuple[float, int]:
    """(2 × multiply-adds of the matmuls and convolutions of ``jaxpr``, how many while loops with
    such work it holds). A scan's body counts ``length`` times, a cond its costliest branch, a
    while loop's body once (its trip count is not known before it runs)."""
    total, loops = 0.0, 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
        elif name == "conv_general_dilated":
            total += _conv_flops(eqn)
        inner = [model_flops(j) for j in _executed(eqn)]
        if not inner:
            continue
        flops, count = max(inner) if name == "cond" else map(sum, zip(*inner))
        flops *= eqn.params["length"] if name == "scan" else 1
        total += flops
        loops += count + (name == "while" and flops > 0)
    return total, loops
