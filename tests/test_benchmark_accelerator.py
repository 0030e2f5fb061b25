"""``python -m benchmarks.accelerator --quick`` on a CPU: every part is measured and recorded; MFU
is a number with ``--peak_tflops`` and None without one (a CPU has no entry in the peak table)."""

from __future__ import annotations

import json
import math

import pytest

MODELS = ("CSC-CTRL", "SC-VAE paper", "DCEA Poisson")


@pytest.mark.timeout(600)
def test_quick_accelerator_suite_records_every_part(run_python, tmp_path):
    run_python(["-m", "benchmarks.accelerator", "--quick", "--peak_tflops", "1", "--out", str(tmp_path)],
               timeout=540, check=True)
    record = json.loads((tmp_path / "accelerator.json").read_text())
    assert record["size"] == "quick" and record["backend"] == "cpu" and record["machine"]["backend"] == "cpu"
    assert record["peak_tflops"] == 1 and record["peak_source"] == "--peak_tflops"

    fista = record["fista"]
    assert fista["default_unroll"] == 10  # CPU: fully unrolled
    assert {(r["variant"].split(" ")[0], r["what"]) for r in fista["rows"]} == {
            (v, w) for v in ("rolled", "full", "library") for w in ("forward", "gradient")}
    assert all(r["median_s"] > 0 for r in fista["rows"])

    models = {r["model"]: r for r in record["models"]}
    assert tuple(models) == MODELS
    for name, row in models.items():
        assert row["note"] == "" and row["step_ms"] > 0 and row["compile_s"] > 0, (name, row)
        assert row["model_gflop"] > 0 and row["xla_gflop"] > 0, (name, row)
        # XLA's count adds elementwise work to the matmuls and convolutions (CPU: loops unrolled).
        assert row["model_gflop"] <= row["xla_gflop"] * 1.001, (name, row)
        assert math.isfinite(row["mfu"]) and row["mfu"] > 0 and row["mfu"] == pytest.approx(row["tflops"])
        assert row["memory"] == "estimate" and row["peak_GiB"] > 0, (name, row)

    # Without --peak_tflops the suite looks the device up in its table: nothing for a CPU. The
    # DCEA step's counted FLOPs are those of benchmarks.flops' closed form (3 × the forward convs).
    check = "\n".join([
            "from benchmarks import accelerator, common, flops",
            "from sparse_ae.train.tasks import dcea",
            f"peak, _ = accelerator.peak_tflops({record['device_kind']!r}, {record['matmul_precision']!r}, None)",
            "assert peak is None, peak",
            "config = common.load_config(accelerator.quick_spec(accelerator.CASES['DCEA Poisson'][0]))",
            "size, batch = config.data.image_size, config.data.batch_size",
            "cfg = dcea.dcea_config(config.model, eval_mode=False)",
            "expected = flops.dcea_conv_flops(cfg, (size, size), batch)['train_step'] / 1e9",
            f"assert abs(expected - {models['DCEA Poisson']['model_gflop']!r}) <= 1e-9 * expected, expected",
    ])
    run_python(["-c", check], check=True)
