"""Base configuration, config-argument parsing and validation.

Every experiment is ``configs/<name>.py`` with ``get_config(arg=None)``::

    from sparse_ae import config as config_lib

    def get_config(arg=None):
        args = config_lib.parse_arg(arg, runlocal=False, dataset="digits")
        config = config_lib.base_config()
        config.task = "my_task"                  # sparse_ae/train/tasks/my_task.py
        config.data.name = args.dataset
        config.model.num_atoms = 32              # task-specific fields live in config.model
        if args.runlocal:
            config = config_lib.apply_runlocal(config)
            config.model.num_atoms = 4           # ... and shrink the model here
        return config

``--config=configs/my.py:dataset=mnist,runlocal`` passes ``"dataset=mnist,runlocal"`` as ``arg``;
``--config.optim.lr=1e-4`` overrides a field afterwards. :func:`validate` (called by
``sparse_ae.train.validation.validate_run`` with the checks of the layers above) runs before
anything compiles and names the offending field. The sections ``optim``, ``train``, ``eval`` and
``mesh`` are closed (an unknown key there is an error, e.g. a typo); ``data`` (fields:
``sparse_ae.data.DataConfig``) is checked by ``sparse_ae.data.validate_config``. Checks that need
a higher layer (evaluator names, the task's ``model`` section, the mesh against the devices) are
in ``sparse_ae.train.validation.validate_run``, which runs this module's :func:`validate` first.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import ml_collections

from sparse_ae import data as data_lib
from sparse_ae import optim as optim_lib

CLOSED_SECTIONS = ("optim", "train", "eval", "mesh")


def load_config_file(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> ml_collections.ConfigDict:
    """``get_config(arg)`` of the config file in ``spec`` = ``"path/to/x.py[:arg]"`` (as ``--config``
    takes it); a relative path is read from ``root`` (default: the working directory)."""
    path_text, _, arg = os.fspath(spec).partition(":")
    path = pathlib.Path(root or ".") / path_text
    if not path.is_file():
        raise ValueError(f"config file {os.fspath(path)!r} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"sparse_ae_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)


def base_config() -> ml_collections.ConfigDict:
    """Every field the framework reads, with defaults; a config file sets ``task`` and ``model``."""
    config = ml_collections.ConfigDict()
    config.task = ""            # module name in sparse_ae/train/tasks
    config.seed = 0             # parameter init, data order and per-step PRNG keys
    config.runlocal = False     # set by apply_runlocal: seconds-long smoke run
    config.data = data_lib.default_config()  # fields: sparse_ae.data.DataConfig
    config.model = ml_collections.ConfigDict()
    config.optim = optim_lib.optim_config()
    config.train = ml_collections.ConfigDict(dict(
            num_steps=1000,
            split="train",          # data split to train on
            log_every=50,           # scalars (mean over the window) every K steps
            eval_every=0,           # evaluators every K steps; 0 = only at the end
            checkpoint_every=500,   # 0 = only at the end (and on preemption)
            keep_checkpoints=3,
    ))
    config.eval = ml_collections.ConfigDict(dict(
            evaluators=("reconstruction",),
            splits=("test",),
            num_batches=0,          # batches per split; 0 = the whole split
            batch_size=0,           # global eval batch; 0 = data.batch_size
            num_images=16,          # examples shown in image grids
    ))
    config.mesh = ml_collections.ConfigDict(dict(
            data=-1,                # devices on the batch axis; -1 = all not used by model
            model=1,
            axis_type="auto",       # "auto" | "explicit" (sharding in types)
            fsdp_axes="",           # shard state leaves over these axes, e.g. "model" or "data,model"
            fsdp_min_size=2**16,    # ... when they hold at least this many elements
    ))
    return config


def _coerce(text: str, default: Any, key: str) -> Any:
    """``text`` as the type of ``default``, or as a Python literal when there is no default."""
    if isinstance(default, bool) or default is None:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        if isinstance(default, bool):
            raise ValueError(f"config argument {key}={text!r}: expected true or false")
    if isinstance(default, str):
        return text
    for kind in ((int, float) if default is None else (type(default),)):
        try:
            return kind(text)
        except ValueError:
            continue
    if default is None:
        return text
    raise ValueError(f"config argument {key}={text!r}: expected {type(default).__name__}")


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
    """Parses ``"key=value,flag,..."`` (the part after ``:`` in ``--config=file.py:arg``).

    A bare ``flag`` means ``flag=True``. With ``defaults``, keys must be among them and values
    are converted to the default's type (bool accepts true/false/1/0); without, values become
    int, float, bool or str. Returns the defaults updated by ``arg`` as a ConfigDict.
    """
    result = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, text = item.partition("=")
        key = key.strip()
        if defaults and key not in defaults:
            raise ValueError(f"unknown config argument {key!r} in {arg!r}; known: {sorted(defaults)}")
        default = defaults.get(key)
        if not sep:
            if default is not None and not isinstance(default, bool):
                raise ValueError(f"config argument {key!r} needs a value: {key}=...")
            result[key] = True
        else:
            result[key] = _coerce(text.strip(), default, key)
    return ml_collections.ConfigDict(result)


def apply_runlocal(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks steps, batches and evaluation for a seconds-long run; the model is the caller's."""
    config.runlocal = True
    config.data.batch_size = 8
    config.optim.warmup_steps = min(config.optim.warmup_steps, 2)
    config.train.update(num_steps=20, log_every=5, eval_every=0, checkpoint_every=10)
    config.eval.update(num_batches=1, batch_size=0, num_images=8)
    return config


