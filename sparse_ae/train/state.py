"""Training state: a pytree the loop can jit, shard, donate and checkpoint.

Typical use in a task built on a Flax NNX module::

    graphdef, _, rest = split_module(MyModel(config.model, rngs=nnx.Rngs(0)))  # in make_task
    tx = sparse_ae.optim.make_optimizer(config.optim, config.train.num_steps)

    def init(rng, batch):
        _, params, _ = split_module(MyModel(config.model, rngs=nnx.Rngs(rng)))
        return TrainState.create(params, tx, extra={"power_vector": v0})

    def train_step(state, batch, rng):
        def loss_fn(params):
            model = nnx.merge(graphdef, params, rest)  # rebuilt inside the trace, no side effects
            ...
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
        metrics |= global_norms(grads=grads)
        return state.apply_gradients(grads, tx), metrics

The ``graphdef`` (static structure) stays in the task's closure; only arrays live in the
state. ``params`` are the module's ``nnx.Param`` values as a pure nested dict
(``nnx.to_pure_dict``): plain dicts checkpoint, shard and optimise without Variable wrappers,
and ``nnx.merge(graphdef, params, rest)`` accepts them (``rest``: the module's other variables,
``{}`` when it has none; keep mutable ones such as batch statistics in ``extra``). ``extra`` holds non-trained state such as
warm-started power-iteration vectors and Lipschitz estimates (read them under
``jax.lax.stop_gradient``) or batch statistics.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx


@flax.struct.dataclass
class TrainState:
    """``step`` int32 scalar, ``params`` and ``opt_state`` pytrees, ``extra`` any pytree."""

    step: jax.Array
    params: Any
    opt_state: Any
    extra: Any = flax.struct.field(default_factory=dict)

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation, extra: Any = None) -> TrainState:
        """Step 0 state with ``tx``'s optimizer state for ``params``."""
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                   extra={} if extra is None else extra)

    def apply_gradients(self, grads: Any, tx: optax.GradientTransformation, **changes) -> TrainState:
        """One optimizer update; ``step`` + 1; ``changes`` replace other fields (e.g. extra=...)."""
        updates, opt_state = tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            opt_state=opt_state, **changes)


def batch_stats(module: nnx.Module) -> dict:
    """The module's BatchNorm running statistics as a pure dict (for ``TrainState.extra``; {} without BatchNorm)."""
    return nnx.to_pure_dict(nnx.state(module, nnx.BatchStat))


def split_module(module: nnx.Module) -> tuple[nnx.GraphDef, dict, dict]:
    """``(graphdef, params, rest)``: Param values and all other variables as pure dicts."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(rest)


def global_norm(tree: Any) -> jax.Array:
    """L2 norm over all leaves, scaled by the largest entry so finite trees give finite norms."""
    leaves = [jnp.asarray(x, jnp.float32) for x in jax.tree.leaves(tree)]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
    safe = jnp.where(scale > 0, scale, 1.0)
    return safe * jnp.sqrt(sum(jnp.sum(jnp.square(x / safe)) for x in leaves))


def global_norms(**trees: Any) -> dict[str, jax.Array]:
    """``{"norm/<name>": global L2 norm}`` for each pytree given, e.g. grads=..., params=..."""
    return {f"norm/{name}": global_norm(tree) for name, tree in trees.items()}


def update_player(tx: optax.GradientTransformation, params: dict, opt_state: dict, grads: Any,
                  player: str) -> tuple[dict, dict]:
    """One optimiser step of ``player`` in a game whose ``params`` and ``opt_state`` are dicts
    keyed by player (``grads``: that player's gradient); the other players are unchanged."""
    updates, new_opt = tx.update(grads, opt_state[player], params[player])
    return ({**params, player: optax.apply_updates(params[player], updates)}, {**opt_state, player: new_opt})
