"""The Deep Image Prior runner: one run per image and seed, its results, and resumption by run."""

from __future__ import annotations

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_ae import dip
from sparse_ae import data as data_lib

CONFIG = "configs/dip_denoise.py:runlocal"


@pytest.fixture(name="set12", autouse=True)
def set12_fixture():
    folder = data_lib.shared_path("set12")
    if not folder.is_dir():
        pytest.skip(f"Set12 not found at {folder} (set SPARSE_AE_DATA_DIR; see the README's Data section)")


def counting(monkeypatch) -> list[tuple]:
    """Records the image shape of every fit the runner makes, which still fits for real."""
    calls, make = [], dip.make_fitter

    def make_counted(config):
        fit = make(config)

        def counted(clean, key):
            calls.append(clean.shape)
            return fit(clean, key)
        return counted

    monkeypatch.setattr(dip, "make_fitter", make_counted)
    return calls


def test_psnr_bookkeeping_matches_numpy():
    """Best single output and best exponential average over iterations, as a NumPy loop computes them."""
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(8, 8, 1))
    outputs = np.clip(clean + rng.normal(scale=0.1, size=(6, 1, 8, 8, 1)), 0, 1)
    weight = 0.9
    avg, best = jnp.zeros((1, 8, 8, 1)), jnp.full((2,), -jnp.inf)
    for i, out in enumerate(outputs):
        avg, best, _ = dip.track_psnr(jnp.asarray(clean), jnp.asarray(out), avg, best, i == 0, weight)

    def psnr(estimate):
        return -10 * np.log10(np.mean((clean - estimate[0]) ** 2))

    averages = [outputs[0]]
    for out in outputs[1:]:
        averages.append(weight * averages[-1] + (1 - weight) * out)
    expected = [max(psnr(o) for o in outputs), max(psnr(a) for a in averages)]
    np.testing.assert_allclose(np.asarray(best), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(avg), averages[-1], rtol=1e-5, atol=1e-6)


def test_a_few_iterations_lower_the_loss_with_one_traced_step(caplog):
    config = dip.load_config(CONFIG)
    config.dip.update(num_iters=40, log_every=1)
    clean = np.asarray(dip.load_images(config)["01"], np.float32)
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        losses = [point["loss"] for point in dip.make_fitter(config)(clean, jax.random.key(0))["curve"]]
    assert len(losses) == 40 and np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    # The carry keeps its types from step to step (a weakly typed start once cost a second compile).
    assert sum(r.getMessage().startswith("Finished tracing step ") for r in caplog.records) == 1


@pytest.mark.slow  # the sweep's other tests fit as well; this one checks the files a run writes
def test_a_run_reports_its_psnrs_and_writes_the_workdir(tmp_path):
    config = dip.load_config(CONFIG)
    results = dip.run(config, tmp_path, log=lambda _: None)
    (only,) = results["runs"]
    assert (only["image"], only["seed"], only["size"]) == ("01", 0, [32, 32])
    assert len(only["curve"]) == config.dip.num_iters // config.dip.log_every
    assert only["best_psnr"] >= max(point["psnr"] for point in only["curve"]) - 1e-6
    assert np.isfinite([only[k] for k in ("best_psnr", "best_avg_psnr", "final_psnr", "noisy_psnr")]).all()
    assert 10 < only["noisy_psnr"] < 25  # σ = 25 on [0, 1] images: about 20 dB
    assert json.loads((tmp_path / dip.METRICS_FILE).read_text()) == json.loads(json.dumps(results, default=str))
    assert (tmp_path / "images" / "01_seed0_average.png").is_file()


def test_a_rerun_keeps_finished_runs_and_fits_only_the_missing(tmp_path, monkeypatch):
    config = dip.load_config(CONFIG)
    first = dip.run(config, tmp_path, log=lambda _: None)
    calls = counting(monkeypatch)
    assert dip.run(config, tmp_path, log=lambda _: None)["runs"] == first["runs"] and not calls
    config.dip.seeds = (0, 1)   # a longer sweep: only the new seed is fitted
    grown = dip.run(config, tmp_path, log=lambda _: None)
    assert len(calls) == 1 and grown["runs"][0] == first["runs"][0] and grown["runs"][1]["seed"] == 1
    before = (tmp_path / dip.METRICS_FILE).read_bytes()
    config.dip.num_iters += 2   # another protocol: refused, nothing touched
    with pytest.raises(ValueError, match="holds DIP runs made with other settings"):
        dip.run(config, tmp_path, log=lambda _: None)
    assert len(calls) == 1 and (tmp_path / dip.METRICS_FILE).read_bytes() == before


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, monkeypatch):
    config = dip.load_config(CONFIG)
    config.dip.seeds = (0, 1)
    full = dip.run(config, tmp_path / "full", log=lambda _: None)
    saved = json.loads((tmp_path / "full" / dip.METRICS_FILE).read_text())
    saved["runs"] = saved["runs"][:1]          # as if stopped after the first run
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / dip.METRICS_FILE).write_text(json.dumps(saved))
    calls = counting(monkeypatch)
    resumed = dip.run(config, tmp_path / "cut", log=lambda _: None)
    assert len(calls) == 1
    for a, b in zip(resumed["runs"], full["runs"]):
        assert (a["seed"], a["best_psnr"]) == (b["seed"], pytest.approx(b["best_psnr"], abs=1e-5))
