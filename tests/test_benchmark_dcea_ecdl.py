"""The ECDL benchmark's partial reruns: ``--methods`` into an existing ``--out`` replaces only those rows."""

from __future__ import annotations

from benchmarks.dcea_ecdl import merge

ORDER = ["tied", "untied", "gaussian"]


def rows(method: str, starts: list[str]) -> list[dict]:
    return [{"method": method, "init": start, "err max": f"{method} {start}"} for start in starts]


def test_rerun_rows_replace_their_method_and_keep_the_table_order():
    starts = ["perturbed", "random seed 7", "random, best of 3 (random seed 7)"]
    previous = rows("tied", starts) + rows("untied", starts[:1]) + rows("gaussian", starts)
    previous = sorted(previous, key=lambda r: (starts.index(r["init"]), ORDER.index(r["method"])))
    new = [{**r, "err max": "new"} for r in rows("untied", starts[:2] + ["random, best of 3 (random seed 1)"])]
    merged = merge(previous, new, ORDER)
    assert [(r["method"], r["init"]) for r in merged] == [
            ("tied", "perturbed"), ("untied", "perturbed"), ("gaussian", "perturbed"),
            ("tied", "random seed 7"), ("untied", "random seed 7"), ("gaussian", "random seed 7"),
            ("tied", "random, best of 3 (random seed 7)"), ("untied", "random, best of 3 (random seed 1)"),
            ("gaussian", "random, best of 3 (random seed 7)")]
    assert all((r["err max"] == "new") == (r["method"] == "untied") for r in merged)