def _type_name(value: Any) -> str:
    return "sequence" if isinstance(value, (list, tuple)) else type(value).__name__


def _same_type(value: Any, reference: Any) -> bool:
    if isinstance(reference, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(reference, bool)
    if isinstance(reference, float):
        return isinstance(value, (int, float))
    if isinstance(reference, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(reference))


def check_fields(section, reference, field: str, closed: bool) -> None:
    """Types of ``section`` against ``reference``; unknown keys are errors when ``closed``."""
    if not isinstance(section, (ml_collections.ConfigDict, dict)):
        raise TypeError(f"{field} must be a ConfigDict, got {type(section).__name__}")
    for key in reference:
        if key not in section:
            raise ValueError(f"{field}.{key} is missing (start from sparse_ae.config.base_config())")
        value, expected = section[key], reference[key]
        if isinstance(expected, ml_collections.ConfigDict):
            continue
        if not _same_type(value, expected):
            raise TypeError(f"{field}.{key}={value!r} has type {_type_name(value)}; expected "
                            f"{_type_name(expected)} (like the default {expected!r})")
    if closed:
        unknown = sorted(set(section) - set(reference))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(f'{field}.{k}' for k in unknown)}; "
                             f"known: {sorted(reference)}")


def _check_positive(section, field: str, keys: Sequence[str], minimum: int) -> None:
    for key in keys:
        if section[key] < minimum:
            raise ValueError(f"{field}.{key}={section[key]} must be >= {minimum}")


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError/TypeError naming the field for anything wrong in the framework's own
    sections of ``config`` (field names and types, ``data``, ``optim``, ``train``, ``eval``,
    ``mesh`` numbers). What needs the layers above (evaluator names, the mesh over devices, the
    task's ``model``) is checked by :func:`sparse_ae.train.validation.validate_run`, which calls
    this first.
    """
    reference = base_config()
    check_fields(config, reference, "config", closed=False)
    for section in CLOSED_SECTIONS:
        check_fields(config[section], reference[section], f"config.{section}", closed=True)
    data_lib.validate_config(config.data)
    optim_lib.validate_optim(config.optim)
    _check_positive(config.train, "config.train", ("num_steps", "log_every", "keep_checkpoints"), 1)
    _check_positive(config.train, "config.train", ("eval_every", "checkpoint_every"), 0)
    _check_positive(config.eval, "config.eval", ("num_batches", "batch_size", "num_images"), 0)
    _check_positive(config.mesh, "config.mesh", ("fsdp_min_size",), 0)
    if config.optim.warmup_steps >= config.train.num_steps:
        raise ValueError(f"config.optim.warmup_steps={config.optim.warmup_steps} must be < "
                         f"config.train.num_steps={config.train.num_steps}")
    if not config.eval.splits or not all(isinstance(s, str) and s for s in config.eval.splits):
        raise ValueError(f"config.eval.splits={config.eval.splits!r} must be a non-empty list of split names")
    _check_positive(config.mesh, "config.mesh", ("fsdp_min_size",), 0)
