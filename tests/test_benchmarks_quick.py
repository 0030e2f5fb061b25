"""``python -m benchmarks --quick`` runs every benchmark at its quick size and writes nothing under
``benchmarks/results/`` (the committed full-size results): files are written only with ``--out``."""

from __future__ import annotations

import hashlib
import pathlib

import pytest

from conftest import REPO

RESULTS = REPO / "benchmarks" / "results"


def digest(folder: pathlib.Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.benchmarks
@pytest.mark.timeout(3 * 3600)
def test_quick_run_of_every_benchmark_writes_nothing(run_python):
    before = digest(RESULTS)
    result = run_python(["-m", "benchmarks", "--quick"], timeout=3 * 3600 - 60)
    after = digest(RESULTS)
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not changed and before.keys() == after.keys(), (
            f"changed: {changed}; new: {sorted(after.keys() - before.keys())}; "
            f"removed: {sorted(before.keys() - after.keys())}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
