"""CSC-CTRL vs conv CTRL at the same data and budget, generalisation to Set12, and the step-time split.

    python -m benchmarks.ctrl [--quick] [--seeds=3] [--steps=0] [--parts=digits,set12,speed,conv32] [--frechet]
                              [--out DIR]
    python -m benchmarks.ctrl --parts=speed,conv32 --out=benchmarks/results   # the committed ctrl.json
    python -m benchmarks.ctrl --parts=<part> --out=benchmarks/results/ctrl_<part>.json   # ctrl_digits, ctrl_set12

- ``digits``: ``configs/ctrl_csc.py`` and ``configs/ctrl_conv.py`` at their defaults (16×16 digits,
  labels, batch 256, 1000 steps; ``--steps`` overrides), one run per seed: test PSNR / SSIM,
  nearest-subspace accuracy, trained parameters, wall-clock minutes; mean ± std over seeds.
  ``--frechet`` trains with the config argument ``frechet`` and adds the digits Fréchet distance of
  the test reconstructions and of class-conditional samples (``frechet_recon``, ``frechet_samples``).
- ``set12``: both trained unlabeled (``:dataset=natural_crops``, sample-wise form, 32×32 crops of
  the offline photographs), then asked to reconstruct the centred 32×32 crop of each Set12 image,
  which neither saw: PSNR / SSIM.
- ``speed``: the default configs' jitted train step, and the CSC-CTRL step split into its parts,
  each timed alone as forward + backward: the encoder (both passes, X and X̂), the decoder, and
  the rate-reduction terms at d = 128.
- ``conv32``: the conv CTRL players at 32×32 (``configs/ctrl_conv.py:dataset=cifar10``: 64, 128,
  256 channels, d = 128) at batch 128, one simultaneous step, with the decoder's transposed
  convolutions as XLA builds them (``conv_impl=xla``) and split by phase (``phases``), timed
  round-robin, each also split into its parts; beside them the same networks and step in PyTorch
  (``benchmarks/ctrl_torch_peer.py``, when torch is installed: ``pip install -e '.[bench-torch]'``).
``--quick``: 1 seed, 100 steps per digits run and 10 per natural-crops run (a natural-crops step,
32×32 with three stages at batch 256, is about 10× a digits step on 2 CPU cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import common
from sparse_ae import data as data_lib
from sparse_ae import evaluate
from sparse_ae.objectives import ctrl as ctrl_lib
from sparse_ae.train.state import split_module
from sparse_ae.train.tasks import ctrl

ARCHS = {"CSC-CTRL": "configs/ctrl_csc.py", "conv CTRL": "configs/ctrl_conv.py"}
PARTS = ("digits", "set12", "speed", "conv32")
CONV_IMPLS = ("xla", "phases")


def param_count(config) -> int:
    _, params, _ = split_module(ctrl.build_model(config, nnx.Rngs(0)))
    return optax.tree_utils.tree_size(params)


# Column -> metrics.json key of the digits runs (the Fréchet ones with --frechet only).
DIGITS_METRICS = {"psnr": "test/psnr", "ssim": "test/ssim", "subspace_acc": "test/subspace_acc"}
FRECHET_METRICS = {"frechet_recon": "test/frechet_digits_reconstruction",
                   "frechet_samples": "test/frechet_digits_samples"}


def digits_part(seeds: int, steps: int, scratch: pathlib.Path, frechet: bool = False
                ) -> tuple[list[dict], list[dict]]:
    runs = []
    columns = {**DIGITS_METRICS, **(FRECHET_METRICS if frechet else {})}
    for arch, path in ARCHS.items():
        for seed in range(seeds):
            spec = f"{path}:seed={seed}" + (",frechet" if frechet else "")
            config, metrics, minutes = common.train(spec, steps, scratch / f"digits_{arch}_{seed}")
            runs.append({"arch": arch, "seed": seed, "params": param_count(config), "minutes": minutes,
                         **{column: metrics[key] for column, key in columns.items()}})
            print(json.dumps(runs[-1]), flush=True)
    rows = []
    for summary in common.summarize_seeds(runs, ("arch",), (*columns, "minutes")):
        mine = [r for r in runs if r["arch"] == summary["arch"]]
        rows.append({"arch": summary["arch"], "seeds": summary["seeds"], "params": mine[0]["params"], **summary,
                     "psnr_per_seed": " ".join(f"{r['psnr']:.2f}" for r in mine)})
    return rows, runs


def set12_part(steps: int, scratch: pathlib.Path) -> list[dict]:
    rows = []
    for arch, path in ARCHS.items():
        workdir = scratch / f"natural_{arch}"
        config, metrics, minutes = common.train(f"{path}:dataset=natural_crops", steps, workdir)
        config.data.update(name="set12", fit="crop", path="")
        config.eval.update(evaluators=("reconstruction",), num_batches=0, batch_size=12)
        scores = evaluate.run_evaluation(config, str(workdir), ["test"], None)
        rows.append({"arch": arch, "params": param_count(config), "minutes": minutes,
                     "held-out crops PSNR": metrics["test/psnr"], "Set12 PSNR": scores["test/psnr"],
                     "Set12 SSIM": scores["test/ssim"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def default_run(path: str):
    """(config, task, first train batch, initial state) of a default CTRL config."""
    config = common.load_config(path)
    task = ctrl.make_task(config)
    dataset = data_lib.build(config.data, "train", seed=0, train=True, per_process_batch=config.data.batch_size)
    batch = {k: jnp.asarray(v) for k, v in next(iter(dataset)).items()}
    return config, task, batch, jax.jit(task.init)(jax.random.key(0), batch)


def step_parts(config, batch, state, prefix: str = "  ") -> dict:
    """``{name: (jitted fn, args)}``: a CTRL step's parts, each forward + backward."""
    graphdef, _, rest = split_module(ctrl.build_model(config, nnx.Rngs(0)))
    params, extra, x, o = state.params, state.extra, batch["image"], config.objective
    membership = jax.nn.one_hot(batch["label"], o.num_classes)

    def model(own: dict):
        return nnx.merge(graphdef, {**params, **own}, rest)

    def encoder_loss(enc):  # the step encodes X and X̂
        net = model({"encoder": enc})
        return jnp.sum(net.encode(x, extra)[0]) + jnp.sum(net.encode(x + 0.01, extra)[0])

    z = jax.jit(lambda images: model({}).encode(images, extra)[0])(x)  # x an argument: no constant folding

    def decoder_loss(dec):
        return jnp.sum(model({"decoder": dec}).decode(z, extra))

    def rate_loss(features):
        return ctrl_lib.ctrl_terms(*features, membership, form=o.form, eps_sq=o.eps_sq, method=o.logdet)["T"]

    return {f"{prefix}encoder, 2 passes (fwd+bwd)": (jax.jit(jax.grad(encoder_loss)), (params["encoder"],)),
            f"{prefix}decoder (fwd+bwd)": (jax.jit(jax.grad(decoder_loss)), (params["decoder"],)),
            f"{prefix}rate terms, d={z.shape[-1]} (fwd+bwd)": (jax.jit(jax.grad(rate_loss)), ((z, z[::-1]),))}


