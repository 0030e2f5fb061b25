"""Sparse DCGAN on digits: baseline vs L1 vs L0 vs L0,∞ vs ML, offline Fréchet distance and sparsity.

    python -m benchmarks.sparse_gan [--quick] [--seeds=3] [--steps=3000] [--classifier=DIR] [--regs=none,l0inf]
                                    [--disc=dcgan|sngan] [--out=benchmarks/results/sparse_gan.json]
    python -m benchmarks.sparse_gan --figures [--figure_reg=l0] [--figure_steps=3000] --out=benchmarks/results

Each row trains ``configs/sparse_gan.py:reg=<reg>,disc=<disc>,seed=<s>`` (16 × 16 digits, batch 64, Adam
2e-4/β1 0.5, non-saturating loss) through the generic loop and evaluates on the 1500 training
digits: Fréchet distance between the real digits and 1500 samples (fixed latents) in the
64-d features of the digits classifier (the evaluator's default one, trained on first use and
cached, unless ``--classifier`` is given), the classifier-based score, and the sparsity of the
generator's last hidden layer h_n (fraction of non-zeros, mean Hoyer sparsity of its needles). The
reference row is the Fréchet distance of the 1500 training digits to the 297 test digits (real vs real).

``--figures`` instead trains one run briefly (``--figure_reg``, seed 0, ``--figure_steps`` steps) and
writes two PNGs into the ``--out`` folder: ``sparse_gan_sparsity_map.png`` (samples, and per pixel
of each regularised hidden layer the fraction of non-zero channels and the mean |h|) and
``sparse_gan_atoms.png`` (the effective atoms D_eff of every hidden layer,
:func:`sparse_ae.models.dcgan.effective_atoms`).
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import jax
import matplotlib
import numpy as np

from benchmarks import common
from sparse_ae.evaluators import frechet_digits
from sparse_ae.evaluators._digits_classifier_training import default_classifier, load_split
from sparse_ae.models.dcgan import DISCRIMINATORS, effective_atoms
from sparse_ae.models.sparsity import parse_spec, spatial_map
from sparse_ae.train import loop
from sparse_ae.train.tasks import sparse_gan

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  # pylint: disable=wrong-import-position

FIGURE_SAMPLES = 8  # samples shown, each above its maps

REGS = ("none", "l1", "l0", "l0inf", "ml")


def real_reference(classifier: str, image_size: int) -> float:
    """Fréchet distance of the training digits to the test digits in the classifier's features."""
    embed = frechet_digits.embedder(classifier)
    return frechet_digits.frechet(embed, load_split(image_size, "train")[0], load_split(image_size, "test")[0])


def train_one(reg: str, disc: str, seed: int, steps: int, classifier: str, workdir: pathlib.Path) -> dict:
    """One run's figures: Fréchet distance, digits score, sparsity of h_n and wall-clock seconds."""
    config, metrics, minutes = common.train(f"configs/sparse_gan.py:reg={reg},disc={disc},seed={seed}", steps,
                                            workdir, {"frechet_digits.classifier": classifier})
    return {"reg": reg, "disc": disc, "seed": seed, "sparsity": list(config.model.sparsity), "seconds": 60 * minutes,
            "frechet": metrics["train/frechet_digits"], "digits_score": metrics["train/digits_score"],
            "code_nonzero": metrics["train/code_nonzero"], "code_hoyer": metrics["train/code_hoyer"]}


def summarize(runs: list[dict]) -> list[dict]:
    """One row per discriminator and regularizer: seed count, Fréchet distance mean / std / per seed, other means."""
    stats = common.summarize_seeds(runs, ("disc", "reg"), ("frechet", "digits_score", "code_nonzero", "code_hoyer",
                                                            "seconds"))
    rows = []
    for row in stats:
        mine = [r for r in runs if (r["disc"], r["reg"]) == (row["disc"], row["reg"])]
        rows.append({"disc": row["disc"], "reg": row["reg"], "sparsity": " ".join(mine[0]["sparsity"]),
                     "seeds": row["seeds"],
                     "frechet_mean": row["frechet_mean"], "frechet_std": row["frechet_std"],
                     "per_seed": " ".join(f"{r['frechet']:.1f}" for r in mine),
                     "score_mean": row["digits_score_mean"], "h_n_nonzero": row["code_nonzero_mean"],
                     "h_n_hoyer": row["code_hoyer_mean"], "s_per_run": row["seconds_mean"]})
    return rows


