"""Learned ISTA on the classic synthetic problem: per-layer NMSE (dB) of ISTA, FISTA and the
LISTA family, each trained here.

Problem (Gregor & LeCun 2010; Chen et al. 2018; Liu et al. 2019): A (250, 500) with N(0, 1/250)
entries and unit-norm columns; x = Bernoulli(0.1)·N(0, 1) codes; y = A x (noiseless); 16 layers.
Training draws a fresh batch every step; all methods are scored on one fixed test set with the
pooled NMSE 10·log10(Σ‖x̂ − x‖²/Σ‖x‖²) of the reference code. Layer 0 is z = 0 (0 dB).

Methods (Adam, batch 64, lr decayed ×0.2 at half and ×0.1 at three quarters of the steps):
- ISTA / FISTA: step 1/L, λ picked from a grid for the best NMSE at 16 iterations.
- ALISTA: analytic W, per-layer step γ_t and threshold θ_t, support selection (1.2 %/layer, ≤ 13 %).
- LISTA-CPSS: untied coupled W_t, θ_t from the ISTA initialisation, support selection.
- LISTA-tied: LISTA from the ISTA initialisation with W_e, S shared by all layers, θ_t per layer.
- LISTA: untied W_e, S, θ (no support selection), warm-started from an ALISTA trained without
  support selection (``learned.lista_from_coupled``) and then trained end to end.

    python -m benchmarks.lista [--quick] [--out DIR]
    python -m benchmarks.lista --out=benchmarks/results   # the committed result
"""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from sparse_ae.sparse_coding import learned, metrics, prox, solvers

SIGNAL_DIM, NUM_ATOMS, DENSITY, NUM_LAYERS = 250, 500, 0.1, 16
SUPPORT = (0.012, 0.13)
INIT_LAM = 0.4  # initial threshold θ = λ/L of the learned methods (Chen et al.)
LAM_GRID = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
BATCH = 64
# steps (full, quick) and peak learning rate per training stage
STEPS = {"alista": (1600, 400), "lista_cpss": (4000, 800), "lista_tied": (6000, 1200),
         "alista_plain": (1600, 400), "lista": (3200, 600)}
LR = {"alista": 2e-3, "lista_cpss": 5e-4, "lista_tied": 5e-4, "alista_plain": 2e-3, "lista": 1e-4}


def make_dictionary(key: jax.Array) -> jax.Array:
    """A (250, 500): N(0, 1/250) entries, columns scaled to unit norm."""
    A = jax.random.normal(key, (SIGNAL_DIM, NUM_ATOMS)) / np.sqrt(SIGNAL_DIM)
    return A / jnp.linalg.norm(A, axis=0)


def sample(key: jax.Array, A: jax.Array, batch: int) -> tuple[jax.Array, jax.Array]:
    """(y (batch, 250), x (batch, 500)) with x Bernoulli(0.1)·N(0, 1) and y = A x."""
    support_key, value_key = jax.random.split(key)
    x = jax.random.bernoulli(support_key, DENSITY, (batch, NUM_ATOMS)) * jax.random.normal(value_key, (batch, NUM_ATOMS))
    return x @ A.T, x


def per_layer_nmse(codes: jax.Array, x: jax.Array) -> np.ndarray:
    """(T + 1,) NMSE in dB of z_0 = 0, z_1, …, z_T ((T, B, K) codes) against x."""
    return np.concatenate([[0.0], np.asarray(jax.vmap(lambda z: metrics.nmse_db(z, x))(codes))])


def baseline(A: jax.Array, y: jax.Array, x: jax.Array, accelerated: bool) -> tuple[np.ndarray, float]:
    """Per-layer NMSE of ISTA or FISTA (step 1/L) at the λ of the grid best at 16 iterations."""
    step = 1.0 / learned.lipschitz_constant(A)

    @jax.jit
    def iterates(lam, y):
        _, history = solvers.proximal_gradient(
            lambda z: (z @ A.T - y) @ A, lambda v, t: prox.soft_threshold(v, lam * t),
            jnp.zeros((y.shape[0], NUM_ATOMS)), step, NUM_LAYERS, accelerated=accelerated,
            history_fn=lambda z: z)
        return history

    curves = {lam: per_layer_nmse(iterates(lam, y), x) for lam in LAM_GRID}
    best = min(curves, key=lambda lam: curves[lam][-1])
    return curves[best], best


