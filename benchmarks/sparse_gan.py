"""Sparse DCGAN on digits: baseline vs L1 vs L0 vs L0,∞ vs ML, offline Fréchet distance and sparsity.

    python -m benchmarks.sparse_gan [--quick] [--seeds=3] [--steps=3000] [--classifier=DIR]
                                    [--out=benchmarks/results/sparse_gan.json]

Each row trains ``configs/sparse_gan.py:reg=<reg>,seed=<s>`` (16 × 16 digits, batch 64, Adam
2e-4/β1 0.5, non-saturating loss) through the generic loop and evaluates on the 1500 training
digits: Fréchet distance between the real digits and 1500 samples (fixed latents) in the
64-d features of the digits classifier (the evaluator's default one, trained on first use and
cached, unless ``--classifier`` is given), the classifier-based score, and the sparsity of the
generator's last hidden layer h_n (fraction of non-zeros, mean Hoyer sparsity of its needles). The reference row is the Fréchet distance of
the 1500 training digits to the 297 test digits (real vs real).
"""

from __future__ import annotations

import json
import pathlib
import tempfile

from benchmarks import common
from sparse_ae.evaluators import frechet_digits
from sparse_ae.evaluators._digits_classifier_training import default_classifier, load_split

REGS = ("none", "l1", "l0", "l0inf", "ml")


def real_reference(classifier: str, image_size: int) -> float:
    """Fréchet distance of the training digits to the test digits in the classifier's features."""
    embed = frechet_digits.embedder(classifier)
    return frechet_digits.frechet(embed, load_split(image_size, "train")[0], load_split(image_size, "test")[0])


def train_one(reg: str, seed: int, steps: int, classifier: str, workdir: pathlib.Path) -> dict:
    """One run's figures: Fréchet distance, digits score, sparsity of h_n and wall-clock seconds."""
    config, metrics, minutes = common.train(f"configs/sparse_gan.py:reg={reg},seed={seed}", steps, workdir,
                                            {"frechet_digits.classifier": classifier})
    return {"reg": reg, "seed": seed, "sparsity": list(config.model.sparsity), "seconds": 60 * minutes,
            "frechet": metrics["train/frechet_digits"], "digits_score": metrics["train/digits_score"],
            "code_nonzero": metrics["train/code_nonzero"], "code_hoyer": metrics["train/code_hoyer"]}


def summarize(runs: list[dict]) -> list[dict]:
    """One row per regularizer: seed count, Fréchet distance mean / std / per seed, other means."""
    stats = common.summarize_seeds(runs, ("reg",), ("frechet", "digits_score", "code_nonzero", "code_hoyer",
                                                    "seconds"))
    rows = []
    for row in stats:
        mine = [r for r in runs if r["reg"] == row["reg"]]
        rows.append({"reg": row["reg"], "sparsity": " ".join(mine[0]["sparsity"]), "seeds": row["seeds"],
                     "frechet_mean": row["frechet_mean"], "frechet_std": row["frechet_std"],
                     "per_seed": " ".join(f"{r['frechet']:.1f}" for r in mine),
                     "score_mean": row["digits_score_mean"], "h_n_nonzero": row["code_nonzero_mean"],
                     "h_n_hoyer": row["code_hoyer_mean"], "s_per_run": row["seconds_mean"]})
    return rows


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--classifier", default="", help="folder of a trained digits classifier (else the default one)")
    parser.add_argument("--regs", default=",".join(REGS))
    args = parser.parse_args()
    seeds, steps = (1, 200) if args.quick else (args.seeds, args.steps)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="sparse_gan_bench_"))
    image_size = common.load_config("configs/sparse_gan.py").data.image_size
    classifier = args.classifier or str(default_classifier(image_size))
    meta = json.loads((pathlib.Path(classifier) / "classifier.json").read_text())
    reference = real_reference(classifier, image_size)
    runs = []
    for reg in args.regs.split(","):
        for seed in range(seeds):
            runs.append(train_one(reg, seed, steps, classifier, scratch / f"{reg}_seed{seed}"))
            print(json.dumps(runs[-1]), flush=True)
    rows = summarize(runs)
    common.print_table(f"Sparse DCGAN on 16x16 digits, {steps} steps, {seeds} seed(s); Fréchet distance in the digits "
                f"classifier's features (test acc {meta['test_accuracy']:.3f}); real train vs real test: "
                f"{reference:.2f}", rows)
    if args.out:
        common.write_json(args.out, "sparse_gan", {"quick": args.quick, "steps": steps, "seeds": seeds,
                                                   "classifier": meta, "real_train_vs_test": reference,
                                                   "rows": rows, "runs": runs})


if __name__ == "__main__":
    main()
