"""What a paper-scale run costs: model FLOPs of every paper-scale command, and hours on one GPU
and on a TPU v5p-8 slice at an assumed utilisation. Nothing is trained or run.

    python -m benchmarks.paper_scale [--quick] [--mfu 0.3] [--only SUBSTRING] [--out DIR]

``PAPER_SCALE_CONFIGS`` is the one list of the paper-scale commands (the rows of the reproduction
catalogue in benchmarks/README.md); ``tests/test_paper_scale.py`` traces each of them. For each
config: the completed config (``config_files.load`` + ``complete``), its task, and an abstract
global batch of ``data.element_spec`` at the config's batch size; ``init`` goes through
``jax.eval_shape`` and ``train_step`` through ``jax.make_jaxpr`` on those abstract values (nothing
compiles). Model FLOPs per step are ``benchmarks.flops.model_flops`` of that jaxpr (2 × the
multiply-adds of every matmul and convolution, forward and backward; a scan's body times its
length), the same count as ``benchmarks.accelerator``; the run's FLOPs are that times
``train.num_steps``. Evaluation, data loading and elementwise work are not counted.

The Deep Image Prior protocol (``configs/dip_denoise.py``, run by ``python -m sparse_ae.dip``, not a
train-loop task) is counted in closed form: ``sparse_ae.models.dip.count_flops`` of the network on
each Set12 image (7 of 256 × 256, 5 of 512 × 512) × 3 (forward + backward) × iterations × seeds.

Hours = FLOPs / (peak × MFU). Peaks (dense): one NVIDIA H100/H200 SXM at 494.7 TFLOP/s, the TF32
rate at which JAX's default precision runs float32 matmuls on it (``benchmarks.accelerator``'s
table); a TPU v5p-8 slice, 4 chips × 459 TFLOP/s bf16 (float32 matmuls at default precision run
as one bf16 pass), assumed to scale linearly over its chips. MFU is an assumption (``--mfu``,
default 0.3), not a measurement: reasonable for the steps of several TFLOP (CTRL, SC-VAE's paper
architecture); a step under ``SMALL_STEP_TFLOP`` (the DCEA networks: 169 filters on one channel,
batch 1–16; DIP at batch 1; the 32 × 32 GAN and conv sparse autoencoder) is bound by kernel
launches and memory traffic, so its real MFU is far lower (the ``note`` column says so) and its
hours are a lower bound.
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax

from benchmarks import accelerator, common
from benchmarks.flops import model_flops
from sparse_ae import data as data_lib
from sparse_ae import dip as dip_runner
from sparse_ae.models import dip as dip_model
from sparse_ae.train import config_files
from sparse_ae.train.task import get_task

# The paper-scale commands (``python -m sparse_ae.main --config=SPEC``), the catalogue's rows.
PAPER_SCALE_CONFIGS = (
        *(f"configs/ctrl_{arch}.py:dataset={name}" for arch in ("csc", "conv")
          for name in ("mnist", "cifar10", "celeb_a", "imagenet2012")),
        "configs/ctrl_conv.py:dataset=cifar10,ldr",
        "configs/sc_vae.py:paper",
        "configs/sc_vae.py:paper,bottleneck=vq",
        "configs/sc_vae.py:paper,bottleneck=ista",  # the authors' code's bottleneck and loss
        "configs/sc_vae.py:paper,dataset=tfds:caltech_birds2011",
        "configs/dcea_poisson_denoise.py:authors_recipe",
        "configs/dcea_poisson_denoise.py:untied,authors_recipe,peak=1",
        "configs/dcea_binomial_ecdl.py",
        "configs/sparse_gan.py:dataset=cifar10,reg=ml",  # with --config.fid.weights=FILE
        "configs/sparse_gan.py:dataset=cifar10,disc=sngan,reg=l0inf",  # likewise
        "configs/conv_sae.py:dataset=natural_crops",
)
# The DIP protocols (``python -m sparse_ae.dip --config=SPEC``): the paper's and the 2-core preset.
DIP_CONFIGS = ("configs/dip_denoise.py", "configs/dip_denoise.py:reg=l0", "configs/dip_denoise.py:cpu")
SET12_SIZES = (256,) * 7 + (512,) * 5  # Set12: images 01–07 are 256 × 256, 08–12 512 × 512
# ``--quick``: one config of each kind.
QUICK = ("configs/dcea_binomial_ecdl.py", "configs/dip_denoise.py:cpu")

GPU = "H100/H200 SXM"
GPU_PEAK_TFLOPS = dict(accelerator.PEAK_TFLOPS)["H200"]["tf32"]
TPU = "TPU v5p-8"
TPU_PEAK_TFLOPS = 4 * 459.0  # 4 chips, bf16 dense each
# Below this many TFLOP a step, a step is bound by kernel launches and memory traffic on these chips.
SMALL_STEP_TFLOP = 1.0


def abstract_batch(config) -> dict[str, jax.ShapeDtypeStruct]:
    """The config's global batch as shapes and dtypes: ``data.element_spec`` with a batch axis."""
    return {key: jax.ShapeDtypeStruct((config.data.batch_size, *leaf.shape), leaf.dtype)
            for key, leaf in data_lib.element_spec(config.data).items()}


