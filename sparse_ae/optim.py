"""Optax optimizers and learning-rate schedules from a config section (``config.optim``).

Fields: :class:`OptimConfig`. A task with two players (a game) keeps a second section of the same
shape, e.g. ``config.optim_disc = dict(lr=...)`` (its other fields at their defaults), validated with
``validate_optim(config, "optim_disc")``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import ml_collections
import optax

from sparse_ae.utils import sections

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "linear", "step")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """``config.optim`` (and a second player's section of the same shape, e.g. ``config.optim_disc``)."""

    # "adam", "adamw" or "sgd" (sgd uses b1 as momentum; 0: plain SGD).
    name: Literal[OPTIMIZERS] = "adam"
    # Peak learning rate.
    lr: float = 1e-3
    # "constant", "cosine" or "linear" (cosine/linear decay to 0 at the last step), or "step"
    # (PyTorch's StepLR: lr times decay_factor after every decay_every steps of the schedule).
    schedule: Literal[SCHEDULES] = "constant"
    decay_every: int = 0
    decay_factor: float = 0.1
    # Linear warm-up from 0 to lr, counted inside the schedule's steps.
    warmup_steps: int = 0
    # Adam moments (b1 also the SGD momentum) and epsilon.
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    # Decoupled weight decay (adamw; sgd adds it to the gradient) and the global-norm gradient
    # clip applied before the update; 0 turns either off.
    weight_decay: float = 0.0
    grad_clip: float = 0.0


def optim_config(**overrides) -> ml_collections.ConfigDict:
    """Default optimizer section; keyword arguments replace defaults (checked: unknown names, types)."""
    return ml_collections.ConfigDict(dataclasses.asdict(sections.parse(overrides, OptimConfig, "config.optim")))


def validate_optim(config, name: str = "optim") -> OptimConfig:
    """``config.<name>`` checked: every field present, known and typed, and each value in range
    (ValueError/TypeError naming ``config.<name>.<field>``)."""
    return _check_ranges(sections.parse_section(config, name, OptimConfig), f"config.{name}")


def _check_ranges(optim: OptimConfig, field: str) -> OptimConfig:
    if not optim.lr > 0:
        raise ValueError(f"{field}.lr={optim.lr} must be > 0")
    if optim.warmup_steps < 0:
        raise ValueError(f"{field}.warmup_steps={optim.warmup_steps} must be >= 0")
    for key in ("b1", "b2"):
        if not 0 <= getattr(optim, key) < 1:
            raise ValueError(f"{field}.{key}={getattr(optim, key)} must be in [0, 1)")
    for key in ("eps", "weight_decay", "grad_clip"):
        if getattr(optim, key) < 0:
            raise ValueError(f"{field}.{key}={getattr(optim, key)} must be >= 0")
    if optim.schedule == "step" and optim.decay_every < 1:
        raise ValueError(f"{field}.decay_every={optim.decay_every} must be >= 1 with schedule='step'")
    if not 0 < optim.decay_factor <= 1:
        raise ValueError(f"{field}.decay_factor={optim.decay_factor} must be in (0, 1]")
    return optim


def make_schedule(optim, num_steps: int) -> optax.Schedule:
    """Learning rate per step: linear warm-up to ``lr``, then constant, a decay to 0 at
    ``num_steps`` or steps down by ``decay_factor`` every ``decay_every`` steps."""
    decay_steps = max(num_steps - optim.warmup_steps, 1)
    if optim.schedule == "constant":
        main = optax.constant_schedule(optim.lr)
    elif optim.schedule == "cosine":
        main = optax.cosine_decay_schedule(optim.lr, decay_steps)
    elif optim.schedule == "linear":
        main = optax.linear_schedule(optim.lr, 0.0, decay_steps)
    elif optim.schedule == "step":
        main = optax.exponential_decay(optim.lr, optim.decay_every, optim.decay_factor, staircase=True)
    else:
        raise ValueError(f"optim.schedule={optim.schedule!r} is not one of {SCHEDULES}")
    if optim.warmup_steps == 0:
        return main
    warmup = optax.linear_schedule(0.0, optim.lr, optim.warmup_steps)
    return optax.join_schedules([warmup, main], [optim.warmup_steps])


def make_optimizer(optim, num_steps: int) -> optax.GradientTransformation:
    """Clipping (if ``grad_clip`` > 0) followed by the named optimizer on the schedule."""
    optim = _check_ranges(sections.parse(optim, OptimConfig, "config.optim"), "config.optim")
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
