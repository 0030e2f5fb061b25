"""Device mesh and shardings from ``config.mesh``.

The mesh has axes ``("data", "model")``. Batches are split over ``data`` (leading axis).
State (parameters, optimizer moments, model state) is replicated by default; the task's own
``Task.state_sharding`` rule wins if it has one, else ``config.mesh.fsdp_axes`` turns on the
FSDP-style rule :func:`fsdp_shardings` (e.g. ``"model"``, or ``"data,model"`` for ZeRO-3 over
every device). ``config.mesh.axis_type`` picks the JAX axis type: ``"auto"`` (default: the
compiler propagates shardings from the jit's in/out shardings, so task code needs no sharding
annotations) or ``"explicit"`` (sharding-in-types; task code must keep shardings consistent).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

AXES = ("data", "model")
AXIS_TYPES = {"auto": AxisType.Auto, "explicit": AxisType.Explicit}


def mesh_shape(mesh_config, num_devices: int) -> tuple[int, int]:
    """``(data, model)`` sizes; ``data=-1`` takes every device not used by ``model``."""
    model = mesh_config.model
    if model < 1 or num_devices % model:
        raise ValueError(f"config.mesh.model={model} must be >= 1 and divide the {num_devices} devices")
    data = num_devices // model if mesh_config.data == -1 else mesh_config.data
    if data < 1 or data * model != num_devices:
        raise ValueError(
                f"config.mesh.data={mesh_config.data} x config.mesh.model={model} must equal the "
                f"{num_devices} devices (use data=-1 for 'all the rest')")
    return data, model


def make_mesh(mesh_config, devices: list | None = None) -> Mesh:
    """The ``("data", "model")`` mesh over ``devices`` (default: all global devices)."""
    devices = jax.devices() if devices is None else devices
    if mesh_config.axis_type not in AXIS_TYPES:
        raise ValueError(f"config.mesh.axis_type={mesh_config.axis_type!r} is not one of {tuple(AXIS_TYPES)}")
    shape = mesh_shape(mesh_config, len(devices))
    axis_type = AXIS_TYPES[mesh_config.axis_type]
    return jax.make_mesh(shape, AXES, axis_types=(axis_type,) * len(AXES), devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over ``data``, the rest replicated."""
    return NamedSharding(mesh, P("data"))


def parse_axes(text: str) -> tuple[str, ...]:
    """``"data,model"`` -> ``("data", "model")``; ValueError naming config.mesh.fsdp_axes."""
    axes = tuple(a.strip() for a in text.split(",") if a.strip())
    if len(set(axes)) != len(axes) or not set(axes) <= set(AXES):
        raise ValueError(f"config.mesh.fsdp_axes={text!r} must be a comma list of distinct mesh axes "
                         f"from {AXES} (or '' to replicate the state)")
    return axes


def fsdp_shardings(abstract_state: Any, mesh: Mesh, axes: tuple[str, ...], min_size: int) -> Any:
    """FSDP-style rule: each leaf of at least ``min_size`` elements is split over ``axes`` along
    its largest dimension divisible by their total size; other leaves are replicated.

    Optimizer moments have their parameter's shape and so get its sharding. With the mesh's
    ``auto`` axis type the compiler gathers a leaf where a computation needs it whole.
    """
    ways = int(np.prod([mesh.shape[a] for a in axes]))
    split = axes[0] if len(axes) == 1 else axes

    def rule(leaf) -> NamedSharding:
        shape = tuple(getattr(leaf, "shape", ()))
        if ways == 1 or int(np.prod(shape)) < max(min_size, 1):
            return replicated(mesh)
        candidates = [d for d in range(len(shape)) if shape[d] % ways == 0]
        if not candidates:
            return replicated(mesh)
        dim = max(candidates, key=lambda d: (shape[d], -d))
        return NamedSharding(mesh, P(*(split if d == dim else None for d in range(len(shape)))))

    return jax.tree.map(rule, abstract_state)


def state_shardings(task, abstract_state: Any, mesh: Mesh, mesh_config) -> Any:
    """Per-leaf shardings of the state: the task's rule, else ``config.mesh.fsdp_axes``, else replicated."""
    if task.state_sharding is not None:
        return task.state_sharding(abstract_state, mesh)
    axes = parse_axes(mesh_config.fsdp_axes)
    if axes:
        return fsdp_shardings(abstract_state, mesh, axes, mesh_config.fsdp_min_size)
    return jax.tree.map(lambda _: replicated(mesh), abstract_state)


def sharded_fraction(shardings: Any) -> tuple[int, int]:
    """(number of leaves not fully replicated, number of leaves)."""
    leaves = jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    return sum(not s.is_fully_replicated for s in leaves), len(leaves)


def with_shardings(abstract: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs that carry shardings (the target of a sharded checkpoint restore)."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings)
