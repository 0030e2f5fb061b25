"""Unsupervised segmentation of the offline texture composites from code grids vs raw colours.

    python -m benchmarks.sc_vae_segmentation [--quick] [--out=benchmarks/results/sc_vae_segmentation.json]

Needs the models trained by ``benchmarks.sc_vae_compare`` (``benchmarks/results/sc_vae_params/``;
trained on natural crops only, never on composites). Test set: ``--num`` 64×64 composites of the
test digits (:mod:`sparse_ae.data.composites`; background matched to the foreground's mean and std
per channel, and, as a second table, unmatched). Per image, the pipeline of
:mod:`sparse_ae.evaluators.segmentation` (spectral clustering of the 16×16 grid into 2 or 3 groups,
border rule) on each model's codes and on the mean colours of the same 4×4 cells (baseline): mean
IoU and DICE. Noise robustness: IoU as i.i.d. N(0, σ²) noise is added to the images (2 groups).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from benchmarks import common, sc_vae_common
from sparse_ae.data import composites
from sparse_ae.evaluators import segmentation
from sparse_ae.train.tasks import sc_vae as task_lib

MODELS = {"sc_vae": "lista", "vq_vae": "vq", "plain_ae": "none"}
SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.3)


def load_models(names) -> dict:
    """name → (jitted eval_step, state) of the saved benchmark models."""
    models = {}
    for name in names:
        config = sc_vae_common.make_config(MODELS[name], 100)
        task = task_lib.make_task(config)
        models[name] = (jax.jit(task.eval_step), sc_vae_common.load_state(task, config, name))
    return models


def features(models: dict, images: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """name → code grids (N, 16, 16, ·) of every model, plus "colour": mean colours per 4×4 cell."""
    out = {name: np.concatenate([np.asarray(step(state, {"image": images[i:i + batch]})["code"])
                                 for i in range(0, len(images), batch)]) for name, (step, state) in models.items()}
    out["colour"] = segmentation.pooled_colours(images, (16, 16))
    return out


def scores(feats: dict, masks: np.ndarray, num_groups: int) -> dict[str, dict[str, float]]:
    """name → mean IoU and DICE over the images."""
    result = {}
    for name, grid in feats.items():
        preds = [segmentation.segment(f, num_groups, masks.shape[1:]) for f in grid]
        result[name] = {"iou": float(np.mean([segmentation.iou(p, m) for p, m in zip(preds, masks)])),
                        "dice": float(np.mean([segmentation.dice(p, m) for p, m in zip(preds, masks)]))}
    return result


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=0, help="composites (default 200; quick 24)")
    args = parser.parse_args()
    num = args.num or (24 if args.quick else 200)
    models = load_models(MODELS)
    rng = np.random.default_rng(0)
    tables, start = {}, time.perf_counter()
    for matched in (True, False):
        images, masks = composites.make_arrays("test", num, 64, 3, seed=0, match_stats=matched)
        feats = features(models, images)
        rows = []
        for groups in segmentation.SEGMENT_GROUPS:
            for name, s in scores(feats, masks, groups).items():
                rows.append({"features": name, "groups": groups, **s})
        key = "matched" if matched else "unmatched"
        tables[key] = rows
        common.print_table(f"composites ({key} statistics), sigma = 0, {num} images", rows)
    images, masks = composites.make_arrays("test", num, 64, 3, seed=0, match_stats=True)
    curve = []
    for sigma in SIGMAS:
        noisy = (images + sigma * rng.standard_normal(images.shape)).astype(np.float32)
        for name, s in scores(features(models, noisy), masks, 2).items():
            curve.append({"sigma": sigma, "features": name, **s})
    common.print_table("noise robustness (matched composites, 2 groups)", curve)
    wide = [{"sigma": s, **{f"iou_{r['features']}": r["iou"] for r in curve if r["sigma"] == s}} for s in SIGMAS]
    common.print_table("IoU vs sigma", wide)
    if args.out:
        common.write_json(args.out, "sc_vae_segmentation", {
                "quick": args.quick, "num_images": num, "image_size": 64, "tables": tables, "noise_curve": curve,
                "seconds": time.perf_counter() - start})


if __name__ == "__main__":
    main()
