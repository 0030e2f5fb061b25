"""``python -m benchmarks --quick`` runs every benchmark and leaves the committed results alone."""

from __future__ import annotations

import hashlib
import pathlib

import pytest

from conftest import REPO, run_python

RESULTS = REPO / "benchmarks" / "results"


def snapshot(folder: pathlib.Path) -> dict[str, tuple[int, str]]:
    """Relative path -> (size, sha256) of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_quick_run_writes_nothing_under_results():
    before = snapshot(RESULTS)
    result = run_python(["-m", "benchmarks", "--quick"], timeout=3 * 3600)
    after = snapshot(RESULTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert sorted(set(after) - set(before)) == [], "created under benchmarks/results/"
    assert sorted(k for k in before if after.get(k) != before[k]) == [], "changed or removed under benchmarks/results/"
