"""The toy task ``csc_ae``: its FFT operator option computes what the spatial convolution does."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sparse_ae.train import task as task_lib, validation


@pytest.mark.slow  # model-level; the FFT operator itself is checked in test_fourier
def test_fft_operator_gives_the_spatial_models_codes_and_gradients(tiny_config):
    batch = {"image": jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))}
    results = {}
    for kind in ("spatial", "fft"):
        task = task_lib.get_task(tiny_config(**{"model.operator": kind}))   # 8×8 images, 4 atoms 3×3
        state = task.init(jax.random.key(1), batch)
        outputs = jax.jit(task.eval_step)(state, batch)
        _, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(2))
        results[kind] = (outputs["code"], outputs["reconstruction"], metrics["loss"], metrics["norm/grad"])
    for spatial, fft in zip(results["spatial"], results["fft"]):
        np.testing.assert_allclose(fft, spatial, rtol=1e-4, atol=1e-6)


def test_fft_operator_needs_stride_one_and_the_circular_boundary(tiny_config):
    config = tiny_config(**{"model.operator": "fft", "model.boundary": "zero"})
    with pytest.raises(ValueError, match="config.model.operator='fft' needs stride 1 and the circular boundary"):
        validation.validate_run(config, num_devices=1)
