"""SC-VAE vs VQ-VAE vs plain autoencoder at an equal latent grid and an equal training budget.

    python -m benchmarks.sc_vae_compare [--quick] [--steps=N] [--ema] [--out=benchmarks/results/sc_vae_compare.json]

Every model is the benchmark model of :mod:`benchmarks.sc_vae_common` (16×16 grid of n = 64,
K = 128 atoms / codewords) trained for the same number of steps and batch size on the natural
crops, then scored on the 256 fixed test crops of the held-out photos: PSNR, SSIM, Hoyer sparsity
and non-zero fraction of the code, codebook usage and perplexity for VQ. ``--ema`` adds the VQ-VAE
with EMA codebook updates. A full-size run with ``--out`` also saves the trained parameters to
``benchmarks/results/sc_vae_params/`` (read by ``benchmarks.sc_vae_segmentation``). Goal: PSNR(SC-VAE) ≥ PSNR(VQ-VAE) + 3 dB.
"""

from __future__ import annotations

from benchmarks import common, sc_vae_common

GOAL_DB = 3.0


def runs(ema: bool) -> dict[str, dict]:
    """Run name → (bottleneck, model overrides)."""
    out = {"sc_vae": dict(bottleneck="lista"), "vq_vae": dict(bottleneck="vq"), "plain_ae": dict(bottleneck="none")}
    if ema:
        out["vq_vae_ema"] = dict(bottleneck="vq", vq_ema=True)
    return out


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=0, help="training steps per model (default 1500; quick 60)")
    parser.add_argument("--ema", action="store_true", help="also train the VQ-VAE with EMA codebook updates")
    args = parser.parse_args()
    steps = args.steps or (60 if args.quick else 1500)
    rows = []
    for name, spec in runs(args.ema).items():
        spec = dict(spec)
        config = sc_vae_common.make_config(spec.pop("bottleneck"), steps, **spec)
        print(f"{name}: {steps} steps, batch {config.data.batch_size}", flush=True)
        task, state, info = sc_vae_common.train(config, log_every=max(steps // 10, 1))
        result = sc_vae_common.evaluate(task, state, config)
        if args.out and not args.quick:
            sc_vae_common.save_state(state, name)
        rows.append({"model": name, **result, "train_s": info["train_seconds"], "step_s": info["median_step_seconds"],
                     "curve": info["curve"]})
        common.print_table(rows[-1:], columns=[k for k in rows[-1] if k != "curve"], title=name)
    by_name = {r["model"]: r for r in rows}
    gap = by_name["sc_vae"]["psnr"] - by_name["vq_vae"]["psnr"]
    columns = ["model", "psnr", "ssim", "code_hoyer", "code_nonzero", "codebook_usage", "codebook_perplexity",
               "train_s", "step_s"]
    common.print_table(f"test crops of held-out photos, {steps} steps x batch 16 each", rows, columns=columns)
    print(f"PSNR(SC-VAE) - PSNR(VQ-VAE) = {gap:.2f} dB (goal >= {GOAL_DB} dB: {'met' if gap >= GOAL_DB else 'NOT met'})")
    if args.out:
        common.write_json(args.out, "sc_vae_compare", {
                "quick": args.quick, "steps": steps, "batch_size": 16, "model": sc_vae_common.BENCH_MODEL,
                "rows": rows, "psnr_gap_sc_minus_vq_db": gap, "goal_db": GOAL_DB, "goal_met": gap >= GOAL_DB})


if __name__ == "__main__":
    main()
