"""Experiment 1: Binomial ECDL on simulated spikes — template recovery error per template.

    python -m benchmarks.dcea_ecdl [--quick] [--out=benchmarks/results/dcea_ecdl.json]

Rows: DCEA-C with the Binomial model (``configs/dcea_binomial_ecdl.py``), DCEA-C treating the
counts as Gaussian (``:family=gaussian``) and SPORCO's ConvBPDNDictLearn (Gaussian CSC dictionary
learning on y/M − sigmoid(mu), non-negative codes), all from one initial dictionary per init
kind: "perturbed" (ground truth + Gaussian noise, error ≈ 0.6 per template) and, without
--quick, "random" (i.i.d. Gaussian atoms). The DCEA runs use the task's jitted train_step on
simulator batches; error = √(1 − ⟨h, ĥ⟩²) after the best matching (evaluator
``dictionary_recovery``), strict and with delays of up to ``SHIFT`` samples.
"""

from __future__ import annotations

import pathlib
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = "configs/dcea_binomial_ecdl.py"
INIT_NOISE = 0.9   # per-entry std × sqrt(K) of the perturbation: initial error ≈ 0.6


def initial_dictionary(kind: str, true: np.ndarray, seed: int = 7) -> np.ndarray:
    """(C, K) unit-norm starting atoms."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(true.shape)
    atoms = true + INIT_NOISE * noise / np.sqrt(true.shape[1]) if kind == "perturbed" else noise
    return (atoms / np.linalg.norm(atoms, axis=1, keepdims=True)).astype(np.float32)


def run_dcea(family: str, init: np.ndarray, steps: int) -> tuple[np.ndarray, float]:
    """Trains DCEA-C; returns the learned (C, K) atoms and seconds per step."""
    from benchmarks.common import load_config  # pylint: disable=import-outside-toplevel
    from sparse_ae.data import binomial_spikes  # pylint: disable=import-outside-toplevel
    from sparse_ae.data.config import parse  # pylint: disable=import-outside-toplevel
    from sparse_ae.train.tasks import dcea  # pylint: disable=import-outside-toplevel

    config = load_config(f"{CONFIG}:family={family},steps={steps}")
    cfg = parse(config.data)
    task = dcea.make_task(config)
    rng = np.random.default_rng(config.seed)

    def batch():
        examples = [binomial_spikes.simulate(cfg.spikes, cfg.image_size, rng) for _ in range(cfg.batch_size)]
        return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

    key = jax.random.key(config.seed)
    state = jax.jit(task.init)(key, batch())
    state = state.replace(params={**state.params, "kernel": init.T[None, :, :, None]})
    step = jax.jit(task.train_step, donate_argnums=0)
    state, _ = step(state, batch(), key)  # compile
    start = time.perf_counter()
    for i in range(1, steps):
        state, metrics = step(state, batch(), jax.random.fold_in(key, i))
    jax.block_until_ready(metrics)
    per_step = (time.perf_counter() - start) / max(steps - 1, 1)
    return np.asarray(dcea.decoder_kernel(state.params))[0, :, :, 0].T, per_step


def run_sporco(init: np.ndarray, steps: int, num_signals: int = 64) -> tuple[np.ndarray, float]:
    """SPORCO ConvBPDNDictLearn (Gaussian) on y/M − sigmoid(mu) of ``num_signals`` signals."""
    from sporco.dictlrn import cbpdndl  # pylint: disable=import-outside-toplevel

    from benchmarks.common import load_config  # pylint: disable=import-outside-toplevel
    from sparse_ae.data import binomial_spikes  # pylint: disable=import-outside-toplevel
    from sparse_ae.data.config import parse  # pylint: disable=import-outside-toplevel

    cfg = parse(load_config(CONFIG).data)
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
    return np.asarray(learned).reshape(init.shape[1], -1).T, per_step


def main() -> None:
    from benchmarks import common  # pylint: disable=import-outside-toplevel
    from sparse_ae.data import binomial_spikes  # pylint: disable=import-outside-toplevel
    from sparse_ae.data.config import parse  # pylint: disable=import-outside-toplevel
    from sparse_ae.evaluators.dictionary_recovery import SHIFT, template_errors  # pylint: disable=import-outside-toplevel
    from benchmarks.common import load_config  # pylint: disable=import-outside-toplevel

    args = common.base_parser(__doc__.split("\n\n")[0]).parse_args()
    steps = 150 if args.quick else 300
    true = binomial_spikes.templates(parse(load_config(CONFIG).data).spikes)
    rows = []
    for init_kind in (("perturbed",) if args.quick else ("perturbed", "random")):
        init = initial_dictionary(init_kind, true)
        runs = {"DCEA-C Binomial": lambda: run_dcea("binomial", init, steps),
                "DCEA-C Gaussian": lambda: run_dcea("gaussian", init, steps),
                "SPORCO ConvBPDNDictLearn (Gaussian)": lambda: run_sporco(init, steps)}
        init_err, _ = template_errors(true, init)
        for name, fn in runs.items():
            learned, per_step = fn()
            errors, _ = template_errors(true, learned)
            shifted, _ = template_errors(true, learned, max_shift=SHIFT)
            rows.append({"method": name, "init": init_kind, "steps": steps,
                         "init err": " ".join(f"{e:.3f}" for e in init_err),
                         "err per template": " ".join(f"{e:.3f}" for e in errors),
                         "err max": round(float(errors.max()), 4),
                         f"err, delays <= {SHIFT}": " ".join(f"{e:.3f}" for e in shifted),
                         "s/step": round(per_step, 3)})
            print(rows[-1], flush=True)
    columns = ["method", "init", "steps", "init err", "err per template", "err max", f"err, delays <= {SHIFT}",
               "s/step"]
    common.print_table(rows, columns)
    common.write_json(args.out or REPO / "benchmarks" / "results" / "dcea_ecdl.json",
                      {"machine": common.machine_info(), "quick": args.quick, "rows": rows})


if __name__ == "__main__":
    main()
