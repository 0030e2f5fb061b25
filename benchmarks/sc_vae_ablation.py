"""LISTA-steps ablation of SC-VAE: s ∈ {1, 5, 10, 15, 20, 25, 30}, code sparsity and PSNR.

    python -m benchmarks.sc_vae_ablation [--quick] [--steps=N] [--out=benchmarks/results/sc_vae_ablation.json]

Each s trains the benchmark SC-VAE (:mod:`benchmarks.sc_vae_common`) from scratch with the same
budget (steps × batch 16) and is scored on the 256 fixed test crops: PSNR, SSIM, Hoyer sparsity,
fraction of non-zero code entries, learned α and step time.
"""

from __future__ import annotations

import jax
import numpy as np

from benchmarks import common, sc_vae_common

LISTA_STEPS = (1, 5, 10, 15, 20, 25, 30)


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=0, help="training steps per model (default 600; quick 30)")
    args = parser.parse_args()
    steps = args.steps or (30 if args.quick else 600)
    values = (1, 5, 16) if args.quick else LISTA_STEPS
    rows = []
    for s in values:
        config = sc_vae_common.make_config("lista", steps, lista_steps=s)
        print(f"s = {s}: {steps} steps", flush=True)
        task, state, info = sc_vae_common.train(config, log_every=max(steps // 5, 1))
        result = sc_vae_common.evaluate(task, state, config)
        alpha = float(np.exp(jax.device_get(state.params["bottleneck"]["log_alpha"])))
        rows.append({"lista_steps": s, **result, "alpha": alpha, "train_s": info["train_seconds"],
                     "step_s": info["median_step_seconds"]})
        common.print_table(rows[-1:])
    common.print_table(f"LISTA steps ablation ({steps} steps x batch 16 each)", rows)
    if args.out:
        common.write_json(args.out, "sc_vae_ablation", {"quick": args.quick, "steps": steps, "batch_size": 16,
                                                        "model": sc_vae_common.BENCH_MODEL, "rows": rows})


if __name__ == "__main__":
    main()
