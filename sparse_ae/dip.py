"""Deep Image Prior denoising: ``python -m sparse_ae.dip --config=configs/dip_denoise.py[:args] --workdir=DIR``.

DIP fits a fresh network to *one* noisy image per run, scoring every iteration's output
against the clean image; it has no dataset to stream and no held-out split, so it is this small
runner rather than a task of the generic loop (whose batches and evaluators would be idle). It
reuses the model layers, the optimizer factory, the image folder source and the PSNR of the
framework. A run (one image, one seed) is the unit of work and of resumption: the workdir's
``metrics.json`` is rewritten after each, and the command again on that workdir keeps the runs
it holds and fits only the missing ones (``dip.images`` and ``dip.seeds`` may grow the sweep);
a workdir made with other settings is refused, untouched.

Protocol (Ulyanov et al.'s denoising script; Ganz & Elad's sparse variant): per image and
seed, y = clip(x + σ/255 · N(0, 1), 0, 1); a fixed input z ~ U(0, 0.1) with
``model.input_channels`` channels, perturbed each iteration by N(0, input_noise_std²); Adam on
mean((f(z + n) − y)²) (+ L1 penalties); every iteration the PSNR of the output and of its
exponential average a ← w·a + (1 − w)·f (a starts at the first output) against x. Reported
per run: the best PSNR of a single output and of the average over iterations (an oracle
stopping time, as both papers report), and the final ones. ``metrics.json`` in the workdir
holds every run and the mean ± std over seeds of the per-seed image means.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from sparse_ae import config as config_lib
from sparse_ae import data as data_lib
from sparse_ae import optim as optim_lib
from sparse_ae.data import transforms
from sparse_ae.models import sparsity
from sparse_ae.models.dip import DIPHourglass
from sparse_ae.train.state import split_module
from sparse_ae.utils import images as image_lib
from sparse_ae.utils import sections

METRICS_FILE = "metrics.json"


# ----------------------------------------------------------------------------------- config
def complete(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of ``config`` (``configs/dip_denoise.py``) with the ``optim`` fields it left out at
    their defaults."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.optim = sections.complete(config.get("optim", {}), optim_lib.OptimConfig, "config.optim")
    return config


def load_config(spec: str, root: str | pathlib.Path | None = None) -> ml_collections.ConfigDict:
    """The completed config of ``spec`` = ``"path/to/dip_config.py[:arg]"``."""
    return complete(config_lib.load_config_file(spec, root))


def validate_config(config: ml_collections.ConfigDict) -> None:
    """ValueError naming the field for anything the runner cannot use."""
    m, d = config.model, config.dip
    levels = len(m.down)
    for key in ("down", "up", "skip", "sparsity"):
        if len(m[key]) != levels:
            raise ValueError(f"config.model.{key} has {len(m[key])} entries; config.model.down has {levels} levels")
    sparsity.parse_specs(m.sparsity, levels, "config.model.sparsity")
    if m.input_channels < 1:
        raise ValueError(f"config.model.input_channels={m.input_channels} must be >= 1")
    for key in ("input_scale", "input_noise_std"):
        if m[key] < 0:
            raise ValueError(f"config.model.{key}={m[key]} must be >= 0")
    if not 0 < d.sigma < 255:
        raise ValueError(f"config.dip.sigma={d.sigma} must be in (0, 255) (noise std on the 0..255 scale)")
    if d.num_iters < 1 or d.log_every < 1:
        raise ValueError(f"config.dip.num_iters={d.num_iters} and log_every={d.log_every} must be >= 1")
    if not 0 <= d.exp_weight < 1:
        raise ValueError(f"config.dip.exp_weight={d.exp_weight} must be in [0, 1)")
    if not d.seeds or not all(isinstance(s, int) for s in d.seeds):
        raise ValueError(f"config.dip.seeds={d.seeds!r} must be a non-empty list of integers")
    if d.crop < 0 or (d.crop and d.crop % 2 ** levels):
        raise ValueError(f"config.dip.crop={d.crop} must be 0 (whole image) or a multiple of 2^levels = {2 ** levels}")
    optim_lib.validate_optim(config)
    paths = data_lib.image_paths(data_lib.DataConfig(name="set12", path=config.data.path))
    names = [p.stem for p in paths]
    unknown = [i for i in d.images if i not in names]
    if unknown:
        raise ValueError(f"config.dip.images={tuple(d.images)}: {unknown} not in the folder (files: {names})")


def load_images(config) -> dict[str, np.ndarray]:
    """{name: (H, W, 1) float32 in [0, 1]} of ``config.dip.images`` (all when empty), centre-cropped
    to ``config.dip.crop`` when set."""
    paths = data_lib.image_paths(data_lib.DataConfig(name="set12", path=config.data.path))
    wanted = set(config.dip.images) or {p.stem for p in paths}
    images = {}
    for path in paths:
        if path.stem in wanted:
            image = transforms.to_channels(transforms.load_image(path), 1)
            images[path.stem] = transforms.crop(image, config.dip.crop) if config.dip.crop else image
    return images


# ----------------------------------------------------------------------------------- fitting
def build_model(model_cfg, rngs: nnx.Rngs) -> DIPHourglass:
    return DIPHourglass(model_cfg.input_channels, 1, tuple(model_cfg.down), tuple(model_cfg.up),
                        tuple(model_cfg.skip), tuple(model_cfg.sparsity), rngs=rngs)


def psnr(reference: jax.Array, estimate: jax.Array) -> jax.Array:
    """10·log10(1 / MSE) in dB (data range 1)."""
    return -10.0 * jnp.log10(jnp.mean(jnp.square(reference - estimate)))


def noisy_version(clean: np.ndarray, sigma: float, key: jax.Array) -> jax.Array:
    """clip(x + σ/255 · N(0, 1), 0, 1), as the DIP code makes its noisy images."""
    return jnp.clip(clean + sigma / 255.0 * jax.random.normal(key, clean.shape), 0.0, 1.0)


def track_psnr(clean: jax.Array, out: jax.Array, avg: jax.Array, best: jax.Array, first, weight: float
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One iteration's bookkeeping: the exponential average a ← w·a + (1 − w)·f (a = f at the first
    iteration), the PSNRs of f and a against ``clean``, and their running maxima.

    clean (H, W, C); out, avg (1, H, W, C); best (2,) = best single, best averaged so far (−inf at
    the start); returns (avg, best, scores) with scores (2,) = this iteration's PSNRs."""
    avg = jnp.where(first, out, weight * avg + (1.0 - weight) * out)
    scores = jnp.stack([psnr(clean, out[0]), psnr(clean, avg[0])])
    return avg, jnp.maximum(best, scores), scores


