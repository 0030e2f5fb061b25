"""``python -m benchmarks.vs_sporco`` on one problem: every solver has its row, this project's ADMM takes SPORCO's
ADMM's iterations to the gap on one device and split over two, and the JAX rows carry warm and first-call times."""

from __future__ import annotations

import json

import pytest

from sparse_ae import data as data_lib

SOLVERS = ("sparse_ae ADMM float32", "sparse_ae ADMM float32, 2 CPU devices", "sparse_ae FISTA float32",
           "SPORCO ADMM float64, 1 thread", "SPORCO ADMM float64, 2 threads", "SPORCO ADMM float32, 1 thread",
           "SPORCO ADMM float32, 2 threads", "SPORCO PGM/FISTA float64, 1 thread")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vs_sporco_on_one_problem_records_every_solver(run_python, tmp_path):
    try:
        data_lib.shared_path("set12")  # the problems' images
    except ValueError as err:
        pytest.skip(str(err))
    out = tmp_path / "vs_sporco.json"
    run_python(["-m", "benchmarks.vs_sporco", "--quick", "--problems=P1", "--cpu_devices=2", f"--out={out}"],
               timeout=540, check=True)
    record = json.loads(out.read_text())
    rows = {row["solver"]: row for row in record["rows"]}
    assert tuple(rows) == SOLVERS and all(row["problem"] == "P1" for row in rows.values())
    for solver, row in rows.items():
        assert isinstance(row["iterations"], int) and row["seconds"] > 0, (solver, row)
        assert row["s/iter"] == pytest.approx(row["seconds"] / row["iterations"])
        assert ("first call" in row) == solver.startswith("sparse_ae"), (solver, row)
    reference = rows["SPORCO ADMM float64, 1 thread"]["iterations"]  # the same iteration, float32 rounding apart
    assert abs(rows["sparse_ae ADMM float32"]["iterations"] - reference) <= 2
    assert rows["sparse_ae ADMM float32, 2 CPU devices"]["iterations"] == rows["sparse_ae ADMM float32"]["iterations"]
    assert rows["sparse_ae ADMM float32, 2 CPU devices"]["ADMM speed-up"] == 1
    (summary,) = record["summary"]
    assert summary["devices"] == 2 and summary["vs SPORCO f64 1 thread"] == pytest.approx(
            rows["SPORCO ADMM float64, 1 thread"]["seconds"] / rows["sparse_ae ADMM float32, 2 CPU devices"]["seconds"])
    assert [row["problem"] for row in record["step_floor"]] == ["P1"]
