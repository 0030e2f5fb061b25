"""Experiment 2: supervised Poisson denoising on Set12 at peaks 1, 2, 4 (the paper code's protocol).

    python -m benchmarks.dcea_denoise --weights=official [--draws=5] [--anchor-draws=0]
                                      [--out=benchmarks/results/dcea_denoise_official.json]
    python -m benchmarks.dcea_denoise [--weights=committed] [--quick] [--images=DIR] [--departures]
    python -m benchmarks.dcea_denoise --export=WORKDIR --name=untied_peak4   # save trained params

Per image x in [0, 1]: Q = max(x)/peak, y ~ Poisson(x/Q), PSNR = 20·log10(max x) − 10·log10(MSE),
averaged over draws, then over the images (Set12, or any folder with ``--images``). Rows: DCEA-C
and DCEA-UC from ``--weights``: ``official`` (the authors' six networks, ``<data root>/dcea_official``,
read through ``sparse_ae.models.dcea_official`` as ``sparse_ae.tools.import_dcea`` does;
49-shift averaging as they run them) or ``committed`` (this project's trained parameters in
``benchmarks/results/dcea_params/<tied|untied>_peak<p>.npz`` + ``.json``, each also without shift
averaging). ``--departures`` adds, per network, one row for each of this project's earlier
variants (``elu_form=unit_slope``, ``layout=rounded``) to measure what each costs, and one
without shift averaging (one canvas, what a network trained on one shift per step is run as). The classical
anchor on the same noisy draws: Anscombe transform 2·sqrt(y + 3/8) (the generalized transform
without a Gaussian component), BM3D with sigma 1 (``bm3d`` package), closed-form unbiased inverse
(Mäkitalo & Foi 2011). Paper numbers (Set12, DCEA code, 400 epochs on VOC) are printed alongside.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from PIL import Image

from benchmarks import common
from sparse_ae import data as data_lib
from sparse_ae.models import dcea_official
from sparse_ae.models.dcea import DCEA
from sparse_ae.train import checkpointing, loop
from sparse_ae.train.state import split_module
from sparse_ae.train.tasks import dcea as dcea_task
from sparse_ae.utils import sections

PARAMS = common.REPO / "benchmarks" / "results" / "dcea_params"
PEAKS = (1, 2, 4)
VARIANTS = (("tied", "DCEA-C"), ("untied", "DCEA-UC"))
PAPER = {"DCEA-C": {1: 20.72, 2: 22.02, 4: 23.51}, "DCEA-UC": {1: 21.37, 2: 22.79, 4: 24.37}}
ANCHOR_EARLIER = {1: 20.18, 2: 21.96, 4: 23.82}   # GAT + BM3D measured before, 2 draws
DEPARTURES = {"elu_form": "unit_slope", "layout": "rounded"}   # this project's earlier network


def load_images(folder: pathlib.Path) -> list[np.ndarray]:
    """The folder's images as grayscale (H, W) float64 in [0, 1], sorted by file name."""
    paths = data_lib.image_paths(data_lib.DataConfig(name="image_folder", path=str(folder)))
    return [np.asarray(Image.open(p).convert("L"), np.float64) / 255.0 for p in paths]


