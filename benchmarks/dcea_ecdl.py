"""Experiment 1: Binomial ECDL on simulated spikes — template recovery error per template.

    python -m benchmarks.dcea_ecdl [--quick] [--methods=binomial,untied,gaussian,sporco]
                                   [--out=benchmarks/results/dcea_ecdl.json]

Rows (``--methods``, default all): DCEA-C with the Binomial model (``binomial``:
``configs/dcea_binomial_ecdl.py``), DCEA-UC with the Binomial model (``untied``: ``:untied``,
encoder, in-loop and decoder kernels learned separately), DCEA-C treating the counts as Gaussian
(``gaussian``: ``:family=gaussian``) and SPORCO's ConvBPDNDictLearn (``sporco``: Gaussian CSC
dictionary learning on y/M − sigmoid(mu), non-negative codes), all from one initial dictionary per init
kind: "perturbed" (ground truth + Gaussian noise, error ≈ 0.6 per template) and, without
--quick, "random" (i.i.d. Gaussian atoms) from each of ``RANDOM_SEEDS``. The DCEA runs train
through the generic loop (``model.init_dictionary`` set to the start) on the simulator's stream;
error = √(1 − ⟨h, ĥ⟩²) after the best matching (evaluator ``dictionary_recovery``), strict and
with delays of up to ``SHIFT`` samples; for DCEA-UC, of the decoder dictionary H.

Each run also reports its own objective at the end, without the ground truth: DCEA the family's
NLL per bin on the 64 held-out simulator signals of the test split (evaluator ``likelihood``),
SPORCO its final functional on its training signals. The "random, best of N" row of each method
is its random start of lowest objective, the usual way to choose among restarts of a non-convex
learner. ``s/step`` is a run's wall time over its steps (DCEA's includes compiling the step and
the final evaluation). A run of some ``--methods`` into an existing ``--out`` of the same size
replaces those methods' rows and keeps the others.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import sporco.fft
from sporco.dictlrn import cbpdndl

from benchmarks import common
from sparse_ae.data import binomial_spikes
from sparse_ae.data.config import parse
from sparse_ae.evaluators.dictionary_recovery import SHIFT, template_errors

CONFIG = "configs/dcea_binomial_ecdl.py"
INIT_NOISE = 0.9   # per-entry std × sqrt(K) of the perturbation: initial error ≈ 0.6
RANDOM_SEEDS = (7, 1, 2)   # 7: the single random start of earlier versions of this table


class Run(NamedTuple):
    """One dictionary-learning run: per-template errors (strict, up to SHIFT delays), seconds per
    step, final objective."""
    errors: np.ndarray
    shift_errors: np.ndarray
    seconds_per_step: float
    objective: float


def initial_dictionary(kind: str, true: np.ndarray, seed: int = 7) -> np.ndarray:
    """(C, K) unit-norm starting atoms."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(true.shape)
    atoms = true + INIT_NOISE * noise / np.sqrt(true.shape[1]) if kind == "perturbed" else noise
    return (atoms / np.linalg.norm(atoms, axis=1, keepdims=True)).astype(np.float32)


def run_dcea(arg: str, init: np.ndarray, steps: int, workdir: pathlib.Path) -> Run:
    """Trains ``CONFIG:arg`` from ``init`` (C, K) in ``workdir``; objective = held-out NLL per bin."""
    workdir.mkdir(parents=True)
    start = workdir / "init.npy"
    np.save(start, init.T[None, :, :, None])  # the kernel layout (1, K, M, 1)
    config, metrics, minutes = common.train(f"{CONFIG}:{arg}", steps, workdir / "run",
                                            {"model.init_dictionary": str(start)})
    per_template = lambda name: np.array([metrics[f"dictionary/{name}_{c}"] for c in range(len(init))])  # noqa: E731
    return Run(per_template("err"), per_template(f"err_shift{SHIFT}"), minutes * 60 / config.train.num_steps,
               metrics[f"{config.eval.splits[0]}/nll"])


def run_sporco(true: np.ndarray, init: np.ndarray, steps: int, num_signals: int = 64) -> Run:
    """SPORCO ConvBPDNDictLearn (Gaussian) on y/M − sigmoid(mu) of ``num_signals`` signals."""

    # FFTW's default planner picks transforms by timing them, so the rounding (and, from a random
    # start, the learned atoms) changed from one process to the next; the estimated plan is fixed.
    sporco.fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    cfg = parse(common.load_config(CONFIG).data)
    rng = np.random.default_rng(1)
    signals = np.stack([binomial_spikes.simulate(cfg.spikes, cfg.image_size, rng)["image"][0, :, 0]
                        for _ in range(num_signals)], axis=1)
    signals = signals - 1.0 / (1.0 + np.exp(-cfg.spikes.mu))
    opt = cbpdndl.ConvBPDNDictLearn.Options({
            "Verbose": False, "MaxMainIter": steps, "AccurateDFid": False,
            "CBPDN": {"rho": 1.0, "AutoRho": {"Enabled": True}, "NonNegCoef": True},
            "CCMOD": {"ZeroMean": False}})
    start = time.perf_counter()
    learner = cbpdndl.ConvBPDNDictLearn(init.T.astype(np.float64), signals, 0.02, opt, dimK=1, dimN=1)
    learned = learner.solve()
    per_step = (time.perf_counter() - start) / steps
    objective = float(learner.getitstat().ObjFun[-1])
    atoms = np.asarray(learned).reshape(init.shape[1], -1).T
    return Run(template_errors(true, atoms)[0], template_errors(true, atoms, max_shift=SHIFT)[0], per_step, objective)


