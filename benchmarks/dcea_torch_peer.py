"""The DCEA authors' Poisson network in PyTorch, for timing this project against it.

    python benchmarks/dcea_torch_peer.py [--repeats=3] [--check=DIR]    # any Python with torch

The same computation as the authors' ``DEA2Dtied`` / ``DEA2Dfree`` forward (torch ``conv2d`` /
``conv_transpose2d`` at stride 7, residual ``ELU(alpha=peak)``, 49 reflect-padded shifted canvases
averaged over their valid pixels) and their supervised step (MSE of Q·exp(η) against the clean
crop, Adam), written here from their description; ``--check`` compares its output with the
reference outputs of the published networks in DIR (``dcea_official``) first. It prints one JSON
line: median seconds per row, the rows of ``benchmarks.dcea_perf``. Imports only torch and numpy.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import torch
import torch.nn.functional as F

STRIDE, KERNEL, FILTERS, ITERS = 7, 11, 169, 15


def pads(n: int) -> tuple[int, int]:
    """(before, after) padding of a side n: every code of a valid strided correlation in the canvas."""
    after = (-(n + STRIDE - KERNEL)) % STRIDE + STRIDE
    return STRIDE, after


def shifted_canvases(y: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(1, 1, H, W) -> (49, 1, Hc, Wc) reflect-padded canvases and the image's (top, left) in each."""
    (top, bottom), (left, right) = pads(y.shape[2]), pads(y.shape[3])
    canvases, offsets = [], []
    for r in range(STRIDE):
        for c in range(STRIDE):
            canvases.append(F.pad(y, (left - c, right + c, top - r, bottom + r), mode="reflect"))
            offsets.append((top - r, left - c))
    return torch.cat(canvases), offsets


def forward(y: torch.Tensor, weights: dict[str, torch.Tensor], peak: float) -> torch.Tensor:
    """Natural parameter η (1, 1, H, W) of Poisson counts y (1, 1, H, W)."""
    canvases, offsets = shifted_canvases(y)
    w_enc, w_loop, w_dec = (weights.get(k, weights["H"]) for k in ("We", "H", "Wd"))
    size = ((canvases.shape[2] - KERNEL) // STRIDE + 1, (canvases.shape[3] - KERNEL) // STRIDE + 1)
    code = torch.zeros(canvases.shape[0], FILTERS, *size, dtype=y.dtype)
    for _ in range(ITERS):
        residual = F.elu(canvases - torch.exp(F.conv_transpose2d(code, w_loop, stride=STRIDE)), alpha=peak)
        code = F.relu(code + F.conv2d(residual, w_enc, stride=STRIDE) - weights["b"])
    out = F.conv_transpose2d(code, w_dec, stride=STRIDE)
    h, w = y.shape[2:]
    return torch.stack([out[i, :, r:r + h, c:c + w] for i, (r, c) in enumerate(offsets)]).mean(0)[None]


def random_weights(tied: bool, generator: torch.Generator) -> dict[str, torch.Tensor]:
    names = ("H",) if tied else ("H", "We", "Wd")
    weights = {k: 0.01 * torch.randn(FILTERS, 1, KERNEL, KERNEL, generator=generator) for k in names}
    weights["b"] = torch.full((1, FILTERS, 1, 1), 0.1)
    return {k: v.requires_grad_() for k, v in weights.items()}


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def check(folder: pathlib.Path) -> float:
    """Largest |Δη| against the published networks' reference outputs (image 01)."""
    worst = 0.0
    for variant in ("tied", "untied"):
        for peak in (1, 2, 4):
            with np.load(folder / f"{variant}_peak{peak}.npz") as saved:
                weights = {k: torch.from_numpy(saved[k]) for k in saved}
            with np.load(folder / f"reference_{variant}_peak{peak}.npz") as ref:
                counts = torch.from_numpy(ref["01/counts"].astype(np.float32))[None]
                with torch.no_grad():
                    eta = forward(counts, weights, float(peak))[0, 0].numpy()
                worst = max(worst, float(np.abs(eta - ref["01/eta"][0]).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", type=pathlib.Path, default=None, help="folder of the published networks")
    args = parser.parse_args()
    result = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.check:
        result["max |Δη| vs published outputs"] = check(args.check)
    generator = torch.Generator().manual_seed(0)
    for variant, tied in (("C", True), ("UC", False)):
        weights = random_weights(tied, generator)
        image = torch.poisson(4 * torch.rand(1, 1, 256, 256, generator=generator), generator=generator)
        with torch.no_grad():
            result[f"DCEA-{variant} denoise 256x256"] = median_seconds(lambda: forward(image, weights, 4.0),
                                                                         args.repeats)
        clean = torch.rand(1, 1, 128, 128, generator=generator)
        q = clean.max() / 4.0
        counts = torch.poisson(clean / q, generator=generator)
        optimizer = torch.optim.Adam(list(weights.values()), lr=1e-3, eps=1e-3)

        def train_step():
            optimizer.zero_grad()
            loss = F.mse_loss(q * torch.exp(forward(counts, weights, 4.0)), clean)
            loss.backward()
            optimizer.step()

        result[f"DCEA-{variant} train step 128x128"] = median_seconds(train_step, args.repeats)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
