"""``python -m benchmarks --quick`` runs every benchmark at its quick size and writes nothing under
``benchmarks/results/`` (the committed full-size results): files are written only with ``--out``."""

from __future__ import annotations

import hashlib
import pathlib

import pytest

from conftest import REPO
from sparse_ae import data as data_lib

RESULTS = REPO / "benchmarks" / "results"


def digest(folder: pathlib.Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(name="shared_data")
def shared_data_fixture():
    """The shared test data the DCEA and denoising benchmarks read (skips, saying where, if absent)."""
    try:
        return [data_lib.shared_path(name) for name in ("set12", "train400", "dcea_official")]
    except ValueError as err:
        pytest.skip(str(err))


@pytest.mark.benchmarks
@pytest.mark.timeout(2 * 3600)
def test_quick_run_of_every_benchmark_writes_nothing(run_python, shared_data):
    del shared_data  # present
    before = digest(RESULTS)
    result = run_python(["-m", "benchmarks", "--quick"], timeout=2 * 3600 - 60)
    after = digest(RESULTS)
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not changed and before.keys() == after.keys(), (
            f"changed: {changed}; new: {sorted(after.keys() - before.keys())}; "
            f"removed: {sorted(before.keys() - after.keys())}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
