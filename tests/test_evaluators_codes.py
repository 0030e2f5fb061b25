"""Code evaluators (SC-VAE): code edits and interpolation, patch crops of code cells, codebook usage."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae.evaluators import code_edits, code_sparsity, patch_clusters
from sparse_ae.train.tasks import sc_vae as task_lib


def test_code_edit_helpers():
    code = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    values = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0]])
    edited = code_edits.traversal_codes(code, np.array([2, 0]), values)
    assert edited.shape == (6, 2, 2, 3)
    np.testing.assert_allclose(edited[0, ..., 2], code[..., 2] - 1)
    np.testing.assert_allclose(edited[5, ..., 0], code[..., 0] + 2)
    np.testing.assert_allclose(edited[5, ..., 1:], code[..., 1:])
    interp = code_edits.interpolation_codes(code, -code, 3)
    np.testing.assert_allclose(interp[0], code)
    np.testing.assert_allclose(interp[1], 0.0)
    np.testing.assert_allclose(interp[2], -code)
    assert list(code_edits.top_components(np.array([[0.1, -3.0, 1.0]]), 2)) == [1, 2]

def test_patch_and_codebook_helpers():
    images = np.arange(1 * 8 * 8, dtype=np.float32).reshape(1, 8, 8, 1)
    patch = patch_clusters.cell_patches(images, np.array([[0, 1, 1]]), (4, 4), context=2)
    np.testing.assert_array_equal(patch[0, 1:3, 1:3, 0], images[0, 2:4, 2:4, 0])  # the cell sits in the middle
    assert patch.shape == (1, 4, 4, 1)
    usage, perplexity = code_sparsity.codebook_usage(np.array([0, 0, 1, 1]), 4)
    assert usage == 0.5 and perplexity == pytest.approx(2.0)
    np.testing.assert_allclose(task_lib.codebook_stats(jnp.array([0, 0, 1, 1]), 4)["vq/perplexity"], 2.0, rtol=1e-6)
