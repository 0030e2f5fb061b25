"""Evaluation: PSNR/SSIM against scikit-image, and the ``sparse_ae.evaluate`` entry point."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sparse_ae import evaluate as evaluate_cli
from sparse_ae.evaluators import available_evaluators, get_evaluator
from sparse_ae.evaluators.reconstruction import psnr, ssim
from sparse_ae.train import config_files, writers
from sparse_ae.utils import images as image_lib


@pytest.mark.parametrize("shape", [(3, 16, 16, 1), (2, 8, 8, 1), (2, 20, 24, 3), (2, 5, 6, 1)])
def test_psnr_ssim_match_skimage(shape):
    rng = np.random.default_rng(0)
    x = rng.random(shape)
    y = np.clip(x + 0.1 * rng.standard_normal(shape), 0, 1)
    win = min(7, *(s - 1 + s % 2 for s in shape[1:3]))
    expected_ssim = [structural_similarity(a, b, data_range=1.0, channel_axis=-1, win_size=win) for a, b in zip(x, y)]
    expected_psnr = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(x, y)]
    np.testing.assert_allclose(ssim(x, y), expected_ssim, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(psnr(x, y), expected_psnr, rtol=1e-10)
    np.testing.assert_allclose(ssim(x, x), 1.0)


def test_evaluator_lookup():
    assert "reconstruction" in available_evaluators()
    with pytest.raises(ValueError, match="unknown evaluator 'nope'.*reconstruction"):
        get_evaluator("nope")


def test_tile_grid_layout():
    tiles = np.stack([np.full((2, 3, 1), v, np.float32) for v in (0.0, 1.0, 0.25)])
    grid = image_lib.tile(tiles, num_cols=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    assert grid[1, 1, 0] == 0.0 and grid[1, 5, 0] == 1.0 and grid[4, 1, 0] == 0.25 and grid[4, 5, 0] == 0.5


@pytest.fixture(name="workdir")
def workdir_fixture(trained, tmp_path):
    """A private copy of the session's trained workdir."""
    _, source, _ = trained
    return shutil.copytree(source, tmp_path / "run")


def test_evaluate_cli_reproduces_training_metrics(workdir, run_python):
    trained_metrics = json.loads((workdir / "metrics.json").read_text())
    (workdir / "metrics.json").unlink()
    result = run_python(["-m", "sparse_ae.evaluate", f"--workdir={workdir}"], check=True)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics.keys() == trained_metrics.keys()
    for key, value in trained_metrics.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5), key
    assert "test/psnr" in result.stdout and "test/ssim" in result.stdout


def test_evaluate_cli_on_own_images_at_a_given_step(workdir, run_python, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):  # sizes differ: the folder source resizes to the run's image size
        Image.fromarray((rng.random((12 + i, 20)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    result = run_python(["-m", "sparse_ae.evaluate", f"--workdir={workdir}", f"--images={folder}", "--step=10",
                         "--config.eval.num_images", "4"], check=True)   # main's override syntax
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["all/step"] == 10 and metrics["test/step"] == 20   # each split's figures with their step
    assert {"all/psnr", "all/ssim", "all/mse"} <= set(metrics)
    assert "all/psnr" in result.stdout
    assert (workdir / "images" / "step_10" / "all_inputs_reconstructions.png").exists()


def test_evaluate_errors_name_the_problem(workdir):
    config = config_files.load(workdir / "config.json")
    with pytest.raises(ValueError, match="--step=7: no checkpoint at that step"):
        evaluate_cli.run_evaluation(config, str(workdir), None, 7)


def test_grids_pair_inputs_with_outputs_draw_signals_as_lines_and_are_large():
    rng = np.random.default_rng(0)
    inputs, outputs = rng.random((8, 8, 8, 1)), rng.random((8, 8, 8, 1))
    rising = np.linspace(0, 1, 20)[None, None, :, None].repeat(2, 0)    # two 1-D signals (N, 1, L, 1)
    grids = writers.compose({"test/inputs": inputs, "test/reconstructions": outputs, "atoms": rng.random((4, 3, 3, 1)),
                             "dictionary/templates": rising, "dictionary/learned": 1 - rising})
    assert sorted(grids) == ["atoms", "dictionary/templates_learned", "test/inputs_reconstructions"]
    assert all(min(grid.shape[:2]) >= writers.MIN_SIDE for grid in grids.values())
    # Pairs side by side: 8 pairs -> 2 pairs (4 tiles of 8 px, 1 px padding) per row, 4 rows, upscaled by 7.
    small = image_lib.tile(np.stack([inputs, outputs], axis=1).reshape(16, 8, 8, 1), num_cols=4)
    assert small.shape == (37, 37, 1)
    np.testing.assert_array_equal(grids["test/inputs_reconstructions"], image_lib.upscale(small, writers.MIN_SIDE))
    # A rising line: the first sample in the bottom row, the last in the top row of its panel.
    panel = image_lib.plot_lines(np.linspace(0, 1, 20)[None])[0, :, :, 0]
    assert panel.shape == (64, 192)
    assert panel[-1, 0] == 0.0 and panel[0, -1] == 0.0 and panel[0, 0] == 1.0 and panel[-1, -1] == 1.0
