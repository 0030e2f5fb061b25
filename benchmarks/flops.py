"""Useful multiply-add FLOPs of the DCEA network, the yardstick of ``benchmarks.dcea_perf``."""

from __future__ import annotations

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
