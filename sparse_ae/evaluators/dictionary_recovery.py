"""Dictionary recovery against the ground-truth templates of ``binomial_spikes``.

Per template h_c (unit norm) and learned atom ĥ (normalised): error √(1 − ⟨h_c, ĥ⟩²) after the
best one-to-one matching of atoms to templates (Hungarian algorithm on |⟨h, ĥ⟩|; the square makes
the error sign-invariant). With ``max_shift`` = S > 0 each pair's ⟨h, ĥ⟩ is the largest over integer
delays of ĥ by at most S samples (zero-filled), for the delay ambiguity of convolutional atoms.
Scalars (split-independent, keyed ``dictionary/...``): ``err_max``, ``err_mean`` and ``err_<c>``
per template, and ``err_max_shift<S>`` and ``err_shift<S>_<c>`` with delays up to ``SHIFT``
samples. Images: templates and matched atoms as 1-row strips.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from sparse_ae.data import binomial_spikes
from sparse_ae.data.config import parse


SHIFT = 5  # delays (samples) of the shift-tolerant error: a tenth of the templates' length 50


def _correlations(true: np.ndarray, learned: np.ndarray, max_shift: int) -> np.ndarray:
    """(C, M) max over delays |d| <= max_shift of |Σ_k h[k] ĥ[k − d]| of unit rows."""
    length = true.shape[1]
    full = np.array([[np.correlate(h, a, "full") for a in learned] for h in true])  # delay d at K − 1 + d
    return np.abs(full[..., length - 1 - max_shift:length + max_shift]).max(axis=-1)


def template_errors(true: np.ndarray, learned: np.ndarray, max_shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Errors (C,) and the matched atom index per template; ``true`` (C, K), ``learned`` (M, K), M >= C."""
    true = np.asarray(true, np.float64)
    learned = np.asarray(learned, np.float64)
    if true.ndim != 2 or learned.ndim != 2 or true.shape[1] != learned.shape[1]:
        raise ValueError(f"templates (C, K) and atoms (M, K) need one length K, got {true.shape} and {learned.shape}")
    if learned.shape[0] < true.shape[0]:
        raise ValueError(f"need at least as many atoms ({learned.shape[0]}) as templates ({true.shape[0]})")
    unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
    corr = _correlations(unit(true), unit(learned), max_shift)
    rows, cols = optimize.linear_sum_assignment(-corr)
    errors = np.sqrt(np.clip(1.0 - corr[rows, cols] ** 2, 0.0, None))
    return errors, cols


def evaluate(task, state, datasets, config):
    """Template errors of the task's decoder dictionary (datasets unused: the dictionary is global)."""
    del datasets
    if task.dictionary is None:
        raise ValueError(f"evaluator 'dictionary_recovery' needs a task with a dictionary (Task.dictionary); "
                         f"task {config.task!r} has none: remove it from config.eval.evaluators")
    true = binomial_spikes.templates(parse(config.data).spikes)
    kernel = np.asarray(task.dictionary(state))  # (1, K, M, 1)
    if kernel.shape[0] != 1 or kernel.shape[3] != 1 or kernel.shape[1] != true.shape[1]:
        raise ValueError(f"dictionary_recovery needs a 1-D single-channel kernel (1, {true.shape[1]}, M, 1), "
                         f"got {kernel.shape}")
    learned = kernel[0, :, :, 0].T
    errors, matched = template_errors(true, learned)
    shifted, _ = template_errors(true, learned, SHIFT)
    scalars = {"dictionary/err_max": float(errors.max()), "dictionary/err_mean": float(errors.mean()),
               **{f"dictionary/err_{c}": float(e) for c, e in enumerate(errors)},
               f"dictionary/err_max_shift{SHIFT}": float(shifted.max()),
               **{f"dictionary/err_shift{SHIFT}_{c}": float(e) for c, e in enumerate(shifted)}}
    signs = np.sign(np.sum(true * learned[matched], axis=1, keepdims=True))
    aligned = signs * learned[matched] / np.linalg.norm(learned[matched], axis=1, keepdims=True)
    images = {f"dictionary/{name}": _as_strips(strips) for name, strips in (("templates", true), ("learned", aligned))}
    return scalars, images


def _as_strips(signals: np.ndarray) -> np.ndarray:
    """(N, L) -> (N, 1, L, 1), each signal min-max scaled to [0, 1] (drawn as line plots)."""
    low, high = signals.min(axis=1, keepdims=True), signals.max(axis=1, keepdims=True)
    return ((signals - low) / np.maximum(high - low, 1e-12))[:, None, :, None]
