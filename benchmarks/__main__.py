"""Every benchmark: ``python -m benchmarks [--quick | --full] [--only a,b] [--out DIR]``.

Each benchmark runs in its own process as ``python -m benchmarks.<name> --quick`` (without
``--quick`` under ``--full``) and prints its own tables; a failing one is reported and the rest
still run. The closing summary is one table per area. Quick runs write nothing unless ``--out DIR``
names a folder outside ``benchmarks/results/``, so they never overwrite the committed full-size
results; ``--full`` passes ``--out DIR`` (default ``benchmarks/results``) and each benchmark writes
``DIR/<name>.json``. The exit status is 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

from benchmarks import common

# area -> benchmarks, in the order they run.
AREAS = {
        "sparse-coding core": ("unroll", "fft_operator", "conv_gflops", "vs_sporco", "lista"),
        "training framework": ("input_pipeline", "train_step", "memory"),
        "CSC-CTRL": ("ctrl",),
        "DCEA": ("dcea_ecdl", "dcea_perf", "dcea_denoise", "dcea_train"),
        "SC-VAE": ("sc_vae",),
        "sparse generators": ("sparse_gan",),
        "conv sparse AE": ("conv_sae",),
        "deep image prior": ("dip",),
        "accelerator": ("accelerator",),
        "paper-scale cost": ("paper_scale",),
}


RESULTS = common.REPO / "benchmarks" / "results"


def run_one(name: str, out: pathlib.Path | None, quick: bool) -> dict:
    """Runs ``benchmarks.<name>`` (writing ``out/<name>.json`` if ``out``), streaming its output;
    returns a summary row."""
    cmd = [sys.executable, "-m", f"benchmarks.{name}", *(["--out", str(out)] if out else []),
           *(["--quick"] if quick else [])]
    print(f"\n=== {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=common.REPO, check=False).returncode
    json_path = out / f"{name}.json" if out else None
    return {"benchmark": name, "status": "ok" if code == 0 else f"failed (exit {code})",
            "minutes": (time.perf_counter() - start) / 60,
            "json": str(json_path) if code == 0 and json_path and json_path.exists() else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="results folder (default: none for quick runs, benchmarks/results under --full)")
    parser.add_argument("--only", default="", help="comma list of benchmark names (default: all)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="quick sizes (the default)")
    size.add_argument("--full", action="store_true", help="full sizes (hours on a 2-core CPU)")
    args = parser.parse_args()
    known = [name for names in AREAS.values() for name in names]
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - set(known))
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {unknown}; known: {known}")
    out = (args.out or RESULTS).resolve() if args.full else args.out and args.out.resolve()
    if not args.full and out and out.is_relative_to(RESULTS):
        parser.error(f"--out: quick results may not go under {RESULTS} (it holds the full-size results)")
    if out:
        out.mkdir(parents=True, exist_ok=True)
    summary = {area: [run_one(n, out, not args.full) for n in names if not only or n in only]
               for area, names in AREAS.items()}
    for area, rows in summary.items():
        if rows:
            common.print_table(area, rows)
    if any(row["status"] != "ok" for rows in summary.values() for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
