"""Convolutional sparse autoencoder: digits features (linear probe) and Set12 restoration.

    python -m benchmarks.conv_sae [--quick] [--seeds=3] [--steps=0] [--parts=digits,restoration]
                                  [--codes=l1,topk,dense] [--corruptions=noise,mask,sr] [--out DIR]
    python -m benchmarks.conv_sae --parts=<part> --out=benchmarks/results/conv_sae_<part>.json   # committed

- ``digits``: ``configs/conv_sae.py:dataset=digits,code=<code>,seed=<s>`` (16×16 digits,
  corruption none, 2000 steps; ``--steps`` overrides) through the generic loop, one run per
  seed; from its metrics.json: linear-probe accuracy of the code on the 297 test digits (the
  ``linear_probe`` evaluator: standardised logistic regression fit on the 1500 train digits),
  code sparsity (fraction of non-zero code entries, test split) and test reconstruction PSNR.
  Reference row ``raw pixels``: the same probe (``linear_probe.fit_probe`` / ``accuracy``) on
  the flattened 16×16 train / test images (256 values each).
- ``restoration``: ``:dataset=natural_crops,corruption=<noise|mask|sr>,code=<code>`` (32×32 gray
  crops of the scikit-image / scikit-learn photos, 4000 steps) for each of ``--corruptions``:
  noise (σ = 25/255), mask (50 % of the pixels dropped; the known pixels are kept) and sr
  (super-resolution ×2: 2×2 box average, bicubic upsampling back). Evaluated with the task's own
  ``eval_step`` (fixed corruption key) on the ``set12`` source at image_size 32, fit "crop":
  the centred 32×32 crop of each of the 12 Set12 images (01.png … 12.png, 256² and 512²; none
  is a natural_crops photo: scikit-image's ``camera`` is a different cameraman picture), and on
  the natural_crops test split (512 fixed crops of camera, coffee, flower). PSNR of the output vs the clean crop, next
  to the PSNR of the corrupted input (the same for every seed); mean over crops.
Metrics are mean and std over seeds. ``--quick``: 1 seed, 100 steps per digits run and 20 per
natural-crops run (``--seeds`` / ``--steps`` still override).
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import jax
import numpy as np

from benchmarks import common
from sparse_ae import evaluate
from sparse_ae.evaluators import eval_outputs, linear_probe, reconstruction
from sparse_ae.evaluators._digits_classifier_training import load_split
from sparse_ae.train import loop

CONFIG = "configs/conv_sae.py"
CODES = ("l1", "topk", "dense")
CORRUPTIONS = ("noise", "mask", "sr")
PARTS = ("digits", "restoration")
EVAL_SOURCES = ("set12", "crops")
DIGITS_COLUMNS = ("features", "dim", "seeds", "probe_acc_mean", "probe_acc_std", "nonzero_mean", "nonzero_std",
                  "psnr_mean", "psnr_std", "minutes_mean")
# Input PSNRs do not depend on the seed (fixed crops, fixed corruption key): no std column.
RESTORATION_COLUMNS = ("corruption", "code", "seeds", "set12_in_mean", "set12_out_mean", "set12_out_std",
                       "crops_in_mean", "crops_out_mean", "crops_out_std", "nonzero_mean", "minutes_mean")


def raw_pixel_probe(image_size: int) -> float:
    """Test accuracy of the ``linear_probe`` evaluator's probe fit on flattened raw train digits."""
    probe = linear_probe.fit_probe(*load_split(image_size, "train"))
    return linear_probe.accuracy(probe, *load_split(image_size, "test"))


def digits_part(codes: list[str], seeds: int, steps: int, scratch: pathlib.Path) -> tuple[list[dict], list[dict]]:
    runs = []
    for code in codes:
        for seed in range(seeds):
            config, metrics, minutes = common.train(f"{CONFIG}:dataset=digits,code={code},seed={seed}", steps,
                                                    scratch / f"digits_{code}_{seed}")
            runs.append({"features": f"code={code}", "dim": config.model.code_dim, "seed": seed,
                         "probe_acc": metrics["test/linear_probe_acc"], "nonzero": metrics["test/code_nonzero"],
                         "psnr": metrics["test/psnr"], "minutes": minutes})
            print(json.dumps(runs[-1]), flush=True)
    rows = common.summarize_seeds(runs, ("features", "dim"), ("probe_acc", "nonzero", "psnr", "minutes"))
    image_size = common.load_config(f"{CONFIG}:dataset=digits").data.image_size
    rows.insert(0, {"features": "raw pixels", "dim": image_size**2, "probe_acc_mean": raw_pixel_probe(image_size)})
    return rows, runs


