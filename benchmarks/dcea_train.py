"""DCEA Poisson denoiser trained here, in the authors' form, on Train400: Set12 PSNR against training time.

    python -m benchmarks.dcea_train [--variant=untied] [--peak=4] [--minutes=20[,20]] [--steps=N|auto] [--lr=...]
                                    [--schedules=one_shift,all_shifts] [--init=PARAMS.npz] [--export]
                                    [--out=benchmarks/results/dcea_train_untied_peak4.json]

Two schedules of ``configs/dcea_poisson_denoise.py`` from the same initialisation:
``one_shift`` (the config's default: one canvas of each of ``--batch`` crops per step) and
``all_shifts`` (the authors': each step trains through the average of all 49 shifted canvases of
one random 128×128 crop, batch 1). A schedule may carry config overrides, run side by side with
the others (``all_shifts:model.init_norm=authors``: the authors' initial scale as well). Each
trains with the task's jitted ``train_step`` on the real Train400 pipeline for
``--minutes`` of step time at a constant learning rate (data loading and evaluation not
counted), or for ``--steps`` steps with the config's cosine decay (stopped early after
``--minutes`` of step time when both are given; ``--steps=auto`` times 30 steps first and takes
as many as fill ``--minutes``: a budget for an unknown machine). ``--init`` starts from saved
parameters instead of the initialisation. Every ``--eval-every`` minutes the current network denoises the Set12 images of ``--eval-images`` (256×256 ones by
default) with ``--draws`` fixed noise draws each (the task's ``eval_step``: 49-shift averaging,
the paper's PSNR), giving the curve PSNR-versus-training-time. ``--export`` saves the last
parameters of the first schedule as ``benchmarks/results/dcea_params/<variant>_peak<p>.npz``
(+ ``.json``), which ``python -m benchmarks.dcea_denoise`` evaluates on all of Set12. The authors'
published network of the same variant and peak is measured the same way; with ``--out`` a PNG
of the curves sits beside the JSON.
"""

from __future__ import annotations

import ast
import json
import pathlib
import textwrap
import time

import jax
import matplotlib
import numpy as np

from benchmarks import common, dcea_denoise
from sparse_ae import data as data_lib
from sparse_ae.evaluators import poisson_denoising
from sparse_ae.tools import import_dcea
from sparse_ae.train.tasks import dcea as dcea_task

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  # pylint: disable=wrong-import-position

CONFIG = "configs/dcea_poisson_denoise.py"
SCHEDULES = {"one_shift": False, "all_shifts": True}


def schedule_config(variant: str, peak: float, spec: str, batch: int, steps: int):
    """The config of a run: ``spec`` is a schedule name, optionally followed by config overrides
    (``all_shifts:model.init_norm=linear:data.random_vflip=False``, values as Python literals);
    ``steps`` > 0 with the config's cosine decay over them, else a constant learning rate (a run
    stopped by time)."""
    schedule, *overrides = spec.split(":")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r} (in {spec!r}) is not one of {tuple(SCHEDULES)}")
    config = common.load_config(f"{CONFIG}:{variant},peak={peak:g},shift_average={SCHEDULES[schedule]}")
    config.data.batch_size = batch if schedule == "one_shift" else 1
    for override in overrides:
        path, sep, value = override.partition("=")
        section, _, field = path.partition(".")
        if not sep or section not in config or field not in config[section]:
            raise ValueError(f"override {override!r} in {spec!r} must be <section>.<field>=<value> of an existing field")
        config[section][field] = literal(value)
    if steps:
        config.train.num_steps = steps
    else:
        config.optim.schedule = "constant"
    return config


def literal(text: str):
    """A Python literal, or the text itself (a bare string such as ``linear``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def set12_psnr(task, state, images: list[np.ndarray], draws: int) -> float:
    """Mean over images of the mean over draws of the paper's PSNR (the task's eval_step)."""
    eval_step = jax.jit(task.eval_step)
    psnrs = []
    for x in images:
        batch = {"image": x[None, :, :, None].astype(np.float32)}
        per_draw = [poisson_denoising.peak_psnr(batch["image"], np.asarray(
                eval_step(state, {**batch, "noise_seed": np.array([d], np.int32)})["reconstruction"]))[0]
                    for d in range(draws)]
        psnrs.append(np.mean(per_draw))
    return float(np.mean(psnrs))


def official_psnr(variant: str, peak: float, images, draws: int) -> float | None:
    """The same measurement for the authors' published network (None if it is not there)."""
    path = data_lib.shared_data_dir() / "dcea_official" / f"{variant}_peak{peak:g}.npz"
    if not path.exists():
        return None
    config, params = import_dcea.imported_config(str(path), CONFIG)
    task = dcea_task.make_task(config)
    state = jax.jit(task.init)(jax.random.key(0), {"image": np.zeros((1, 128, 128, 1), np.float32)})
    return set12_psnr(task, state.replace(params=params), images, draws)


