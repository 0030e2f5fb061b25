"""Deep Image Prior denoising of Set12 at σ = 25, with sparsity on the encoder (``python -m sparse_ae.dip``).

    python -m sparse_ae.dip --config=configs/dip_denoise.py:reg=l0inf --workdir=/tmp/dip_l0inf
    python -m sparse_ae.dip --config=configs/dip_denoise.py:reg=l0,cpu --workdir=/tmp/dip_l0_cpu

Arguments: reg = none | l1 | l0 | l0inf (the regulariser on every encoder level: l0 keeps
``keep`` percent of each level's entries, l0inf ``keep`` percent of each needle's channels, l1
weighs mean|e| by ``l1``); cpu = the 2-core subset (see below); runlocal = seconds-long smoke
run; iters / num_seeds override the preset (0 = preset).

Default = the full protocol (an accelerator job): all 12 images whole, the DIP "skip" network
(5 levels of 128 channels, 4-channel skips, 32 input channels), Adam lr 0.01, 3000 iterations,
input noise 1/30, exponential average weight 0.99, seeds 0, 1, 2. ``cpu``: the 256 × 256
images 01, 02, 05 cropped to their central 128 × 128, a 4-level network of 32 channels and
1000 iterations — about 16 × fewer FLOPs per iteration per pixel than the full network.
"""

import ml_collections

REGS = ("none", "l1", "l0", "l0inf")
ARGS = dict(reg="none", cpu=False, runlocal=False, iters=0, num_seeds=0, keep=25.0, l1=1e-3)


def _specs(reg: str, levels: int, keep: float, l1: float) -> tuple[str, ...]:
    if reg not in REGS:
        raise ValueError(f"config argument reg={reg!r} is not one of {REGS}")
    spec = {"none": "none", "l1": f"l1:{l1:g}", "l0": f"l0:{keep:g}%", "l0inf": f"l0inf:{keep:g}%"}[reg]
    return (spec,) * levels


def get_config(args):
    config = ml_collections.ConfigDict()
    config.data = ml_collections.ConfigDict(dict(path=""))  # set12 folder ("" = ../shared/data/set12)
    config.model = ml_collections.ConfigDict(dict(
            input_channels=32, down=(128,) * 5, up=(128,) * 5, skip=(4,) * 5, sparsity=("none",) * 5,
            input_scale=0.1, input_noise_std=1.0 / 30.0))
    config.dip = ml_collections.ConfigDict(dict(
            sigma=25.0, num_iters=3000, exp_weight=0.99, log_every=100, seeds=(0, 1, 2), images=(), crop=0))
    config.optim = dict(lr=0.01)  # Adam; the other fields at sparse_ae.optim.OptimConfig's defaults
    if args.cpu:
        config.model.update(down=(32,) * 4, up=(32,) * 4, skip=(4,) * 4)
        config.dip.update(num_iters=1000, images=("01", "02", "05"), crop=128)
    if args.runlocal:
        config.model.update(input_channels=4, down=(8,) * 2, up=(8,) * 2, skip=(2,) * 2)
        config.dip.update(num_iters=6, log_every=2, seeds=(0,), images=("01",), crop=32)
    levels = len(config.model.down)
    config.model.sparsity = _specs(args.reg, levels, args.keep, args.l1)
    if args.iters:
        config.dip.num_iters = args.iters
    if args.num_seeds:
        config.dip.seeds = tuple(range(args.num_seeds))
    return config
