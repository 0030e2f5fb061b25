"""The checks of a config that need the evaluators, the task module or the device count.

:func:`validate_run` is what the entry points call before building anything: it runs
``sparse_ae.config.validate`` (the config's own sections), then checks evaluator names, the mesh
against the devices, that the global batches divide over the data axis and the processes, and
each evaluator's and the task module's optional ``validate_config(config)``.
"""

from __future__ import annotations

import ml_collections

from sparse_ae import config as config_lib
from sparse_ae import evaluators
from sparse_ae.train import sharding, task as task_lib


def _check_batches(config: ml_collections.ConfigDict, num_devices: int, process_count: int) -> None:
    data_size, _ = sharding.mesh_shape(config.mesh, num_devices)
    eval_batch = config.eval.batch_size or config.data.batch_size
    for field, batch in (("config.data.batch_size", config.data.batch_size),
                         ("config.eval.batch_size", eval_batch)):
        if batch % data_size:
            raise ValueError(f"{field}={batch} is not divisible by the {data_size} devices of the "
                             f"mesh's data axis; use a multiple of {data_size}")
        if batch % process_count:
            raise ValueError(f"{field}={batch} is not divisible by the {process_count} processes")


def validate_run(config: ml_collections.ConfigDict, *, num_devices: int | None = None,
                 process_count: int = 1) -> None:
    """Raises ValueError/TypeError naming the field for anything wrong in ``config``.

    With ``num_devices`` (global device count) also checks the mesh and that the global batch
    sizes divide over the ``data`` axis and over ``process_count`` processes.
    """
    config_lib.validate(config)
    found = [evaluators.get_evaluator(name) for name in config.eval.evaluators]
    if config.mesh.axis_type not in sharding.AXIS_TYPES:
        raise ValueError(f"config.mesh.axis_type={config.mesh.axis_type!r} is not one of "
                         f"{tuple(sharding.AXIS_TYPES)}")
    sharding.parse_axes(config.mesh.fsdp_axes)
    if num_devices is not None:
        _check_batches(config, num_devices, process_count)
    module = task_lib.task_module(config.task)
    for check in [getattr(e, "validate_config", None) for e in found] + [getattr(module, "validate_config", None)]:
        if check is not None:
            check(config)
