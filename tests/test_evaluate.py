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
                         "--config.eval.num_images=4"], check=True)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["eval/step"] == 10
    assert {"all/psnr", "all/ssim", "all/mse"} <= set(metrics)
    assert "all/psnr" in result.stdout
    assert (workdir / "images" / "all_reconstructions.png").exists()


def test_evaluate_errors_name_the_problem(workdir, tmp_path):
    with pytest.raises(ValueError, match="has no config.json"):
        evaluate_cli.load_config(str(tmp_path), [])
    with pytest.raises(ValueError, match="config has no field eval.num_batch"):
        evaluate_cli.load_config(str(workdir), ["--config.eval.num_batch=3"])
    config = evaluate_cli.load_config(str(workdir), ["--config.eval.num_batches=2"])
    assert config.eval.num_batches == 2
    with pytest.raises(ValueError, match="--step=7: no checkpoint at that step"):
        evaluate_cli.run_evaluation(config, str(workdir), None, 7)