def train_for_figures(reg: str, disc: str, steps: int, workdir: pathlib.Path):
    """(config, trained DCGAN) of a short run of ``reg`` (seed 0) with no evaluation."""
    config = common.load_config(f"configs/sparse_gan.py:reg={reg},disc={disc}")
    config.train.update(num_steps=steps, checkpoint_every=0, log_every=max(steps // 5, 1))
    config.eval.evaluators = ()
    state = loop.train_and_evaluate(config, workdir)
    return config, sparse_gan.trained_model(config, state)


def _show(axis, image: np.ndarray, title: str = "", **kwargs):
    """``imshow`` without ticks, pixels as blocks; returns the image (for a colour bar)."""
    shown = axis.imshow(image, interpolation="nearest", **kwargs)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=8)
    return shown


def plot_sparsity_maps(samples: np.ndarray, codes: dict[str, np.ndarray], title: str, path: pathlib.Path) -> None:
    """Row 0: samples (N, S, S, 1); per layer two rows: each sample's map of the fraction of non-zero
    channels and of mean |h| (``codes[name]``: (N, H, W, C)), the last column the batch average."""
    n = FIGURE_SAMPLES
    rows = [("sample", None, None)] + [(name, kind, code) for name, code in codes.items()
                                        for kind in ("nonzero", "mean_abs")]
    figure, axes = plt.subplots(len(rows), n + 1, figsize=(1.3 * (n + 1), 1.45 * len(rows) + 0.6), squeeze=False)
    for r, (name, kind, code) in enumerate(rows):
        if kind is None:
            for i in range(n):
                _show(axes[r, i], samples[i, ..., 0], f"sample {i}", cmap="gray", vmin=0, vmax=1)
            axes[r, n].axis("off")
            continue
        maps = [np.asarray(spatial_map(code[i:i + 1], kind)) for i in range(n)] + [np.asarray(spatial_map(code, kind))]
        top = max(float(m.max()) for m in maps)
        label = "non-zero share" if kind == "nonzero" else "mean |h|"
        for i in range(n):
            _show(axes[r, i], maps[i], "", cmap="viridis", vmin=0, vmax=top)
        image = _show(axes[r, n], maps[n], f"mean of {len(code)}", cmap="viridis", vmin=0, vmax=top)
        figure.colorbar(image, ax=axes[r, n], fraction=0.046)
        axes[r, 0].set_ylabel(f"{name}\n{label}", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def crop_to_support(stack: np.ndarray) -> np.ndarray:
    """(K, S, S) atoms cropped to the smallest window holding every non-zero of all of them."""
    rows, cols = np.flatnonzero(np.abs(stack).max(axis=(0, 2)) > 0), np.flatnonzero(np.abs(stack).max(axis=(0, 1)) > 0)
    return stack[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def tile(stack: np.ndarray, cols: int = 8) -> np.ndarray:
    """(K, h, w) -> one image of K tiles, ``cols`` per row, separated by one NaN (blank) pixel."""
    k, h, w = stack.shape
    grid = np.full((-(-k // cols) * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i, atom in enumerate(stack):
        r, c = divmod(i, cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = atom
    return grid


def plot_atoms(atoms: dict[str, np.ndarray], title: str, path: pathlib.Path) -> None:
    """One panel per layer: its atoms (K, S, S, 1) cropped to their support and tiled 8 per row, each on its
    own symmetric colour scale (red > 0 > blue, white = 0)."""
    stacks = {name: crop_to_support(stack[..., 0]) for name, stack in atoms.items()}
    grids = {name: tile(stack / np.maximum(np.abs(stack).max(axis=(1, 2)), 1e-12)[:, None, None])
             for name, stack in stacks.items()}
    figure, axes = plt.subplots(1, len(atoms), figsize=(6.5 * len(atoms), 7.2), squeeze=False)
    for axis, (name, grid) in zip(axes[0], grids.items()):
        k, h, w = stacks[name].shape
        image = _show(axis, grid, f"{name}: {k} atoms, cropped to their {h}×{w} support\n"
                      f"(of the {atoms[name].shape[1]}×{atoms[name].shape[2]} image); each scaled to max |atom| = 1",
                      cmap="RdBu_r", vmin=-1, vmax=1)
    figure.colorbar(image, cax=figure.add_axes((0.93, 0.3, 0.012, 0.4)))
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.03, right=0.9, top=0.8, wspace=0.08)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def figures(reg: str, disc: str, steps: int, out: pathlib.Path) -> list[pathlib.Path]:
    """Trains briefly and writes the sparsity-map and effective-atom PNGs into ``out``; returns their paths."""
    config, net = train_for_figures(reg, disc, steps, pathlib.Path(tempfile.mkdtemp(prefix="sparse_gan_fig_")))
    z = jax.random.normal(jax.random.key(0), (64, config.model.latent_dim))
    codes, _ = net.generator.representations(z, train=False)
    samples = np.asarray(jax.nn.sigmoid(net.generator.out(codes[-1])))
    specs = [parse_spec(s) for s in config.model.sparsity]
    regularised = {f"h_{i + 1} ({spec})": np.asarray(codes[i]) for i, spec in enumerate(specs) if spec.kind != "none"}
    run = f"reg={reg}, {disc} discriminator, {steps} steps of batch {config.data.batch_size}, 16×16 digits"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "sparse_gan_sparsity_map.png", out / "sparse_gan_atoms.png"]
    plot_sparsity_maps(samples, regularised or {"h_n (none)": np.asarray(codes[-1])},
                       f"Spatial sparsity of the regularised generator layers\n({run})\nper pixel of the layer's "
                       "map: the share of non-zero channels and the mean |h| over channels;\ncolumns 0–7 one "
                       "sample each, last column the mean over 64 samples", paths[0])
    atoms = {f"h_{i + 1} ({spec})": np.asarray(effective_atoms(net.generator, i + 1)) for i, spec in enumerate(specs)}
    plot_atoms(atoms, f"Effective atoms D_eff of the generator\n({run})\npre-sigmoid image of a unit impulse "
               "in one channel at the centre pixel of h_i, through the linear parts of the later layers\n"
               "(transposed convolutions and BatchNorm scales; ReLU and sparsity layers as the identity)", paths[1])
    return paths


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--classifier", default="", help="folder of a trained digits classifier (else the default one)")
    parser.add_argument("--regs", default=",".join(REGS))
    parser.add_argument("--disc", default="dcgan", choices=DISCRIMINATORS,
                        help="the discriminator: dcgan, or sngan (spectrally normalised)")
    parser.add_argument("--figures", action="store_true",
                        help="only train one short run and write the two PNGs into the --out folder")
    parser.add_argument("--figure_reg", default="l0", choices=REGS)
    parser.add_argument("--figure_steps", type=int, default=3000)
    args = parser.parse_args()
    if args.figures:
        if args.out is None or args.out.suffix:
            parser.error("--figures needs --out=FOLDER (the PNGs are written there)")
        for path in figures(args.figure_reg, args.disc, args.figure_steps, args.out):
            print(f"wrote {path}")
        return
    seeds, steps = (1, 200) if args.quick else (args.seeds, args.steps)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="sparse_gan_bench_"))
    image_size = common.load_config("configs/sparse_gan.py").data.image_size
    classifier = args.classifier or str(default_classifier(image_size))
    meta = json.loads((pathlib.Path(classifier) / "classifier.json").read_text())
    reference = real_reference(classifier, image_size)
    runs = []
    for reg in args.regs.split(","):
        for seed in range(seeds):
            runs.append(train_one(reg, args.disc, seed, steps, classifier, scratch / f"{reg}_seed{seed}"))
            print(json.dumps(runs[-1]), flush=True)
    rows = summarize(runs)
    common.print_table(f"Sparse GAN ({args.disc} discriminator) on 16x16 digits, {steps} steps, {seeds} seed(s); "
                       f"Fréchet distance in the digits classifier's features (test acc "
                       f"{meta['test_accuracy']:.3f}); real train vs real test: {reference:.2f}", rows)
    if args.out:
        common.write_json(args.out, "sparse_gan", {"quick": args.quick, "disc": args.disc, "steps": steps,
                                                   "seeds": seeds,
                                                   "classifier": meta, "real_train_vs_test": reference,
                                                   "rows": rows, "runs": runs})


if __name__ == "__main__":
    main()