def step_flops(spec: str) -> dict[str, Any]:
    """Traces ``spec``'s ``init`` (eval_shape) and ``train_step`` (make_jaxpr) on abstract inputs;
    returns its task, image size, batch, steps and model FLOPs per step."""
    config = config_files.complete(common.load_config(spec))
    task = get_task(config)
    batch = abstract_batch(config)
    key = jax.random.key(config.seed)
    state = jax.eval_shape(task.init, key, batch)
    jaxpr = jax.make_jaxpr(task.train_step)(state, batch, key)
    flops, while_loops = model_flops(jaxpr.jaxpr)
    return {"task": config.task, "image": config.data.image_size, "batch": config.data.batch_size,
            "steps": int(config.train.num_steps), "step_gflop": flops / 1e9,
            "note": f"{while_loops} while loop(s) counted once" if while_loops else ""}


def dip_flops(spec: str) -> dict[str, Any]:
    """The DIP protocol of ``spec`` in closed form: per image and iteration 3 × the forward
    convolutions (``models.dip.count_flops``), over its images, iterations and seeds."""
    config = dip_runner.load_config(spec, root=common.REPO)
    m, d = config.model, config.dip
    full = [SET12_SIZES[int(name) - 1] for name in d.images] if d.images else list(SET12_SIZES)
    sizes = [min(s, d.crop) if d.crop else s for s in full]
    per_iter = [3 * dip_model.count_flops(s, s, m.input_channels, 1, m.down, m.up, m.skip) for s in sizes]
    runs = len(d.seeds)
    return {"task": "dip", "image": "/".join(str(s) for s in sorted(set(sizes))), "batch": 1,
            "steps": d.num_iters * len(sizes) * runs, "step_gflop": sum(per_iter) / len(sizes) / 1e9,
            "note": f"{len(sizes)} images × {runs} seeds × {d.num_iters} iterations; step = mean over images"}


def hours(total_flop: float, peak_tflops: float, mfu: float) -> float:
    """Hours to do ``total_flop`` at ``mfu`` of ``peak_tflops``."""
    return total_flop / (peak_tflops * 1e12 * mfu) / 3600.0


def estimate(spec: str, mfu: float = 0.3) -> dict[str, Any]:
    """One row: the config's FLOPs per step and in all, and hours on the GPU and the TPU slice."""
    start = time.perf_counter()
    row = {"config": spec, **(dip_flops(spec) if spec.startswith("configs/dip_") else step_flops(spec))}
    total = row["step_gflop"] * 1e9 * row["steps"]
    row.update(total_pflop=total / 1e15, gpu_hours=hours(total, GPU_PEAK_TFLOPS, mfu),
               tpu_hours=hours(total, TPU_PEAK_TFLOPS, mfu), trace_s=time.perf_counter() - start)
    if row["step_gflop"] < 1e3 * SMALL_STEP_TFLOP:
        row["note"] = "; ".join(filter(None, [row["note"], "small step: real MFU far lower, hours a lower bound"]))
    if not (row["step_gflop"] > 0 and math.isfinite(row["gpu_hours"])):
        raise ValueError(f"{spec}: no matmul or convolution FLOPs counted in its step ({row})")
    return row


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--mfu", type=float, default=0.3, help="assumed model FLOPs utilisation (default 0.3)")
    parser.add_argument("--only", default="", help="estimate only the configs containing this substring")
    args = parser.parse_args()
    specs = QUICK if args.quick else (*PAPER_SCALE_CONFIGS, *DIP_CONFIGS)
    rows = [estimate(spec, args.mfu) for spec in specs if args.only in spec]
    common.print_table(f"Paper-scale cost at MFU {args.mfu:g}: {GPU} {GPU_PEAK_TFLOPS:g} TFLOP/s TF32, "
                       f"{TPU} {TPU_PEAK_TFLOPS:g} TFLOP/s bf16 (dense peaks)", rows,
                       ["config", "image", "batch", "steps", "step_gflop", "total_pflop", "gpu_hours", "tpu_hours",
                        "note"])
    if args.out:
        common.write_json(args.out, "paper_scale", {
                "quick": args.quick, "mfu": args.mfu, "gpu": GPU, "gpu_peak_tflops": GPU_PEAK_TFLOPS, "tpu": TPU,
                "tpu_peak_tflops": TPU_PEAK_TFLOPS, "rows": rows})


if __name__ == "__main__":
    main()