def restoration_psnr(config, workdir: pathlib.Path) -> tuple[float, float]:
    """(PSNR of the corrupted input, PSNR of the output) vs the clean images, mean over the
    config's test split, from the task's ``eval_step`` on ``workdir``'s final checkpoint."""
    run, state, _ = evaluate.restore_run(config, str(workdir))
    corrupted, restored = [], []
    with jax.set_mesh(run.mesh):
        for _, out in eval_outputs(run.task, state, loop.eval_datasets(run, ["test"])["test"]):
            corrupted.append(reconstruction.psnr(out["target"], out["corrupted"]))
            restored.append(reconstruction.psnr(out["target"], out["reconstruction"]))
    return float(np.mean(np.concatenate(corrupted))), float(np.mean(np.concatenate(restored)))


def eval_config(config, source: str):
    """``config`` evaluating on ``source``: "set12" (centred 32×32 crop of each of the 12 images,
    one batch of 12) or "crops" (the natural_crops test split as configured); every batch."""
    config = config.copy_and_resolve_references()
    config.eval.num_batches = 0
    if source == "set12":
        config.data.update(name="set12", fit="crop", path="")
        config.eval.batch_size = 12
    return config


def restoration_part(corruptions: list[str], codes: list[str], seeds: int, steps: int, scratch: pathlib.Path
                     ) -> tuple[list[dict], list[dict]]:
    runs = []
    for corruption in corruptions:
        for code in codes:
            for seed in range(seeds):
                workdir = scratch / f"natural_{corruption}_{code}_{seed}"
                config, metrics, minutes = common.train(
                        f"{CONFIG}:dataset=natural_crops,corruption={corruption},code={code},seed={seed}", steps,
                        workdir)
                run = {"corruption": corruption, "code": code, "seed": seed, "nonzero": metrics["test/code_nonzero"],
                       "minutes": minutes}
                for source in EVAL_SOURCES:
                    run[f"{source}_in"], run[f"{source}_out"] = restoration_psnr(eval_config(config, source), workdir)
                runs.append(run)
                print(json.dumps(runs[-1]), flush=True)
    keys = (*(f"{s}_{w}" for s in EVAL_SOURCES for w in ("in", "out")), "nonzero", "minutes")
    return common.summarize_seeds(runs, ("corruption", "code"), keys), runs


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=0, help="runs per config (default 3; --quick: 1)")
    parser.add_argument("--steps", type=int, default=0,
                        help="train.num_steps per run (default: the config's; --quick: 100 digits, 20 natural)")
    parser.add_argument("--codes", default=",".join(CODES))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--corruptions", default=",".join(CORRUPTIONS), help="of the restoration part")
    args = parser.parse_args()
    codes, parts, corruptions = ([c for c in a.split(",") if c] for a in (args.codes, args.parts, args.corruptions))
    if set(codes) - set(CODES) or set(parts) - set(PARTS) or set(corruptions) - set(CORRUPTIONS):
        parser.error(f"--codes must be among {CODES}, --parts among {PARTS}, --corruptions among {CORRUPTIONS}")
    seeds = args.seeds or (1 if args.quick else 3)
    digits_steps, natural_steps = (args.steps or 100, args.steps or 20) if args.quick else (args.steps, args.steps)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="conv_sae_bench_"))
    result = {"quick": args.quick, "seeds": seeds, "steps": {"digits": digits_steps or "config default",
                                                              "natural_crops": natural_steps or "config default"}}
    if "digits" in parts:
        result["digits"], result["digits_runs"] = digits_part(codes, seeds, digits_steps, scratch)
        common.print_table(f"16x16 digits, {seeds} seed(s): linear probe test accuracy, code non-zero fraction, "
                           "test PSNR (dB)", result["digits"], DIGITS_COLUMNS)
    if "restoration" in parts:
        result["restoration"], result["restoration_runs"] = restoration_part(
                corruptions, codes, seeds, natural_steps, scratch)
        common.print_table(f"natural crops 32x32, {seeds} seed(s): PSNR (dB) of the corrupted input (in) and the "
                           "output (out) on the 12 centred Set12 crops (set12) and the 512 held-out crops (crops); "
                           "noise sigma 25/255, mask 50%, sr: 2x2 box average then bicubic up", result["restoration"],
                           RESTORATION_COLUMNS)
    if args.out is not None:
        common.write_json(args.out, "conv_sae", result)


if __name__ == "__main__":
    main()
