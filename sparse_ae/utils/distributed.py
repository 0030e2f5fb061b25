"""Multi-process start-up: ``jax.distributed.initialize()`` only when asked, before any device query."""

from __future__ import annotations

import os

import jax
from absl import logging

# Set by launch/local.py (and usable by any launcher): jax.distributed reads the coordinator
# address itself; the process count and id are passed on explicitly.
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from err


def maybe_initialize(requested: bool) -> bool:
    """Initialises jax.distributed if ``requested`` or ``JAX_COORDINATOR_ADDRESS`` is set.

    Without an explicit coordinator, JAX detects the cluster (SLURM, TPU pod, MPI). CPU
    collectives use gloo, so a local multi-process CPU run works. Returns whether it
    initialised.
    """
    if not requested and ENV_COORDINATOR not in os.environ:
        return False
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(num_processes=_env_int(ENV_NUM_PROCESSES), process_id=_env_int(ENV_PROCESS_ID))
    logging.info("jax.distributed: process %d of %d, %d local / %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())
    return True
