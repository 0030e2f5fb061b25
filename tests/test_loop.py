"""The generic loop on the toy task: outputs in the workdir, exact resume, one compilation."""

from __future__ import annotations

import json
import logging

import jax
import numpy as np
from PIL import Image

from sparse_ae.train import checkpointing, loop, writers
from sparse_ae.utils import tf_cpu

from conftest import CONSTANT_LR, assert_trees_equal, tiny_config


def test_run_writes_checkpoints_events_images_metrics(trained):
    config, workdir, state = trained
    assert int(state.step) == config.train.num_steps
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [10, 20]
    assert list(workdir.glob("events.out.tfevents.*"))
    latest = {p.name for p in (workdir / "images").glob("*.png")}
    assert latest == {"test_inputs_reconstructions.png", "atoms.png"}
    assert {p.name for p in (workdir / "images" / "step_20").iterdir()} == latest   # one folder per evaluation
    grid = np.asarray(Image.open(workdir / "images" / "test_inputs_reconstructions.png"))
    assert min(grid.shape[:2]) >= writers.MIN_SIDE
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert set(metrics) >= {"test/psnr", "test/ssim", "test/mse", "test/step"}
    assert metrics["test/step"] == 20 and 5 < metrics["test/psnr"] < 60
    assert json.loads((workdir / "config.json").read_text())["task"] == "csc_ae"


def tensorboard_images(workdir) -> dict[tuple[str, int], np.ndarray]:
    """Every image summary in the workdir's event files: (tag, step) -> (H, W, C) uint8."""
    tf = tf_cpu.import_tensorflow()
    found = {}
    for path in workdir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":  # [width, height, png, ...]
                    png = value.tensor.string_val[2]
                    found[value.tag, event.step] = tf.io.decode_png(png).numpy()
    return found


def test_tensorboard_holds_the_saved_grids(trained):
    _, workdir, _ = trained
    events = tensorboard_images(workdir)
    assert set(events) == {("test/inputs_reconstructions", 20), ("atoms", 20)}
    for (tag, step), image in events.items():
        saved = np.asarray(Image.open(workdir / "images" / f"step_{step}" / f"{tag.replace('/', '_')}.png"))
        np.testing.assert_array_equal(image.reshape(saved.shape), saved)


def test_rerun_of_a_finished_run_resumes_and_does_nothing(trained):
    config, workdir, state = trained
    events = sorted(workdir.glob("events.out.tfevents.*"))
    again = loop.train_and_evaluate(config, workdir)
    assert_trees_equal(jax.device_get(again), state)
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [10, 20]
    for path in workdir.glob("events.out.tfevents.*"):  # the rerun logged nothing new
        assert path in events or path.stat().st_size < 200


def test_resume_is_exact(trained_constant_lr, tmp_path):
    """2N steps straight == N steps, stop, resume to 2N: bitwise params, same data order."""
    config, _, straight = trained_constant_lr
    loop.train_and_evaluate(tiny_config(**CONSTANT_LR, **{"train.num_steps": 10}), tmp_path / "resumed")
    resumed = jax.device_get(loop.train_and_evaluate(config, tmp_path / "resumed"))
    assert int(resumed.step) == int(straight.step) == 20
    assert_trees_equal(resumed, straight)

    # Data order: the iterator restored at step 10 yields batch 10 of an uninterrupted stream.
    dataset = loop.build_dataset(config, "train", train=True, batch_size=config.data.batch_size)
    uninterrupted = iter(dataset)
    for _ in range(10):
        next(uninterrupted)
    restored_iter = iter(dataset)
    run = loop.build_run(config, next(iter(dataset)))
    checkpointer = checkpointing.Checkpointer(tmp_path / "resumed", 3)
    checkpointer.restore(run.abstract_state, restored_iter, step=10)
    checkpointer.close()
    for _ in range(3):
        expected, got = next(uninterrupted), next(restored_iter)
        np.testing.assert_array_equal(got["image"], expected["image"])
        np.testing.assert_array_equal(got["label"], expected["label"])


def test_train_step_compiles_once(tmp_path, caplog):
    config = tiny_config(**{"train.num_steps": 12, "train.log_every": 3})
    caplog.set_level(logging.WARNING)
    with jax.log_compiles(True):
        loop.train_and_evaluate(config, tmp_path / "run")
    compiles = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage() and "jit(step)" in r.getMessage()]
    assert len(compiles) == 1, compiles


def test_hparams_leave_out_the_sections_of_sources_not_read():
    config = tiny_config()   # digits
    flat = writers.flatten_config(config)
    assert flat["data.name"] == "digits" and flat["model.num_atoms"] == 4
    assert not [key for key in flat if key.startswith(("data.csc.", "data.spikes."))]
    config.data.name = "synthetic_csc"
    assert [key for key in writers.flatten_config(config) if key.startswith("data.csc.")]
