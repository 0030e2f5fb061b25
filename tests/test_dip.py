"""The Deep Image Prior runner: one run per image and seed, its results, and resumption by run."""

from __future__ import annotations

import json

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
