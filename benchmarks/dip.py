"""Deep Image Prior denoising of Set12 at σ = 25: baseline vs sparse encoders (``sparse_ae.dip``).

    python -m benchmarks.dip [--quick | --full] [--regs=none,l0,l0inf] [--out DIR]
    python -m benchmarks.dip --out=benchmarks/results   # the committed result

Each row is one ``sparse_ae.dip.run`` of ``configs/dip_denoise.py:reg=<reg>[,cpu|,runlocal]``
(every image × seed of the preset; a fresh network per run) in a scratch workdir, summarised
from its ``metrics.json``: per run, the best PSNR (dB, vs the clean image) of a single output
over the iterations and of the exponentially averaged output (oracle stopping time, as the
papers report), and the final ones; each averaged over the images per seed, then mean ± std
(ddof 0) over seeds. Δ columns: the row's best minus the ``none`` row's (same images, noise
draws and seeds). Minutes: wall clock of the whole row, compilation included.

Presets: default ``cpu`` (images 01, 02, 05 centred 128 × 128, 4-level 32-channel network,
1000 iterations, seeds 0, 1, 2); ``--full`` the full protocol (all 12 whole images, 5 levels of
128 channels, 3000 iterations; an accelerator job); ``--quick`` the ``runlocal`` smoke run
(image 01 at 32 × 32, 6 iterations, seed 0: seconds, numbers meaningless). The paper's numbers
(Ganz & Elad, on their image set and network) are kept apart as a reference, never as a row.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
import time

from benchmarks import common
from sparse_ae import dip

CONFIG = "configs/dip_denoise.py"
REGS = ("none", "l0", "l0inf")
PRESETS = {"quick": "runlocal", "cpu": "cpu", "full": ""}   # preset -> config argument
# Best single / best averaged PSNR (dB) reported by Ganz & Elad on their image set.
PAPER = {"source": "Ganz & Elad (sparse DIP), their image set and network; not this benchmark's images",
         "rows": {"none": {"best_psnr": 28.74, "best_avg_psnr": 29.88},
                  "l0": {"best_psnr": 29.22, "best_avg_psnr": 30.21}}}
COLUMNS = ("reg", "sparsity", "best", "best_avg", "final", "final_avg", "d_best", "d_best_avg", "noisy",
           "images", "iters", "seeds", "minutes")


def config_spec(reg: str, preset: str) -> str:
    """``configs/dip_denoise.py:reg=<reg>[,<preset's config argument>]``."""
    return f"{CONFIG}:" + ",".join(filter(None, (f"reg={reg}", PRESETS[preset])))


def run_reg(config, workdir: pathlib.Path) -> tuple[dict, float]:
    """``sparse_ae.dip.run`` of ``config`` in ``workdir``; (its metrics.json, minutes)."""
    start = time.perf_counter()
    dip.run(config, workdir)
    minutes = (time.perf_counter() - start) / 60
    return json.loads((workdir / dip.METRICS_FILE).read_text()), minutes


def summary_row(reg: str, metrics: dict, minutes: float) -> dict:
    """One measured row: the summary of ``metrics`` (metrics.json) plus what it was run on."""
    runs, dip_cfg = metrics["runs"], metrics["config"]["dip"]
    sizes = sorted({"x".join(map(str, r["size"])) for r in runs})
    return {"reg": reg, "sparsity": " ".join(dict.fromkeys(metrics["config"]["model"]["sparsity"])),
            **metrics["summary"],
            "images": ",".join(dict.fromkeys(r["image"] for r in runs)) + f" ({'/'.join(sizes)})",
            "iters": dip_cfg["num_iters"], "seeds": ",".join(map(str, dip_cfg["seeds"])), "minutes": minutes}


def add_deltas(rows: list[dict], baseline: str = "none") -> list[dict]:
    """``rows`` with ``delta_best_psnr`` / ``delta_best_avg_psnr`` vs the ``baseline`` row (if run)."""
    base = next((r for r in rows if r["reg"] == baseline), None)
    if base is None:
        return rows
    return [{**r, **{f"delta_{k}": r[f"{k}_mean"] - base[f"{k}_mean"] for k in ("best_psnr", "best_avg_psnr")}}
            for r in rows]


def display(row: dict) -> dict:
    """``row`` for the printed table: "mean ± std" strings and signed Δs."""
    def pm(key: str) -> str:
        return f"{row[f'{key}_mean']:.2f} ± {row[f'{key}_std']:.2f}"

    def delta(key: str) -> str:
        return f"{row[key]:+.2f}" if key in row else ""

    return {**row, "best": pm("best_psnr"), "best_avg": pm("best_avg_psnr"), "final": pm("final_psnr"),
            "final_avg": pm("final_avg_psnr"), "noisy": f"{row['noisy_psnr_mean']:.2f}",
            "d_best": delta("delta_best_psnr"), "d_best_avg": delta("delta_best_avg_psnr")}


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full protocol (accelerator; default: cpu preset)")
    parser.add_argument("--regs", default=",".join(REGS), help="comma list among none, l1, l0, l0inf")
    args = parser.parse_args()
    if args.quick and args.full:
        parser.error("--quick and --full exclude each other")
    preset = "quick" if args.quick else "full" if args.full else "cpu"
    regs = [r for r in args.regs.split(",") if r]
    try:   # every config up front: a bad --regs fails before any run
        configs = {reg: dip.load_config(config_spec(reg, preset), root=common.REPO) for reg in regs}
    except ValueError as e:
        parser.error(str(e))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="dip_bench_"))
    rows, runs = [], {}
    for reg, config in configs.items():
        metrics, minutes = run_reg(config, scratch / reg)
        rows.append(summary_row(reg, metrics, minutes))
        runs[reg] = [{k: v for k, v in r.items() if k != "curve"} for r in metrics["runs"]]
    rows = add_deltas(rows)
    common.print_table(f"Deep Image Prior denoising, sigma 25, preset {preset}: PSNR (dB) vs the clean image, "
                       "per-seed image mean, mean ± std over seeds; d_* = best minus reg=none",
                       [display(r) for r in rows], COLUMNS)
    print("paper (Ganz & Elad, their image set, not comparable in absolute terms): best / best averaged "
          + "; ".join(f"{k} {v['best_psnr']:.2f} / {v['best_avg_psnr']:.2f}" for k, v in PAPER["rows"].items()))
    if args.out is not None:
        common.write_json(args.out, "dip", {"quick": args.quick, "preset": preset,
                                            "rows": rows, "runs": runs, "paper_reference": PAPER})


if __name__ == "__main__":
    main()
