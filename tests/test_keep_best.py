"""``config.train.keep_best``: the best evaluated checkpoint is kept beside the latest ones."""

from __future__ import annotations

import math

import pytest

from sparse_ae import config as config_lib
from sparse_ae import evaluate as evaluate_cli
from sparse_ae.train import checkpointing, loop
from sparse_ae.utils import tf_cpu

from conftest import restore_state, tiny_config


def scalar_history(workdir, tag: str) -> dict[int, float]:
    """Every value of the scalar ``tag`` in the workdir's event files: step -> value."""
    tf = tf_cpu.import_tensorflow()
    found = {}
    for path in workdir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    found[event.step] = float(tf.make_ndarray(value.tensor))
    return found


@pytest.mark.parametrize("text, expected", [("test/mse", ("test/mse", False)),
                                            ("max:test/psnr", ("test/psnr", True)),
                                            ("test/seg/iou", ("test/seg/iou", False))])
def test_parse_keep_best(text, expected):
    assert config_lib.parse_keep_best(text) == expected


@pytest.mark.parametrize("value, eval_every, match", [
        ("mse", 5, "<split>/<name>"), ("min:test/mse", 5, "<split>/<name>"), ("max:", 5, "<split>/<name>"),
        ("train/mse", 5, "split 'train' is not evaluated"), ("test/mse", 0, "needs periodic evaluations")])
def test_bad_keep_best_is_refused_before_anything_compiles(value, eval_every, match):
    config = tiny_config(**{"train.keep_best": value, "train.eval_every": eval_every})
    with pytest.raises(ValueError, match=f"config.train.keep_best.*{match}"):
        config_lib.validate(config)


def test_is_better_never_takes_a_non_finite_value():
    assert checkpointing.is_better(1.0, None, maximize=False)
    assert checkpointing.is_better(1.0, 2.0, maximize=False) and not checkpointing.is_better(2.0, 1.0, maximize=False)
    assert checkpointing.is_better(2.0, 1.0, maximize=True) and not checkpointing.is_better(1.0, 1.0, maximize=True)
    assert not checkpointing.is_better(math.nan, None, maximize=False)
    assert not checkpointing.is_better(math.inf, 1.0, maximize=True)


def test_the_best_step_is_kept_restored_and_evaluated(tmp_path):
    """Evaluations at 5, 10, 15, 20 and 3 latest checkpoints (10, 15, 20): the kept step is the
    one with the lowest test/mse (in this runlocal run step 5, which the latest ones dropped),
    a resume restores the latest step, and ``evaluate --step`` reproduces the kept value."""
    config = tiny_config(**{"train.eval_every": 5, "train.checkpoint_every": 5, "train.keep_best": "test/mse"})
    workdir = tmp_path / "run"
    loop.train_and_evaluate(config, workdir)
    history = scalar_history(workdir, "test/mse")
    assert sorted(history) == [5, 10, 15, 20]
    best = min(history, key=history.get)
    assert checkpointing.saved_steps(workdir, checkpointing.BEST_DIR) == [best]
    assert checkpointing.saved_steps(workdir) == [10, 15, 20]
    assert evaluate_cli.best_step(str(workdir)) == best

    _, latest = restore_state(config, workdir)
    assert latest == 20
    state, restored = restore_state(config, workdir, step=best)
    assert restored == best and int(state.step) == best
    scalars = evaluate_cli.run_evaluation(config, str(workdir), None, best)
    assert scalars["test/step"] == best
    assert scalars["test/mse"] == pytest.approx(history[best], rel=1e-5)

    # A longer run resumed from step 20 compares against the kept value and keeps it or replaces it.
    longer = tiny_config(**{"train.eval_every": 5, "train.checkpoint_every": 5, "train.keep_best": "test/mse",
                            "train.num_steps": 25})
    loop.train_and_evaluate(longer, workdir)
    history = scalar_history(workdir, "test/mse")
    assert sorted(history) == [5, 10, 15, 20, 25]
    assert checkpointing.saved_steps(workdir, checkpointing.BEST_DIR) == [min(history, key=history.get)]


def test_evaluate_cli_best_evaluates_the_kept_step(tmp_path, run_python):
    config = tiny_config(**{"train.num_steps": 10, "train.eval_every": 5, "train.checkpoint_every": 5,
                            "train.keep_best": "max:test/psnr"})
    loop.train_and_evaluate(config, tmp_path / "run")
    history = scalar_history(tmp_path / "run", "test/psnr")
    best = max(history, key=history.get)
    printed = run_python(["-m", "sparse_ae.evaluate", f"--workdir={tmp_path / 'run'}", "--best"], check=True).stdout
    rows = dict(line.split() for line in printed.splitlines()[2:])
    assert int(rows["test/step"]) == best
    assert float(rows["test/psnr"]) == pytest.approx(history[best], rel=1e-5)


def test_an_unknown_metric_stops_at_the_first_evaluation_naming_the_available_ones(tmp_path):
    config = tiny_config(**{"train.num_steps": 4, "train.eval_every": 2, "train.keep_best": "test/nope"})
    with pytest.raises(ValueError, match=r"config.train.keep_best.*'test/nope'.*available: \[.*'test/mse'"):
        loop.train_and_evaluate(config, tmp_path / "run")
    assert checkpointing.saved_steps(tmp_path / "run", checkpointing.BEST_DIR) == []


def test_evaluate_best_without_a_kept_checkpoint_says_how(tmp_path):
    with pytest.raises(ValueError, match="--best.*keep_best"):
        evaluate_cli.best_step(str(tmp_path))