def legend_label(spec: str) -> str:
    """A schedule spec as a short legend entry: its overrides without section names, wrapped."""
    schedule, *overrides = spec.split(":")
    fields = ", ".join(override.split(".", 1)[-1] for override in overrides)
    return "\n".join([schedule, *textwrap.wrap(fields, 36)])


def plot(rows: list[dict], official: float | None, title: str, path: pathlib.Path, machine: str) -> None:
    """PSNR against training hours per schedule, the authors' network as a horizontal line."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for schedule in dict.fromkeys(r["schedule"] for r in rows):
        mine = [r for r in rows if r["schedule"] == schedule]
        axes.plot([r["train minutes"] / 60 for r in mine], [r["Set12 PSNR"] for r in mine], "o-",
                  label=legend_label(schedule))
    if official is not None:
        axes.axhline(official, color="k", linestyle="--", label="authors' weights")
    axes.set(xlabel=f"training hours (step time, {machine})", ylabel="PSNR (dB)", title=title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def eval_images(names: str) -> list[np.ndarray]:
    """The Set12 images named in the comma list ``names`` (file stems), in file order."""
    folder = data_lib.shared_path("set12")
    paths = data_lib.image_paths(data_lib.DataConfig(name="set12", path=str(folder)))
    return [x for p, x in zip(paths, dcea_denoise.load_images(folder)) if p.stem in names.split(",")]


def replot(path: pathlib.Path) -> None:
    """Adds the authors' network to a written result (same images and draws) and redraws its PNG."""
    result = json.loads(path.read_text())
    images = eval_images(result["eval images"])
    result["authors' weights"] = official_psnr(result["variant"], result["peak"], images, result["draws"])
    common.write_json(path, result)
    plot(result["rows"], result["authors' weights"], title(result["variant"], result["peak"], result["eval images"]),
         path.with_suffix(".png"), machine_label(result["machine"]))


def machine_label(machine: dict) -> str:
    """'2 CPU cores' or the accelerator's kind, for the time axis."""
    if machine["backend"] == "cpu":
        return f"{machine['cores']} CPU cores"
    return ", ".join(machine["device_kinds"])


def title(variant: str, peak: float, eval_images: str) -> str:
    return f"DCEA-{'C' if variant == 'tied' else 'UC'}, peak {peak:g}, Set12 {eval_images}"


def start(config, init: dict | None = None):
    """(task, batch iterator, initial state, compiled train step, key) of a run of ``config``;
    ``init``: parameters to start from instead of the task's initialisation."""
    task = dcea_task.make_task(config)
    batches = (strip_valid(b) for b in data_lib.build(config.data, "train", seed=config.seed, train=True,
                                                         per_process_batch=config.data.batch_size))
    rng = jax.random.key(config.seed)
    state = jax.jit(task.init)(rng, next(batches))
    if init is not None:
        state = state.replace(params=matching_params(state.params, init))
    step_fn = jax.jit(task.train_step, donate_argnums=0)
    jax.block_until_ready(step_fn(jax.tree.map(np.copy, state), next(batches), rng))  # compile
    return task, batches, state, step_fn, rng


def matching_params(params: dict, saved: dict) -> dict:
    """``saved`` as the run's parameters, after checking it has the same names and shapes."""
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    saved_shapes = {k: tuple(v.shape) for k, v in saved.items()}
    if shapes != saved_shapes:
        raise ValueError(f"--init parameters {saved_shapes} do not match this run's {shapes}; "
                         "give the variant, peak and model of the run that saved them")
    return {k: jax.numpy.asarray(v, params[k].dtype) for k, v in saved.items()}


def load_init(path: str) -> dict:
    """Parameters saved by ``--export`` (or ``dcea_denoise.save_params``) at ``path`` (.npz)."""
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(f"--init={path!r}: no such file (an .npz written by --export)")
    with np.load(path) as saved:
        return dict(saved)


def strip_valid(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "valid"}


def probe_step_seconds(config, steps: int = 30) -> float:
    """Median seconds per train step of ``config`` on this machine (after compilation)."""
    _, batches, state, step_fn, rng = start(config)
    times = []
    for step in range(steps):
        batch = next(batches)
        begin = time.perf_counter()
        state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step))
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - begin)
    return float(np.median(times))