def make_fitter(config) -> Callable[[np.ndarray, jax.Array], dict[str, Any]]:
    """``fit(clean (H, W, 1), key) -> results``: one DIP run on one image (see the module docstring)."""
    m, d = config.model, config.dip
    tx = optim_lib.make_optimizer(config.optim, d.num_iters)
    graphdef, _, rest = split_module(build_model(m, nnx.Rngs(0)))

    def loss_fn(params, inputs, noisy):
        out, stats = nnx.merge(graphdef, params, rest)(inputs)
        loss = jnp.mean(jnp.square(out - noisy)) + sparsity.total_penalty(stats)
        return loss, (out, stats)

    @functools.partial(jax.jit, donate_argnums=0)
    def step(carry, noisy, clean, key, first):
        params, opt_state, z, avg, best = carry
        inputs = z + m.input_noise_std * jax.random.normal(key, z.shape)
        (loss, (out, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, inputs, noisy)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        avg, best, scores = track_psnr(clean, out, avg, best, first, d.exp_weight)
        metrics = {"loss": loss, "psnr": scores[0], "psnr_avg": scores[1],
                   **sparsity.log_metrics(stats)}
        return (params, opt_state, z, avg, best), metrics

    def fit(clean: np.ndarray, key: jax.Array) -> dict[str, Any]:
        k_noise, k_init, k_input, k_steps = jax.random.split(key, 4)
        h, w, _ = clean.shape
        _, params, _ = split_module(build_model(m, nnx.Rngs(params=k_init)))
        clean_j = jnp.asarray(clean)
        noisy = noisy_version(clean_j, d.sigma, k_noise)[None]
        z = m.input_scale * jax.random.uniform(k_input, (1, h, w, m.input_channels))
        carry = (params, tx.init(params), z, jnp.zeros_like(noisy), jnp.full((2,), -jnp.inf, noisy.dtype))
        curve = []
        start = time.perf_counter()
        for i in range(d.num_iters):
            carry, metrics = step(carry, noisy, clean_j, jax.random.fold_in(k_steps, i), i == 0)
            if (i + 1) % d.log_every == 0 or i + 1 == d.num_iters:
                curve.append({"iter": i + 1, **{k: float(v) for k, v in metrics.items()}})
        best = np.asarray(carry[-1])
        avg = np.asarray(carry[3][0])
        return {"best_psnr": float(best[0]), "best_avg_psnr": float(best[1]),
                "final_psnr": curve[-1]["psnr"], "final_avg_psnr": curve[-1]["psnr_avg"],
                "noisy_psnr": float(psnr(clean_j, noisy[0])), "seconds": time.perf_counter() - start,
                "curve": curve, "average_output": avg}

    return fit


def summarize(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over images per seed, then mean and std (ddof 0) over seeds of each PSNR."""
    summary = {}
    seeds = sorted({r["seed"] for r in runs})
    for key in ("best_psnr", "best_avg_psnr", "final_psnr", "final_avg_psnr", "noisy_psnr"):
        per_seed = [np.mean([r[key] for r in runs if r["seed"] == s]) for s in seeds]
        summary[f"{key}_mean"] = float(np.mean(per_seed))
        summary[f"{key}_std"] = float(np.std(per_seed))
    return summary


# What says which runs to make rather than how: a resumed sweep may change these.
SWEEP_FIELDS = ("images", "seeds")


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _protocol(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON holds it, without :data:`SWEEP_FIELDS`."""
    protocol = _as_json(config_dict)
    protocol["dip"] = {k: v for k, v in protocol.get("dip", {}).items() if k not in SWEEP_FIELDS}
    return protocol


def finished_runs(config, workdir: str | pathlib.Path) -> list[dict[str, Any]]:
    """The runs already in ``workdir/metrics.json`` (none without one); ValueError if they were
    made with other settings than ``config``'s, its sweep aside (the workdir is left as it is)."""
    path = pathlib.Path(workdir) / METRICS_FILE
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    if _protocol(saved.get("config", {})) != _protocol(config.to_dict()):
        raise ValueError(f"--workdir={str(workdir)!r} holds DIP runs made with other settings; resuming would "
                         "mix two protocols (only dip.images and dip.seeds may change). Use a new --workdir, "
                         "or the settings that made them")
    return saved["runs"]


def _write_results(workdir: pathlib.Path, results: dict[str, Any]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = workdir / f".{METRICS_FILE}.tmp"
    scratch.write_text(json.dumps(results, indent=2, default=str) + "\n")
    scratch.replace(workdir / METRICS_FILE)  # whole or not at all


def run(config, workdir: str | pathlib.Path | None = None, log: Callable[[str], None] = print
        ) -> dict[str, Any]:
    """Every image × seed of the config; with ``workdir``, keeps the runs its ``metrics.json``
    already holds and rewrites that file (and saves the averaged output as PNG) after each new
    run; returns {"config": ..., "runs": [...], "summary": {...}}."""
    validate_config(config)
    done = {(r["image"], r["seed"]): r for r in (finished_runs(config, workdir) if workdir is not None else [])}
    fit = make_fitter(config)
    config_json = _as_json(config.to_dict())
    runs = []

    def results() -> dict[str, Any]:
        return {"config": config_json, "runs": runs, "summary": summarize(runs)}

    for name, clean in load_images(config).items():
        for seed in config.dip.seeds:
            if (name, seed) in done:
                runs.append(done[name, seed])
                log(f"image {name} seed {seed}: kept from {METRICS_FILE}")
                continue
            key = jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) % 2**31)
            result = fit(clean, key)
            average = result.pop("average_output")
            runs.append({"image": name, "seed": seed, "size": list(clean.shape[:2]), **result})
            log(f"image {name} seed {seed}: best {result['best_psnr']:.2f} dB, best averaged "
                f"{result['best_avg_psnr']:.2f} dB, final {result['final_psnr']:.2f} dB "
                f"({result['seconds']:.0f} s)")
            if workdir is not None:
                folder = pathlib.Path(workdir) / "images"
                folder.mkdir(parents=True, exist_ok=True)
                image_lib.save_png(folder / f"{name}_seed{seed}_average.png", average)
                _write_results(pathlib.Path(workdir), results())
    return results()


def main(argv: list[str]) -> None:
    from absl import app  # pylint: disable=import-outside-toplevel

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    results = run(_CONFIG.value, _WORKDIR.value)
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    from absl import flags

    from sparse_ae.train import config_files
    from sparse_ae.utils import cli

    _CONFIG = config_files.define_flag("config", "configs/dip_denoise.py[:reg=l0inf,...]", fill=complete)
    _WORKDIR = flags.DEFINE_string("workdir", None, "folder for metrics.json and the averaged outputs")
    flags.mark_flags_as_required(["config", "workdir"])
    cli.run(main)