def spaced(errors: np.ndarray) -> str:
    """Per-template errors as one string, three decimals each."""
    return " ".join(f"{e:.3f}" for e in errors)


def row(method: str, label: str, steps: int, true: np.ndarray, init: np.ndarray, run: Run) -> dict:
    """One table row: errors of the initial and learned atoms, strict and up to SHIFT delays."""
    return {"method": method, "init": label, "steps": steps,
            "init err": spaced(template_errors(true, init)[0]),
            "err per template": spaced(run.errors), "err max": round(float(run.errors.max()), 4),
            f"err, delays <= {SHIFT}": spaced(run.shift_errors),
            "objective": round(run.objective, 5), "s/step": round(run.seconds_per_step, 3)}


def merge(previous: list[dict], new: list[dict], order: list[str]) -> list[dict]:
    """``previous`` rows of methods absent from ``new``, with ``new``'s rows, grouped by start (in
    the order first seen) and then by method (in ``order``)."""
    rerun = {r["method"] for r in new}
    rows = [r for r in previous if r["method"] not in rerun] + new
    start = lambda r: r["init"].split(" (")[0]  # noqa: E731  "random, best of 3 (random seed 1)"
    starts = list(dict.fromkeys(start(r) for r in previous + new))
    return sorted(rows, key=lambda r: (starts.index(start(r)), order.index(r["method"])))


def methods(true: np.ndarray, steps: int) -> dict[str, tuple[str, Callable[[np.ndarray, pathlib.Path], Run]]]:
    """--methods key -> (table name, run(init, workdir))."""
    dcea = lambda arg: lambda init, workdir: run_dcea(arg, init, steps, workdir)  # noqa: E731
    return {"binomial": ("DCEA-C Binomial", dcea("family=binomial")),
            "untied": ("DCEA-UC Binomial", dcea("family=binomial,untied")),
            "gaussian": ("DCEA-C Gaussian", dcea("family=gaussian")),
            "sporco": ("SPORCO ConvBPDNDictLearn (Gaussian)", lambda init, _: run_sporco(true, init, steps))}


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="binomial,untied,gaussian,sporco",
                        help="comma list of binomial, untied, gaussian, sporco")
    args = parser.parse_args()
    steps = 150 if args.quick else 300
    true = binomial_spikes.templates(parse(common.load_config(CONFIG).data).spikes)
    known = methods(true, steps)
    keys = [k for k in args.methods.split(",") if k]
    if not keys or set(keys) - set(known):
        parser.error(f"--methods={args.methods!r}: a comma list of {', '.join(known)}")
    chosen = dict(known[k] for k in keys)
    starts = [("perturbed", initial_dictionary("perturbed", true))]
    if not args.quick:
        starts += [(f"random seed {s}", initial_dictionary("random", true, seed=s)) for s in RANDOM_SEEDS]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dcea_ecdl_") as scratch:
        for label, init in starts:
            for name, fn in chosen.items():
                rows.append(row(name, label, steps, true, init, fn(init, pathlib.Path(scratch) / str(len(rows)))))
                print(rows[-1], flush=True)
    if not args.quick:
        for name in chosen:
            best = min((r for r in rows if r["method"] == name and r["init"].startswith("random")),
                       key=lambda r: r["objective"])
            rows.append({**best, "init": f"random, best of {len(RANDOM_SEEDS)} ({best['init']})"})
    columns = ["method", "init", "steps", "init err", "err per template", "err max", f"err, delays <= {SHIFT}",
               "objective", "s/step"]
    out = pathlib.Path(args.out) if args.out else None
    if out and out.is_file() and set(chosen) != {name for name, _ in known.values()}:
        previous = json.loads(out.read_text())
        if previous["quick"] == args.quick:
            rows = merge(previous["rows"], rows, [name for name, _ in known.values()])
            print(f"kept the other methods' rows of {out}")
    common.print_table(rows, columns)
    if out:
        common.write_json(args.out,
                          {"machine": common.machine_info(), "quick": args.quick, "rows": rows})


if __name__ == "__main__":
    main()
