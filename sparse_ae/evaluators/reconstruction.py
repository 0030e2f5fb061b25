"""Reconstruction quality: PSNR, SSIM and MSE, plus grids of inputs and reconstructions.

Uses ``eval_step``'s ``"reconstruction"`` (B, H, W, C) against ``"target"`` if the task
returns one (e.g. the clean image of a denoising task) else ``batch["image"]``; images in
[0, 1] (data range 1). Scalars per split: ``<split>/psnr`` (dB, mean over images of
10·log10(1/MSE_image)), ``<split>/ssim`` (mean SSIM, see :func:`ssim`), ``<split>/mse``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sparse_ae.evaluators import eval_outputs

SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_WINDOW = 7


def psnr(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-image PSNR in dB of (B, H, W, C) arrays (inf for identical images)."""
    mse = np.mean((np.asarray(reference, np.float64) - np.asarray(estimate, np.float64)) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def ssim(reference: np.ndarray, estimate: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-image mean SSIM of (B, H, W, C) arrays, averaged over channels.

    Wang et al. (2004) with a uniform ``SSIM_WINDOW``² window (smaller odd window for smaller
    images), sample covariances, K1 = 0.01, K2 = 0.03, reflect padding, and the border of half
    a window excluded from the mean — the defaults of ``skimage.metrics.structural_similarity``.
    """
    x = np.asarray(reference, np.float64)
    y = np.asarray(estimate, np.float64)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (B, H, W, C) arrays of one shape, got {x.shape} and {y.shape}")
    win = min(SSIM_WINDOW, *(s - 1 + s % 2 for s in x.shape[1:3]))
    size = (1, win, win, 1)
    filt = lambda a: ndimage.uniform_filter(a, size=size, mode="reflect")  # noqa: E731
    n = win * win
    cov_norm = n / (n - 1)
    mx, my = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - mx * mx)
    vy = cov_norm * (filt(y * y) - my * my)
    vxy = cov_norm * (filt(x * y) - mx * my)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return s[:, pad:s.shape[1] - pad, pad:s.shape[2] - pad, :].mean(axis=(1, 2, 3))


def evaluate(task, state, datasets, config):
    """PSNR / SSIM / MSE per split; input and reconstruction grids of the first examples."""
    scalars, images = {}, {}
    for split, make_iterator in datasets.items():
        values = {"psnr": [], "ssim": [], "mse": []}
        shown: list[tuple[np.ndarray, np.ndarray]] = []
        for batch, outputs in eval_outputs(task, state, make_iterator):
            if "reconstruction" not in outputs:
                raise ValueError(f"evaluator 'reconstruction' needs eval_step to return 'reconstruction'; "
                                 f"task {config.task!r} returned {sorted(outputs)}")
            target = outputs.get("target", batch["image"])
            recon = outputs["reconstruction"]
            values["psnr"].append(psnr(target, recon))
            values["ssim"].append(ssim(target, np.clip(recon, 0.0, 1.0)))
            values["mse"].append(np.mean((target - recon) ** 2, axis=(1, 2, 3)))
            if sum(len(t) for t, _ in shown) < config.eval.num_images:
                shown.append((target, recon))
        if not values["psnr"]:
            raise ValueError(f"split {split!r} gave no evaluation examples")
        scalars.update({f"{split}/{name}": float(np.mean(np.concatenate(v))) for name, v in values.items()})
        if config.eval.num_images:
            targets, recons = (np.concatenate(a)[:config.eval.num_images] for a in zip(*shown))
            images[f"{split}/inputs"] = targets
            images[f"{split}/reconstructions"] = np.clip(recons, 0.0, 1.0)
    return scalars, images
