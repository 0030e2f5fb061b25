"""Process-local batches -> global ``jax.Array`` batches, and global arrays back to host numpy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils


def to_global_batch(local_batch: Mapping[str, np.ndarray],
                    sharding: jax.sharding.Sharding | Mapping[str, jax.sharding.Sharding]) -> dict[str, jax.Array]:
    """Assemble each process's batch into global arrays with
    ``jax.make_array_from_process_local_data``.

    local_batch: this process's arrays, leading axis = per-process batch.
    sharding: one sharding for every key (e.g. ``NamedSharding(mesh, P("data"))``: leading axis
      split over "data", other axes replicated) or one per key. The global leading axis is the
      process-major concatenation of the local batches.
    """
    def put(key: str, value: np.ndarray) -> jax.Array:
        target = sharding[key] if isinstance(sharding, Mapping) else sharding
        return jax.make_array_from_process_local_data(target, np.asarray(value))

    return {key: put(key, value) for key, value in local_batch.items()}


def to_host(tree: Any) -> Any:
    """Global arrays (possibly spread over processes) as full numpy arrays on every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, jax.device_get(tree))
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