def speed_part(repeats: int) -> list[dict]:
    """Step time of both defaults and the CSC-CTRL split (medians of interleaved runs)."""
    cases, counts = {}, {}
    for arch, path in ARCHS.items():
        config, task, batch, state = default_run(path)
        cases[f"{arch} train step"] = (jax.jit(task.train_step), (state, batch, jax.random.key(1)))
        counts[f"{arch} train step"] = param_count(config)
        if arch == "CSC-CTRL":
            cases.update(step_parts(config, batch, state))
    times, _ = common.time_interleaved(cases, repeats=repeats)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    step = medians["CSC-CTRL train step"]
    return [{"what": name, "params": counts.get(name, ""), "ms": 1e3 * s,
             "% of CSC-CTRL step": 100 * s / step} for name, s in medians.items()]


def torch_peer(batch: int, repeats: int) -> dict | None:
    """The PyTorch peer's result on this machine's cores (median ``step_s``, ``torch`` version);
    None where torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    peer = pathlib.Path(__file__).with_name("ctrl_torch_peer.py")
    result = subprocess.run([sys.executable, str(peer), f"--batch={batch}", f"--repeats={repeats}",
                             f"--threads={os.cpu_count()}"], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def conv32_part(batch: int, repeats: int) -> list[dict]:
    """The conv CTRL step at 32×32 by ``conv_impl``, split into its parts, beside PyTorch's."""
    images = jax.random.uniform(jax.random.key(0), (batch, 32, 32, 3))
    example = {"image": images, "label": jnp.arange(batch) % 10, "valid": jnp.ones(batch)}
    cases = {}
    for impl in CONV_IMPLS:
        config = common.load_config("configs/ctrl_conv.py:dataset=cifar10")
        config.data.batch_size = batch
        config.model.conv_impl = impl
        config.objective.update_rule = "simultaneous"  # one forward and one backward, as the peer
        task = ctrl.make_task(config)
        state = jax.jit(task.init)(jax.random.key(0), example)
        cases[f"conv_impl={impl}: train step"] = (jax.jit(task.train_step), (state, example, jax.random.key(1)))
        cases.update(step_parts(config, example, state, prefix=f"  {impl}: "))
    times, _ = common.time_interleaved(cases, repeats=repeats)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    peer = torch_peer(batch, repeats)
    if peer is not None:
        medians[f"PyTorch {peer['torch']}: train step"] = peer["step_s"]
    reference = medians["conv_impl=xla: train step"]
    return [{"what": name, "ms": 1e3 * s, "x XLA step": reference / s} for name, s in medians.items()]


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="train.num_steps per run (default: the config's)")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--frechet", action="store_true", help="digits: also the digits Fréchet distances")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    if set(parts) - set(PARTS):
        parser.error(f"--parts: unknown {sorted(set(parts) - set(PARTS))}; known {PARTS}")
    seeds, steps = (1, 100) if args.quick else (args.seeds, args.steps)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="ctrl_bench_"))
    result = {"quick": args.quick, "seeds": seeds, "steps": steps or "config default"}
    if "digits" in parts:
        result["digits"], result["digits_runs"] = digits_part(seeds, steps, scratch, args.frechet)
        common.print_table(f"digits 16x16, test split, {seeds} seed(s)", result["digits"])
    if "set12" in parts:
        result["set12"] = set12_part(10 if args.quick else steps, scratch)
        common.print_table("trained on natural crops (unlabeled), reconstructing Set12 crops", result["set12"])
    if "speed" in parts:
        result["speed"] = speed_part(repeats=3 if args.quick else 5)
        common.print_table("step time (median ms)", result["speed"])
    if "conv32" in parts:
        batch = 16 if args.quick else 128
        result["conv32"] = conv32_part(batch, repeats=2 if args.quick else 5)
        common.print_table(f"conv CTRL 32x32 (64, 128, 256), batch {batch}: step time (median ms)", result["conv32"])
    if args.out is not None:
        common.write_json(args.out, "ctrl", result)


if __name__ == "__main__":
    main()