def train_curve(config, images, minutes: float, eval_every: float, draws: int, label: str, steps: int = 0,
                init: dict | None = None):
    """Trains ``config`` (from ``init`` if given) for ``steps`` steps (if > 0) or ``minutes`` of
    step time, whichever ends first; returns (curve rows, final state)."""
    task, batches, state, step_fn, rng = start(config, init)
    rows, seconds, step, next_eval = [], 0.0, 0, 0.0
    while True:
        done = (steps and step >= steps) or (minutes and seconds >= 60 * minutes)
        if seconds >= next_eval or done:
            rows.append({"schedule": label, "step": step, "train minutes": round(seconds / 60, 2),
                         "examples": step * config.data.batch_size,
                         "Set12 PSNR": round(set12_psnr(task, state, images, draws), 3)})
            print(rows[-1], flush=True)
            next_eval += 60 * eval_every
            if done:
                return rows, state
        batch = next(batches)
        begin = time.perf_counter()
        state, metrics = step_fn(state, batch, jax.random.fold_in(rng, step))
        jax.block_until_ready(metrics)
        seconds += time.perf_counter() - begin
        step += 1


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=("tied", "untied"), default="untied")
    parser.add_argument("--peak", type=float, default=4.0)
    parser.add_argument("--schedules", default="one_shift,all_shifts",
                        help="comma list of one_shift / all_shifts, each optionally with ':section.field=value' "
                             "config overrides, e.g. all_shifts:model.init_norm=linear (side-by-side ablations)")
    parser.add_argument("--batch", type=int, default=4, help="crops per step of the one-shift schedule")
    parser.add_argument("--minutes", default="", help="training (step) minutes, one value or one per schedule "
                        "(default 20 without --steps)")
    parser.add_argument("--steps", default="0",
                        help="train this many steps with the config's cosine decay (stopping at --minutes if "
                             "also given) instead of --minutes at a constant lr; 'auto': as many as the step "
                             "time, measured first, allows in --minutes")
    parser.add_argument("--init", default="", help="an .npz of parameters saved by --export to start from")
    parser.add_argument("--lr", type=float, default=0.0, help="learning rate (0: the config's)")
    parser.add_argument("--eval-every", type=float, default=2.5, help="minutes of training between evaluations")
    parser.add_argument("--eval-images", default="01,02,03,04,05,06,07", help="Set12 image names")
    parser.add_argument("--draws", type=int, default=1, help="noise draws per image in the curve")
    parser.add_argument("--export", action="store_true", help="save the first schedule's final parameters")
    parser.add_argument("--replot", type=pathlib.Path, default=None,
                        help="a JSON this benchmark wrote: measure the authors' network and redraw its PNG only")
    args = parser.parse_args()
    if args.peak <= 0:
        parser.error(f"--peak must be > 0, got {args.peak}")
    if args.steps != "auto" and not args.steps.isdigit():
        parser.error(f"--steps must be a number of steps or 'auto', got {args.steps!r}")
    if args.steps == "auto" and not args.minutes:
        parser.error("--steps=auto needs --minutes (the time budget the steps must fill)")
    if args.replot:
        replot(args.replot)
        return
    schedules = args.schedules.split(",")
    fixed_steps = 0 if args.quick or args.steps == "auto" else int(args.steps)
    minutes = [1.0] if args.quick else [float(m) for m in (args.minutes or ("0" if fixed_steps else "20")).split(",")]
    minutes *= len(schedules) if len(minutes) == 1 else 1
    if len(minutes) != len(schedules):
        parser.error(f"--minutes needs one value or one per schedule ({len(schedules)}), got {args.minutes!r}")
    eval_every = 0.5 if args.quick else args.eval_every
    images = eval_images(args.eval_images)
    init = load_init(args.init) if args.init else None
    rows, summary = [], {}
    for index, (schedule, budget) in enumerate(zip(schedules, minutes)):
        steps = fixed_steps
        if args.steps == "auto" and not args.quick:
            seconds = probe_step_seconds(schedule_config(args.variant, args.peak, schedule, args.batch, 0))
            steps = max(int(60 * budget / seconds), 1)
            print(f"{schedule}: {seconds * 1e3:.1f} ms per step, {steps} steps fill {budget:g} minutes", flush=True)
        config = schedule_config(args.variant, args.peak, schedule, args.batch, steps)
        if args.lr:
            config.optim.lr = args.lr
        curve, state = train_curve(config, images, budget, eval_every, args.draws, schedule, steps, init)
        rows += curve
        summary[schedule] = {"steps": curve[-1]["step"], "seconds per step": round(60 * curve[-1]["train minutes"]
                                                                                      / max(curve[-1]["step"], 1), 4)}
        if args.export and index == 0 and not args.quick:
            dcea_denoise.save_params(f"{args.variant}_peak{args.peak:g}", config, state.params, curve[-1]["step"])
    official = official_psnr(args.variant, args.peak, images, args.draws)
    common.print_table(rows, ["schedule", "step", "train minutes", "examples", "Set12 PSNR"])
    print(summary, f"authors' weights: {official}")
    if args.out:
        machine = common.machine_info()
        path = common.write_json(args.out, {
                "machine": machine, "quick": args.quick, "variant": args.variant, "peak": args.peak,
                "eval images": args.eval_images, "draws": args.draws, "rows": rows, "schedules": summary,
                "init": args.init, "lr": config.optim.lr, "batch": args.batch,
                "authors' weights": official})
        plot(rows, official, title(args.variant, args.peak, args.eval_images), path.with_suffix(".png"),
             machine_label(machine))


if __name__ == "__main__":
    main()
