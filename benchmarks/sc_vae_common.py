"""Shared pieces of the SC-VAE benchmarks: the benchmark model, a training run, test metrics.

The benchmark model (CPU-sized, every bottleneck identical but for the bottleneck): 64×64 RGB
crops of the offline natural photographs (``natural_crops``: train on 8 photos, test on 256
fixed crops of 3 held-out photos), VQGAN-style encoder/decoder with C′ = 16, widths (16, 32, 32),
one residual block per level, d = 2 (a 16×16 latent grid of n = 64), K = 128 atoms / codewords,
LISTA s = 16, Adam (lr 1e-3, b1 0.5, b2 0.9, cosine, 100 warm-up steps, clip 1), batch 16.
Training runs the task's jitted ``train_step`` directly (no checkpoints, no writer).
"""

from __future__ import annotations

import pathlib
import time

import jax
import numpy as np
from flax import traverse_util

from benchmarks import common
from sparse_ae import data as data_lib
from sparse_ae.evaluators import reconstruction
from sparse_ae.evaluators.code_sparsity import codebook_usage
from sparse_ae.sparse_coding import metrics
from sparse_ae.train.tasks import sc_vae as task_lib

PARAMS_DIR = common.REPO / "benchmarks" / "results" / "sc_vae_params"
BENCH_MODEL = dict(channels=16, channel_mult=(1, 2, 2), num_res_blocks=1, num_down=2, attn_resolutions=(),
                   latent_dim=64, num_atoms=128, lista_steps=16)


def make_config(bottleneck: str, num_steps: int, **model):
    """``configs/sc_vae.py`` with the benchmark model; ``model`` overrides config.model fields."""
    config = common.load_config(f"configs/sc_vae.py:bottleneck={bottleneck}")
    config.model.update({**BENCH_MODEL, **model})
    config.train.num_steps = num_steps
    config.optim.warmup_steps = min(config.optim.warmup_steps, num_steps // 10)
    return config


def train(config, log_every: int = 100) -> tuple[task_lib.CodecTask, object, dict]:
    """Trains ``config.train.num_steps`` steps; returns (task, state, info with times and the loss curve)."""
    task = task_lib.make_task(config)
    batch_size = config.data.batch_size
    batches = iter(data_lib.build(config.data, "train", seed=config.seed, train=True, per_process_batch=batch_size))
    first = next(batches)
    start = time.perf_counter()
    state = jax.jit(task.init)(jax.random.key(config.seed), {"image": first["image"]})
    step = jax.jit(task.train_step, donate_argnums=0)
    rng = jax.random.key(config.seed + 1)
    curve, step_times = [], []
    for i in range(config.train.num_steps):
        t = time.perf_counter()
        state, m = step(state, {"image": next(batches)["image"]}, jax.random.fold_in(rng, i))
        if (i + 1) % log_every == 0 or i + 1 == config.train.num_steps:
            m = jax.device_get(m)
            curve.append({"step": i + 1, **{k: float(v) for k, v in m.items() if k.startswith(("loss", "sparsity"))}})
            print(f"  step {i + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in curve[-1].items() if k != "step"),
                  flush=True)
        jax.block_until_ready(state)
        step_times.append(time.perf_counter() - t)
    info = {"train_seconds": time.perf_counter() - start, "compile_step_seconds": step_times[0],
            "median_step_seconds": float(np.median(step_times[1:] or step_times)), "curve": curve}
    return task, state, info


def test_batches(config, split: str = "test"):
    """Host batches (images only, padding dropped) of the fixed evaluation set of ``split``."""
    for batch in data_lib.build(config.data, split, seed=0, train=False, per_process_batch=32):
        valid = batch["valid"].astype(bool)
        yield {k: v[valid] for k, v in batch.items() if k != "valid"}


def evaluate(task, state, config) -> dict[str, float]:
    """Test PSNR (dB), SSIM, code Hoyer sparsity and non-zero fraction; codebook usage for VQ."""
    eval_step = jax.jit(task.eval_step)
    psnr, ssim, hoyer, nonzero, indices = [], [], [], [], []
    for batch in test_batches(config):
        out = jax.device_get(eval_step(state, {"image": batch["image"]}))
        psnr.append(reconstruction.psnr(batch["image"], out["reconstruction"]))
        ssim.append(reconstruction.ssim(batch["image"], np.clip(out["reconstruction"], 0, 1)))
        hoyer.append(np.asarray(metrics.hoyer_sparsity(out["code"])).reshape(-1))
        nonzero.append(np.mean(np.abs(out["code"]) > 0, axis=-1).reshape(-1))
        if "indices" in out:
            indices.append(out["indices"].reshape(-1))
    result = {"psnr": float(np.mean(np.concatenate(psnr))), "ssim": float(np.mean(np.concatenate(ssim))),
              "code_hoyer": float(np.mean(np.concatenate(hoyer))),
              "code_nonzero": float(np.mean(np.concatenate(nonzero)))}
    if indices:
        result["codebook_usage"], result["codebook_perplexity"] = codebook_usage(
                np.concatenate(indices), config.model.num_atoms)
    return result


def save_state(state, name: str) -> pathlib.Path:
    """Params and model state of a trained run as ``PARAMS_DIR/<name>.npz`` (flat '/'-joined keys)."""
    flat = traverse_util.flatten_dict(jax.device_get({"params": state.params, "extra": state.extra}))
    PARAMS_DIR.mkdir(parents=True, exist_ok=True)
    path = PARAMS_DIR / f"{name}.npz"
    np.savez_compressed(path, **{"/".join(map(str, k)): np.asarray(v) for k, v in flat.items()})
    return path


def load_state(task, config, name: str):
    """A state of ``task`` with the arrays saved by :func:`save_state` (optimizer state fresh)."""
    example = {"image": np.zeros((1, config.data.image_size, config.data.image_size, config.data.channels),
                                 np.float32)}
    state = jax.jit(task.init)(jax.random.key(0), example)
    fresh = traverse_util.flatten_dict({"params": state.params, "extra": state.extra})
    with np.load(PARAMS_DIR / f"{name}.npz") as arrays:
        tree = traverse_util.unflatten_dict({k: jax.numpy.asarray(arrays["/".join(map(str, k))]) for k in fresh})
    return state.replace(params=tree["params"], extra=tree.get("extra", state.extra))
