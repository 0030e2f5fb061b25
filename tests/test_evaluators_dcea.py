"""DCEA's evaluators: template recovery up to permutation, sign and delay (read through the task's
declared dictionary); the paper's Poisson PSNR."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from conftest import load_config
from sparse_ae.data import binomial_spikes
from sparse_ae.evaluators import dictionary_recovery, likelihood, poisson_denoising
from sparse_ae.sparse_coding import families
from sparse_ae.train.tasks import dcea as dcea_task


def test_template_errors_match_permutation_sign_and_angle():
    h = binomial_spikes.templates(binomial_spikes.SpikesConfig(template_kind="random_smooth"))
    errors, matched = dictionary_recovery.template_errors(h, -3.0 * h[[2, 0, 1]])
    np.testing.assert_allclose(errors, 0.0, atol=1e-3)
    assert list(matched) == [1, 2, 0]
    other = np.linalg.qr(np.concatenate([h.T, np.random.default_rng(0).standard_normal((50, 3))], 1))[0][:, 3:].T
    theta = np.array([0.05, 0.1, 0.3])
    rotated = np.cos(theta)[:, None] * h + np.sin(theta)[:, None] * other
    errors, _ = dictionary_recovery.template_errors(h, rotated)
    np.testing.assert_allclose(errors, np.sin(theta), atol=2e-3)
    # Atoms delayed by 2 samples: the strict error sees the delay, the shift-tolerant one does not.
    delayed = np.concatenate([np.zeros((3, 2)), h[:, :-2]], axis=1)
    unit = h / np.linalg.norm(h, axis=1, keepdims=True)
    kept = np.sum(unit[:, :-2] * delayed[:, 2:], axis=1) / np.linalg.norm(delayed, axis=1)
    strict, _ = dictionary_recovery.template_errors(h, delayed)
    tolerant, matched = dictionary_recovery.template_errors(h, delayed, max_shift=3)
    assert list(matched) == [0, 1, 2] and np.all(strict > 0.1)
    np.testing.assert_allclose(tolerant, np.sqrt(1 - kept ** 2), atol=1e-6)

def test_peak_psnr_is_the_paper_formula():
    clean = np.random.default_rng(0).uniform(0, 0.8, (2, 16, 16, 1))
    estimate = clean + 0.01
    expected = 20 * np.log10(clean.max(axis=(1, 2, 3))) - 10 * np.log10(1e-4)
    np.testing.assert_allclose(poisson_denoising.peak_psnr(clean, estimate), expected, rtol=1e-6)


def test_dictionary_recovery_reads_the_tasks_declared_dictionary():
    config = load_config("configs/dcea_binomial_ecdl.py")
    spikes = binomial_spikes.SpikesConfig()
    example = binomial_spikes.simulate(spikes, 500, np.random.default_rng(0))
    task = dcea_task.make_task(config)
    state = task.init(jax.random.key(0), {k: v[None] for k, v in example.items()})
    scalars, images = dictionary_recovery.evaluate(task, state, {}, config)
    assert 0.0 <= scalars["dictionary/err_mean"] <= scalars["dictionary/err_max"] <= 1.0
    assert images["dictionary/templates"].shape == images["dictionary/learned"].shape == (spikes.num_templates, 1, spikes.template_length, 1)
    with pytest.raises(ValueError, match="needs a task with a dictionary"):
        dictionary_recovery.evaluate(dataclasses.replace(task, dictionary=None), state, {}, config)


def test_initial_dictionary_and_held_out_likelihood(tmp_path):
    """``model.init_dictionary`` starts the kernel from a file (the recovery errors are then those of
    the file's atoms); ``likelihood`` averages eval_step's per-example NLL per bin."""
    true = binomial_spikes.templates(binomial_spikes.SpikesConfig())
    np.save(tmp_path / "start.npy", true.T[None, :, :, None])
    config = load_config("configs/dcea_binomial_ecdl.py:runlocal")
    config.model.init_dictionary = str(tmp_path / "start.npy")
    examples = [binomial_spikes.simulate(binomial_spikes.SpikesConfig(), 500, np.random.default_rng(i)) for i in range(3)]
    batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    task = dcea_task.make_task(config)
    task = dataclasses.replace(task, eval_step=jax.jit(task.eval_step))   # as the loop runs it: compiled once
    state = task.init(jax.random.key(0), batch)
    scalars, _ = dictionary_recovery.evaluate(task, state, {}, config)
    assert scalars["dictionary/err_max"] < 1e-3 and scalars[f"dictionary/err_shift{dictionary_recovery.SHIFT}_2"] < 1e-3
    outputs = task.eval_step(state, batch)
    family = families.get_family("binomial", trials=config.model.trials)
    expected = [float(family.nll(batch["counts"][i], outputs["natural"][i])) / 500 for i in range(3)]
    np.testing.assert_allclose(outputs["nll"], expected, rtol=1e-5)
    scalars, _ = likelihood.evaluate(task, state, {"test": lambda: iter([{**batch, "valid": np.ones(3, bool)}])}, config)
    assert scalars["test/nll"] == pytest.approx(np.mean(expected), rel=1e-5)
    np.save(tmp_path / "wrong.npy", true.T[None, :40, :, None])
    config.model.init_dictionary = str(tmp_path / "wrong.npy")
    with pytest.raises(ValueError, match=r"config.model.init_dictionary=.*shape \(1, 40, 3, 1\); the model's dictionary is \(1, 50, 3, 1\)"):
        dcea_task.make_task(config)
