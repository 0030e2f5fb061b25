"""SC-VAE train-step time at 64×64 and 256×256 and the share of the LISTA bottleneck in it.

    python -m benchmarks.sc_vae_perf [--quick] [--out=benchmarks/results/sc_vae_perf.json]

For each image size (64: d = 2, 256: d = 4, both a 16×16 latent grid) and bottleneck size
(bench: n = 64, K = 128; paper: n = 256, K = 512; s = 16 LISTA steps) on the benchmark
encoder/decoder (:mod:`benchmarks.sc_vae_common`), it times round-robin (``time_interleaved``):
- the jitted train step with the LISTA bottleneck and the same step with no bottleneck
  ("none"); share_by_difference = 1 − t_none / t_lista;
- the LISTA bottleneck alone (forward and backward to the latent grid and its parameters,
  jitted) on the same grid; share_direct = t_bottleneck / t_lista.
FLOPs per step come from XLA's cost analysis. The paper's architecture at 256×256 (C′ = 128,
widths up to 512, two residual blocks per level, attention at 16×16) is only lowered, not run:
its FLOPs and the LISTA bottleneck's share of them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks import common, sc_vae_common
from sparse_ae.models import sc_vae as model_lib
from sparse_ae.train.tasks import sc_vae as task_lib

BOTTLENECKS = {"bench": dict(latent_dim=64, num_atoms=128), "paper": dict(latent_dim=256, num_atoms=512)}
SIZES = {64: dict(num_down=2), 256: dict(num_down=4)}
PAPER_ARCH = dict(channels=128, channel_mult=(1, 1, 2, 2, 4), num_res_blocks=2, num_down=4, attn_resolutions=(16,))


def _flops(lowered) -> float:
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def step_case(bottleneck: str, size: int, batch: int, **model):
    """(jitted train step, its args, FLOPs per step) for the benchmark model."""
    config = sc_vae_common.make_config(bottleneck, 100, **model)
    config.data.image_size = size
    task = task_lib.make_task(config)
    x = {"image": jnp.asarray(np.random.default_rng(0).random((batch, size, size, 3), np.float32))}
    state = jax.jit(task.init)(jax.random.key(0), x)
    step = jax.jit(task.train_step)
    lowered = step.lower(state, x, jax.random.key(1))
    return step, (state, x, jax.random.key(1)), _flops(lowered)


def bottleneck_case(grid: int, batch: int, latent_dim: int, num_atoms: int, steps: int = 16):
    """(jitted forward+backward of the LISTA bottleneck, args, FLOPs) on a (batch, grid, grid, n) latent."""
    module = model_lib.ListaBottleneck(latent_dim, num_atoms, steps, 1.0, "dct", True)
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    latent = jax.random.normal(jax.random.key(0), (batch, grid, grid, latent_dim))

    def loss(p, e):
        out = nnx.merge(graphdef, p, rest)(e)
        return jnp.sum(out.decoder_input ** 2) + jnp.sum(jnp.abs(out.code))

    fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
    return fn, (params, latent), _flops(fn.lower(params, latent))


def paper_flops(batch: int = 1) -> dict:
    """FLOPs per train step of the paper's architecture at 256×256, with and without LISTA (lowered only)."""
    out = {}
    for bottleneck in ("lista", "none"):
        config = sc_vae_common.make_config(bottleneck, 100, **PAPER_ARCH, **BOTTLENECKS["paper"])
        config.data.image_size = 256
        task = task_lib.make_task(config)
        x = {"image": jax.ShapeDtypeStruct((batch, 256, 256, 3), jnp.float32)}
        state = jax.eval_shape(task.init, jax.random.key(0), x)
        out[bottleneck] = _flops(jax.jit(task.train_step).lower(state, x, jax.random.key(1)))
    return {"image_size": 256, "batch": batch, "gflop_lista": out["lista"] / 1e9, "gflop_none": out["none"] / 1e9,
            "flop_share_lista": 1 - out["none"] / out["lista"]}


def main() -> None:
    args = common.base_parser(__doc__.splitlines()[0]).parse_args()
    repeats = 3 if args.quick else 5
    batches = {64: 4, 256: 1} if args.quick else {64: 16, 256: 2}
    rows = []
    for size, arch in SIZES.items():
        for name, bneck in BOTTLENECKS.items():
            if args.quick and name == "paper" and size == 256:
                continue
            batch = batches[size]
            lista = step_case("lista", size, batch, **arch, **bneck)
            none = step_case("none", size, batch, **arch, **bneck)
            alone = bottleneck_case(size // 2 ** arch["num_down"], batch, **bneck)
            times, first = common.time_interleaved({"lista": lista[:2], "none": none[:2], "bottleneck": alone[:2]},
                                                   repeats=repeats)
            t = {k: float(np.median(v)) for k, v in times.items()}
            rows.append({"image_size": size, "d": arch["num_down"], "bottleneck": name, "batch": batch,
                         "step_s_lista": t["lista"], "step_s_none": t["none"], "lista_alone_s": t["bottleneck"],
                         "share_by_difference": 1 - t["none"] / t["lista"],
                         "share_direct": t["bottleneck"] / t["lista"],
                         "gflop_step_lista": lista[2] / 1e9, "gflop_step_none": none[2] / 1e9,
                         "gflop_lista_alone": alone[2] / 1e9,
                         "gflops_achieved": lista[2] / 1e9 / t["lista"],
                         "compile_s_lista": first["lista"]})
            common.print_table(rows[-1:], title=f"{size}x{size}, {name} bottleneck")
    paper = paper_flops()
    common.print_table("SC-VAE train-step time and LISTA share", rows,
                       columns=["image_size", "bottleneck", "batch", "step_s_lista", "step_s_none", "lista_alone_s",
                                "share_by_difference", "share_direct", "gflop_step_lista", "gflops_achieved"])
    common.print_table("paper architecture at 256x256 (lowered only, batch 1)", [paper])
    if args.out:
        common.write_json(args.out, "sc_vae_perf", {"quick": args.quick, "repeats": repeats,
                                                    "model": sc_vae_common.BENCH_MODEL, "rows": rows,
                                                    "paper_architecture": {**PAPER_ARCH, **paper}})


if __name__ == "__main__":
    main()
