"""Optax optimizers and learning-rate schedules from a config section (``config.optim``).

Fields (defaults in :func:`optim_config`):
  name          "adam" | "adamw" | "sgd" (sgd uses ``b1`` as momentum; 0 = plain SGD)
  lr            peak learning rate
  schedule      "constant" | "cosine" | "linear" (cosine/linear decay to 0 at the last step)
  warmup_steps  linear warm-up from 0 to ``lr`` (counted inside the schedule's steps)
  b1, b2, eps   Adam moments (b1 also SGD momentum)
  weight_decay  decoupled weight decay (adamw; sgd adds it to the gradient); 0 = off
  grad_clip     clip gradients to this global norm before the update; 0 = off

A task with two players (a game) keeps a second section of the same shape, e.g.
``config.optim_disc = optim_config(lr=...)``, validated with :func:`validate_optim`.
"""

from __future__ import annotations

import ml_collections
import optax

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "linear")


def optim_config(**overrides) -> ml_collections.ConfigDict:
    """Default optimizer section; keyword arguments replace defaults."""
    config = ml_collections.ConfigDict(dict(
            name="adam", lr=1e-3, schedule="constant", warmup_steps=0, b1=0.9, b2=0.999, eps=1e-8,
            weight_decay=0.0, grad_clip=0.0))
    config.update(overrides)
    return config


def validate_optim(optim, field: str = "config.optim") -> None:
    """ValueError naming ``field.<key>`` for a bad value (types are checked by config.validate)."""
    if optim.name not in OPTIMIZERS:
        raise ValueError(f"{field}.name={optim.name!r} is not one of {OPTIMIZERS}")
    if optim.schedule not in SCHEDULES:
        raise ValueError(f"{field}.schedule={optim.schedule!r} is not one of {SCHEDULES}")
    if not optim.lr > 0:
        raise ValueError(f"{field}.lr={optim.lr} must be > 0")
    if optim.warmup_steps < 0:
        raise ValueError(f"{field}.warmup_steps={optim.warmup_steps} must be >= 0")
    for key in ("b1", "b2"):
        if not 0 <= optim[key] < 1:
            raise ValueError(f"{field}.{key}={optim[key]} must be in [0, 1)")
    for key in ("eps", "weight_decay", "grad_clip"):
        if optim[key] < 0:
            raise ValueError(f"{field}.{key}={optim[key]} must be >= 0")


def make_schedule(optim, num_steps: int) -> optax.Schedule:
    """Learning rate per step: linear warm-up to ``lr``, then constant or decay to 0."""
    decay_steps = max(num_steps - optim.warmup_steps, 1)
    if optim.schedule == "constant":
        main = optax.constant_schedule(optim.lr)
    elif optim.schedule == "cosine":
        main = optax.cosine_decay_schedule(optim.lr, decay_steps)
    elif optim.schedule == "linear":
        main = optax.linear_schedule(optim.lr, 0.0, decay_steps)
    else:
        raise ValueError(f"optim.schedule={optim.schedule!r} is not one of {SCHEDULES}")
    if optim.warmup_steps == 0:
        return main
    warmup = optax.linear_schedule(0.0, optim.lr, optim.warmup_steps)
    return optax.join_schedules([warmup, main], [optim.warmup_steps])


def make_optimizer(optim, num_steps: int) -> optax.GradientTransformation:
    """Clipping (if ``grad_clip`` > 0) followed by the named optimizer on the schedule."""
    validate_optim(optim)
    lr = make_schedule(optim, num_steps)
    if optim.name == "adam":
        opt = optax.adam(lr, b1=optim.b1, b2=optim.b2, eps=optim.eps)
    elif optim.name == "adamw":
        opt = optax.adamw(lr, b1=optim.b1, b2=optim.b2, eps=optim.eps, weight_decay=optim.weight_decay)
    else:
        opt = optax.chain(optax.add_decayed_weights(optim.weight_decay) if optim.weight_decay else optax.identity(),
                          optax.sgd(lr, momentum=optim.b1 or None))
    if optim.grad_clip > 0:
        opt = optax.chain(optax.clip_by_global_norm(optim.grad_clip), opt)
    return opt
