"""Everything checked before a run compiles, in one call: the config's own sections
(:func:`sparse_ae.config.validate`), the evaluators named in ``config.eval.evaluators``, the mesh
over the devices and processes, then each evaluator's and the task module's optional
``validate_config(config)``. Errors are ValueError/TypeError naming ``config.<section>.<field>``.
"""

from __future__ import annotations

import ml_collections

from sparse_ae import config as config_lib
from sparse_ae import evaluators
from sparse_ae.train import sharding
from sparse_ae.train import task as task_lib


def validate_run(config: ml_collections.ConfigDict, *, num_devices: int | None = None,
                 process_count: int = 1) -> None:
    """Raises for anything wrong in ``config``. With ``num_devices`` (global device count) also
    checks the mesh and that the global batch sizes divide over the ``data`` axis and over
    ``process_count`` processes."""
    config_lib.validate(config)
    modules = [evaluators.get_evaluator(name) for name in config.eval.evaluators]
    if config.mesh.axis_type not in sharding.AXIS_TYPES:
        raise ValueError(f"config.mesh.axis_type={config.mesh.axis_type!r} is not one of "
                         f"{tuple(sharding.AXIS_TYPES)}")
    sharding.parse_axes(config.mesh.fsdp_axes)
    if num_devices is not None:
        check_batch_division(config, num_devices, process_count)
    for module in [*modules, task_lib.task_module(config.task)]:
        check = getattr(module, "validate_config", None)
        if check is not None:
            check(config)


def check_batch_division(config: ml_collections.ConfigDict, num_devices: int, process_count: int) -> None:
    """The training and evaluation batches divide over the mesh's ``data`` axis and the processes."""
    data_size, _ = sharding.mesh_shape(config.mesh, num_devices)
    eval_batch = config.eval.batch_size or config.data.batch_size
    for field, batch in (("config.data.batch_size", config.data.batch_size), ("config.eval.batch_size", eval_batch)):
        if batch % data_size:
            raise ValueError(f"{field}={batch} is not divisible by the {data_size} devices of the "
                             f"mesh's data axis; use a multiple of {data_size}")
        if batch % process_count:
            raise ValueError(f"{field}={batch} is not divisible by the {process_count} processes")