def peak_psnr(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(20 * np.log10(clean.max()) - 10 * np.log10(np.mean((clean - estimate) ** 2)))


def anscombe_bm3d(counts: np.ndarray) -> np.ndarray:
    """Rate estimate from Poisson counts: Anscombe, BM3D (sigma 1), exact unbiased inverse."""
    import bm3d  # pylint: disable=import-outside-toplevel

    d = np.maximum(bm3d.bm3d(2.0 * np.sqrt(counts + 3.0 / 8.0), sigma_psd=1.0), 1e-3)
    s = np.sqrt(1.5)
    return np.maximum(0.25 * d**2 + 0.25 * s / d - 11.0 / 8.0 / d**2 + 5.0 / 8.0 * s / d**3 - 0.125, 0.0)


def load_weights(weights: str, name: str) -> tuple[ml_collections.ConfigDict, dict] | None:
    """``(config.model, params)`` of network ``name`` (e.g. ``untied_peak4``) from ``weights``
    ("official" or "committed"), or None when it is not there."""
    if weights == "official":
        path = data_lib.shared_path("dcea_official") / f"{name}.npz"
        if not path.exists():
            return None
        fields, params = dcea_official.load(path)
        return sections.complete(fields, dcea_task.ModelConfig, "config.model"), params
    if not (PARAMS / f"{name}.npz").exists():
        return None
    with np.load(PARAMS / f"{name}.npz") as saved:
        params = dict(saved)
    return ml_collections.ConfigDict(json.loads((PARAMS / f"{name}.json").read_text())["model"]), params


def denoiser(model_config: ml_collections.ConfigDict, params: dict, shift_average: bool, **changes):
    """Jitted counts (1, H, W, 1) -> natural parameter of the network (``changes``: model fields)."""
    model_config = ml_collections.ConfigDict({**model_config.to_dict(), "eval_shift_average": shift_average,
                                              **changes})
    graphdef, _, rest = split_module(DCEA(dcea_task.dcea_config(model_config, eval_mode=True), rngs=nnx.Rngs(0)))
    params = {k: jnp.asarray(v) for k, v in params.items()}
    natural = jax.jit(lambda p, y: nnx.merge(graphdef, p, rest)(y).natural)  # params as an argument:
    return lambda y: natural(params, y)                                         # no constant folding


def save_params(name: str, config, params, steps: int, note: str = "") -> None:
    """Writes ``PARAMS/<name>.npz`` (float32 params) and ``<name>.json`` (model, optimiser, data)."""
    PARAMS.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(PARAMS / f"{name}.npz", **{k: np.asarray(v, np.float32) for k, v in params.items()})
    summary = {"model": config.model.to_dict(), "optim": config.optim.to_dict(), "data": {
            "name": config.data.name, "image_size": config.data.image_size, "batch_size": config.data.batch_size},
               "steps": int(steps), **({"training_note": note} if note else {})}
    (PARAMS / f"{name}.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(f"saved {PARAMS / name}.npz (step {steps})")


def export(workdir: str, name: str) -> None:
    """Saves the newest checkpoint's params of a training workdir as ``<name>.npz`` + config."""
    config = ml_collections.ConfigDict(json.loads((pathlib.Path(workdir) / "config.json").read_text()))
    run = loop.build_run(config, next(iter(loop.build_dataset(config, config.train.split, train=True,
                                                               batch_size=config.data.batch_size))))
    checkpointer = checkpointing.Checkpointer(workdir, config.train.keep_checkpoints)
    with jax.set_mesh(run.mesh):
        state, step = checkpointer.restore(run.abstract_state)
    checkpointer.close()
    save_params(name, config, state.params, step)


def network_rows(weights: str, departures: bool) -> list[tuple[str, bool, dict]]:
    """(variant, shift averaging, model changes) rows per network: the official networks as their
    authors run them (plus one row per departure and one without shift averaging), the committed
    ones without and with shifts."""
    if weights == "official":
        return [("as published", True, {})] + ([(f"{k}={v}", True, {k: v}) for k, v in DEPARTURES.items()]
                                               + [("as published", False, {})] if departures else [])
    return [("committed", False, {}), ("committed", True, {})]


def evaluate_peak(images, peak: float, draws: int, anchor_draws: int, weights: str, departures: bool,
                  variants: tuple[str, ...] = ("tied", "untied"), seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    noisy = [[rng.poisson(x / (x.max() / peak)).astype(np.float64) for _ in range(draws)] for x in images]
    rows = []
    for variant, label in VARIANTS:
        if variant not in variants:
            continue
        name = f"{variant}_peak{peak:g}"
        loaded = load_weights(weights, name)
        if loaded is None:
            print(f"skipping {label} at peak {peak:g}: no {weights} network {name}")
            continue
        for network, shift_average, changes in network_rows(weights, departures):
            natural = denoiser(*loaded, shift_average, **changes)
            start, psnrs = time.perf_counter(), []
            for x, ys in zip(images, noisy):
                q = x.max() / peak
                psnrs.append(np.mean([peak_psnr(x, q * np.exp(np.asarray(natural(
                        jnp.asarray(y[None, :, :, None], jnp.float32)))[0, :, :, 0])) for y in ys]))
            rows.append({"peak": peak, "method": label, "network": network, "shift avg": shift_average,
                         "draws": draws, "PSNR": round(float(np.mean(psnrs)), 2), "paper": PAPER[label][peak],
                         "per image": [round(float(v), 3) for v in psnrs],
                         "seconds": round(time.perf_counter() - start, 1)})
            print({k: v for k, v in rows[-1].items() if k != "per image"}, flush=True)
    if anchor_draws:
        start, psnrs = time.perf_counter(), []
        for x, ys in zip(images, noisy):
            q = x.max() / peak
            psnrs.append(np.mean([peak_psnr(x, q * anscombe_bm3d(y)) for y in ys[:anchor_draws]]))
        rows.append({"peak": peak, "method": "Anscombe+BM3D (anchor)", "network": "-", "shift avg": "-",
                     "draws": anchor_draws, "PSNR": round(float(np.mean(psnrs)), 2), "paper": ANCHOR_EARLIER[peak],
                     "seconds": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)
    noisy_psnr = np.mean([np.mean([peak_psnr(x, x.max() / peak * y) for y in ys]) for x, ys in zip(images, noisy)])
    rows.append({"peak": peak, "method": "noisy input Q·y", "network": "-", "shift avg": "-", "draws": draws,
                 "PSNR": round(float(noisy_psnr), 2), "paper": "-", "seconds": 0.0})
    return rows


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--weights", choices=("committed", "official"), default="committed",
                        help="the networks: this project's trained parameters or the authors' published ones")
    parser.add_argument("--images", type=pathlib.Path, default=None,
                        help="folder of test images (default: Set12 under the data root)")
    parser.add_argument("--draws", type=int, default=10, help="noise draws per image for DCEA")
    parser.add_argument("--anchor-draws", type=int, default=2, help="draws per image for Anscombe+BM3D (0: skip)")
    parser.add_argument("--peaks", type=str, default="1,2,4")
    parser.add_argument("--variants", type=str, default="tied,untied", help="DCEA-C (tied) and/or DCEA-UC (untied)")
    parser.add_argument("--departures", action="store_true",
                        help="official weights: also each of this project's earlier variants, one at a time")
    parser.add_argument("--export", type=str, default=None, help="training workdir to export params from")
    parser.add_argument("--name", type=str, default=None, help="name of the exported params (e.g. untied_peak4)")
    args = parser.parse_args()
    if args.export:
        if not args.name:
            raise argparse.ArgumentTypeError("--export needs --name (e.g. --name=untied_peak4)")
        export(args.export, args.name)
        return
    draws = 2 if args.quick else args.draws
    peaks = [float(p) for p in args.peaks.split(",")]
    if min(peaks) <= 0 or draws < 1:
        parser.error(f"--peaks must be > 0 and --draws >= 1, got {args.peaks!r} and {draws}")
    images = load_images(args.images or data_lib.shared_path("set12"))
    rows = []
    for peak in peaks:
        rows += evaluate_peak(images[:2] if args.quick else images, peak, draws,
                              0 if args.quick else args.anchor_draws, args.weights, args.departures,
                              tuple(args.variants.split(",")))
    common.print_table(rows, ["peak", "method", "network", "shift avg", "draws", "PSNR", "paper", "seconds"])
    training = ({} if args.weights == "official" else
                {p.stem: json.loads(p.read_text()) for p in sorted(PARAMS.glob("*.json"))})
    if args.out:
        common.write_json(args.out, {"machine": common.machine_info(), "quick": args.quick, "weights": args.weights,
                                     "images": str(args.images or "set12"), "rows": rows, "training": training})


if __name__ == "__main__":
    main()
