"""The default digits classifier: trained on first use into the cache, reused after, never half
written, and a damaged copy named with what to do."""

from __future__ import annotations

import re

import pytest
from flax import nnx

from sparse_ae.evaluators import _digits_classifier_training as training
from sparse_ae.models import digits_classifier

STEPS = 30  # enough to exercise training; the real default (2000 steps) is left to the slow run of main


def mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_trained_once_then_reused(tmp_path, monkeypatch):
    folder = training.default_classifier(8, tmp_path, steps=STEPS)
    assert folder == tmp_path / "digits_classifier" / f"8px-f{training.FEATURE_DIM}-s{STEPS}-seed{training.SEED}"
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no scratch folder left
    _, meta = digits_classifier.load(folder)
    assert (meta["image_size"], meta["steps"]) == (8, STEPS)
    before = mtimes(folder)

    def no_training(*args, **kwargs):
        raise AssertionError(f"trained again: {args} {kwargs}")

    monkeypatch.setattr(training, "train", no_training)
    assert training.default_classifier(8, tmp_path, steps=STEPS) == folder
    assert mtimes(folder) == before


def test_a_copy_saved_first_by_another_process_wins(tmp_path, monkeypatch):
    folder = tmp_path / "digits_classifier" / f"8px-f{training.FEATURE_DIM}-s{STEPS}-seed{training.SEED}"

    def racing_train(image_size, steps):  # untrained weights; "the other process" saves while we train
        model = digits_classifier.DigitsClassifier(image_size, training.FEATURE_DIM, rngs=nnx.Rngs(0))
        digits_classifier.save(model, folder, {"by": "other"})
        return model, {"by": "us", "steps": steps}

    monkeypatch.setattr(training, "train", racing_train)
    assert training.default_classifier(8, tmp_path, steps=STEPS) == folder
    assert digits_classifier.load(folder)[1]["by"] == "other"
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_a_damaged_copy_names_its_folder(tmp_path):
    folder = tmp_path / "digits_classifier" / f"8px-f{training.FEATURE_DIM}-s{STEPS}-seed{training.SEED}"
    digits_classifier.save(digits_classifier.DigitsClassifier(8, training.FEATURE_DIM, rngs=nnx.Rngs(0)), folder, {})
    (folder / digits_classifier.WEIGHTS_FILE).unlink()
    with pytest.raises(ValueError, match=rf"cached digits classifier '{re.escape(str(folder))}' does not load.*"
                                         "delete that folder"):
        training.default_classifier(8, tmp_path, steps=STEPS)


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(training.CACHE_ENV, str(tmp_path / "mine"))
    assert training.cache_root() == tmp_path / "mine"
    monkeypatch.delenv(training.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert training.cache_root() == tmp_path / "xdg" / "sparse_ae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert training.cache_root() == tmp_path / "home" / ".cache" / "sparse_ae"
