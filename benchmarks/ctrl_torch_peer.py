"""The conv CTRL networks and their training step in PyTorch, for timing this project against it.

    python benchmarks/ctrl_torch_peer.py [--batch=128] [--repeats=5] [--threads=2]   # any Python with torch

The DCGAN-style players of ``configs/ctrl_conv.py:dataset=cifar10`` (``sparse_ae.models.conv_ctrl``):
32 × 32 × 3 images; encoder 4 × 4 stride-2 convolutions to 64, 128, 256 channels (GroupNorm of 8
groups after all but the first, LeakyReLU 0.2), a linear map to d = 128 and the unit sphere;
decoder a linear map from √d · z to 4 × 4 × 256, GroupNorm, ReLU, then 4 × 4 stride-2 transposed
convolutions to 128, 64 and 3 channels (GroupNorm + ReLU between them). One step is the
simultaneous update: Z = f(X), X̂ = g(sg(Z)), Ẑ = f(X̂), the multiclass game value
T = ΔR(Z, Π) + ΔR(Ẑ, Π) + Σ_j ΔR(Z_j, Ẑ_j) (ε² = 0.5, 10 classes), one backward pass, Adam on
both players (the encoder ascends T). Prints one JSON line: median seconds per step and the
settings. Imports only torch and numpy.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn

CHANNELS, FEATURE_DIM, CLASSES, EPS_SQ, SIZE = (64, 128, 256), 128, 10, 0.5, 32


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layers, previous = [], 3
        for i, c in enumerate(CHANNELS):
            layers += [nn.Conv2d(previous, c, 4, 2, 1)] + ([nn.GroupNorm(8, c)] if i else []) + [nn.LeakyReLU(0.2)]
            previous = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(CHANNELS[-1] * (SIZE // 8) ** 2, FEATURE_DIM)

    def forward(self, x):
        return nn.functional.normalize(self.head(self.body(x).flatten(1)), dim=1)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(FEATURE_DIM, CHANNELS[-1] * (SIZE // 8) ** 2)
        layers = [nn.GroupNorm(8, CHANNELS[-1]), nn.ReLU()]
        outs = [*CHANNELS[-2::-1], 3]
        for i, (a, b) in enumerate(zip(CHANNELS[::-1], outs)):
            layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
            if i < len(outs) - 1:
                layers += [nn.GroupNorm(8, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        h = self.head(math.sqrt(FEATURE_DIM) * z).view(z.shape[0], CHANNELS[-1], SIZE // 8, SIZE // 8)
        return self.body(h)


def rate(z: torch.Tensor, n: float) -> torch.Tensor:
    """R = ½ logdet(I + d/(n ε²) ZᵀZ) of the rows of z, n the count they are scaled by."""
    d = z.shape[1]
    return 0.5 * torch.logdet(torch.eye(d) + d / (n * EPS_SQ) * z.T @ z)


def game_value(z: torch.Tensor, z_hat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """T = ΔR(Z, Π) + ΔR(Ẑ, Π) + Σ_j ΔR(Z_j, Ẑ_j), classes weighted by their share of the batch."""
    n = z.shape[0]
    t = rate(z, n) + rate(z_hat, n)
    for j in range(CLASSES):
        zj, hj = z[labels == j], z_hat[labels == j]
        nj = zj.shape[0]
        rz, rh = rate(zj, nj), rate(hj, nj)
        t = t - nj / n * (rz + rh) + rate(torch.cat([zj, hj]), 2 * nj) - 0.5 * (rz + rh)
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder, decoder = Encoder(), Decoder()
    enc_opt = torch.optim.Adam(encoder.parameters(), lr=1.5e-4, betas=(0.5, 0.999), maximize=True)
    dec_opt = torch.optim.Adam(decoder.parameters(), lr=1.5e-4, betas=(0.5, 0.999))
    x = torch.rand(args.batch, 3, SIZE, SIZE)
    labels = torch.arange(args.batch) % CLASSES

    def step():
        z = encoder(x)
        z_hat = encoder(decoder(z.detach()))
        value = game_value(z, z_hat, labels)
        enc_opt.zero_grad()
        dec_opt.zero_grad()
        value.backward()
        enc_opt.step()
        dec_opt.step()

    step()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"step_s": float(np.median(times)), "batch": args.batch, "threads": args.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