def fit(params, apply_all: Callable, A: jax.Array, steps: int, lr: float, key: jax.Array):
    """Adam on the mean squared error of the last layer; returns (params, seconds per step)."""
    schedule = optax.piecewise_constant_schedule(lr, {steps // 2: 0.2, 3 * steps // 4: 0.1})
    optimizer = optax.adam(schedule)

    @jax.jit
    def train_step(params, opt_state, step_key):
        y, x = sample(step_key, A, BATCH)
        loss_fn = lambda p: jnp.mean(jnp.sum(jnp.square(apply_all(p, y)[-1] - x), axis=-1))  # noqa: E731
        grads = jax.grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    opt_state = optimizer.init(params)
    params, opt_state = jax.block_until_ready(train_step(params, opt_state, jax.random.fold_in(key, 0)))
    start = time.perf_counter()
    for i in range(1, steps):
        params, opt_state = train_step(params, opt_state, jax.random.fold_in(key, i))
    jax.block_until_ready(params)
    return params, (time.perf_counter() - start) / max(steps - 1, 1)


def run(quick: bool) -> dict:
    key = jax.random.key(0)
    A = make_dictionary(key)
    y_test, x_test = sample(jax.random.key(1), A, 1000)
    W = learned.alista_weight(A)
    pick = lambda name: STEPS[name][1 if quick else 0]  # noqa: E731
    curves, lams, timing = {}, {}, {}

    for name, accelerated in (("ISTA", False), ("FISTA", True)):
        curves[name], lams[name] = baseline(A, y_test, x_test, accelerated)

    methods = {
        "ALISTA": ("alista", learned.alista_init(A, INIT_LAM, NUM_LAYERS),
                   lambda p, y: learned.alista_apply(p, y, A, W, support=SUPPORT, return_all=True)),
        "LISTA-CPSS": ("lista_cpss", learned.lista_cp_init(A, INIT_LAM, NUM_LAYERS),
                       lambda p, y: learned.lista_cp_apply(p, y, A, support=SUPPORT, return_all=True)),
        "LISTA-tied": ("lista_tied", learned.lista_init(A, INIT_LAM, NUM_LAYERS, tied=("W_e", "S")),
                       lambda p, y: learned.lista_apply(p, y, return_all=True)),
        "ALISTA-plain": ("alista_plain", learned.alista_init(A, INIT_LAM, NUM_LAYERS),
                         lambda p, y: learned.alista_apply(p, y, A, W, return_all=True)),
    }
    trained = {}
    for label, (stage, params, apply_all) in methods.items():
        trained[label], seconds = fit(params, apply_all, A, pick(stage), LR[stage], jax.random.fold_in(key, len(trained) + 2))
        timing[label] = {"steps": pick(stage), "s_per_step": seconds}
        curves[label] = per_layer_nmse(jax.jit(apply_all)(trained[label], y_test), x_test)
        print(f"{label}: {curves[label][-1]:.2f} dB at {NUM_LAYERS} layers ({seconds:.3f} s/step)", flush=True)

    plain = trained["ALISTA-plain"]
    lista_apply = lambda p, y: learned.lista_apply(p, y, return_all=True)  # noqa: E731
    warm = learned.lista_from_coupled(plain["gamma"][:, None, None] * W, plain["theta"], A)
    params, seconds = fit(warm, lista_apply, A, pick("lista"), LR["lista"], jax.random.fold_in(key, 99))
    timing["LISTA"] = {"steps": pick("lista"), "s_per_step": seconds, "warm_start": "ALISTA-plain"}
    curves["LISTA"] = per_layer_nmse(jax.jit(lista_apply)(params, y_test), x_test)
    print(f"LISTA: {curves['LISTA'][-1]:.2f} dB at {NUM_LAYERS} layers ({seconds:.3f} s/step)", flush=True)

    order = ["ISTA", "FISTA", "LISTA", "LISTA-tied", "LISTA-CPSS", "ALISTA", "ALISTA-plain"]
    rows = [{"layer": t, **{name: float(curves[name][t]) for name in order}} for t in range(NUM_LAYERS + 1)]
    common.print_table("Per-layer NMSE (dB), 250x500, noiseless, 1000 test samples", rows, ["layer", *order])
    common.print_table("Training", [{"method": k, **v} for k, v in timing.items()])
    fista16, lista16 = float(curves["FISTA"][-1]), float(curves["LISTA"][-1])
    acceptance = {"lista_16": lista16, "fista_16": fista16, "gap_db": fista16 - lista16,
                  "pass": bool(lista16 <= -25 and fista16 - lista16 >= 10)}
    print(f"\nISTA λ={lams['ISTA']}, FISTA λ={lams['FISTA']}; LISTA at 16 layers {lista16:.2f} dB vs "
          f"FISTA {fista16:.2f} dB (gap {fista16 - lista16:.1f} dB): pass={acceptance['pass']}")
    return {"quick": quick, "problem": {"signal_dim": SIGNAL_DIM, "num_atoms": NUM_ATOMS, "density": DENSITY,
                                        "layers": NUM_LAYERS, "test_samples": 1000, "batch": BATCH,
                                        "support": SUPPORT, "init_lam": INIT_LAM, "lr": LR},
            "baseline_lam": lams, "nmse_db": {k: v.tolist() for k, v in curves.items()},
            "training": timing, "acceptance": acceptance}


def main() -> None:
    args = common.base_parser(__doc__.splitlines()[0]).parse_args()
    result = run(args.quick)
    if args.out is not None:
        common.write_json(args.out, "lista", result)


if __name__ == "__main__":
    main()
