"""Config files, the framework's defaults, config-argument parsing and validation.

Every experiment is ``configs/<name>.py``; it imports only ml_collections and states what differs
from the defaults::

    import ml_collections

    ARGS = dict(runlocal=False, dataset="digits")   # ``--config=configs/my.py:dataset=mnist,runlocal``

    def get_config(args):                           # args: ARGS parsed from the text after ':'
        config = ml_collections.ConfigDict()
        config.task = "my_task"                     # sparse_ae/train/tasks/my_task.py
        config.data = dict(name=args.dataset, image_size=16)
        config.model = dict(num_atoms=32)           # the task's section: only what differs
        if args.runlocal:
            config.runlocal = True
            config.train = dict(num_steps=20)
        return config

:func:`load_config_file` parses the arguments and calls ``get_config``; :func:`complete` fills
every field of the framework's own sections that the file left out (``sparse_ae.train.config_files``
adds the task's and the evaluators' sections), so ``--config.optim.lr=1e-4`` overrides any field
afterwards. The sections ``data`` (``sparse_ae.data.DataConfig``), ``optim``
(``sparse_ae.optim.OptimConfig``), ``train``, ``eval`` and ``mesh`` (:class:`TrainConfig`,
:class:`EvalConfig`, :class:`MeshConfig`) go through the one section parser
(``sparse_ae.utils.sections``). :func:`validate` (called by
``sparse_ae.train.validation.validate_run`` with the checks of the layers above) runs before
anything compiles and names the offending field.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
from typing import Any, Literal

import ml_collections

from sparse_ae import data as data_lib
from sparse_ae import optim as optim_lib
from sparse_ae.utils import sections


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """``config.train``: the loop's schedule."""

    # Optimisation steps, and the data split they read.
    num_steps: int = 1000
    split: str = "train"
    # Scalars (mean over the window) every K steps.
    log_every: int = 50
    # Evaluators every K steps; 0: only at the end.
    eval_every: int = 0
    # A checkpoint every K steps (0: only at the end and on preemption); how many are kept.
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    # Also keep the checkpoint with the best value of this evaluation scalar, "<split>/<name>"
    # (e.g. "test/mse"), in workdir/checkpoints_best; lower is better, a "max:" prefix makes
    # higher better ("max:test/psnr"). "": off.
    keep_best: str = ""


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """``config.eval``: what the evaluators run on."""

    # Evaluator names (``sparse_ae.evaluators``) and the splits they read.
    evaluators: tuple[str, ...] = ("reconstruction",)
    splits: tuple[str, ...] = ("test",)
    # Batches per split (0: the whole split); global batch (0: data.batch_size).
    num_batches: int = 0
    batch_size: int = 0
    # Examples shown in image grids.
    num_images: int = 16


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """``config.mesh``: the device mesh and how state is sharded over it."""

    # Devices on the batch axis (-1: all not used by model) and on the model axis.
    data: int = -1
    model: int = 1
    # "auto" or "explicit" (sharding in types).
    axis_type: Literal["auto", "explicit"] = "auto"
    # Shard state leaves over these axes (e.g. "model" or "data,model") when they hold at least
    # fsdp_min_size elements; "" shards nothing.
    fsdp_axes: str = ""
    fsdp_min_size: int = 2**16


SECTIONS = {"train": TrainConfig, "eval": EvalConfig, "mesh": MeshConfig}
DEFAULTS = {"data": data_lib.DataConfig, "optim": optim_lib.OptimConfig, **SECTIONS}
# Top-level fields: (type, default); task names a module in sparse_ae/train/tasks, seed drives
# parameter init, data order and per-step PRNG keys, runlocal marks a seconds-long smoke run.
TOP_LEVEL = {"task": (str, ""), "seed": (int, 0), "runlocal": (bool, False)}


def load_config_file(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> ml_collections.ConfigDict:
    """``get_config(args)`` of the config file in ``spec`` = ``"path/to/x.py[:arg]"`` (as ``--config``
    takes it): ``arg`` parsed against the file's ``ARGS`` (:func:`parse_arg`); a relative path is
    read from ``root`` (default: the working directory). The config is as the file wrote it.
    A ``.json`` file (a workdir's ``config.json``) is read as the config itself."""
    path_text, _, arg = os.fspath(spec).partition(":")
    path = pathlib.Path(root or ".") / path_text
    if not path.is_file():
        raise ValueError(f"config file {os.fspath(path)!r} does not exist")
    if path.suffix == ".json":
        if arg:
            raise ValueError(f"--config={os.fspath(spec)}: a .json config takes no arguments; drop ':{arg}'")
        return ml_collections.ConfigDict(json.loads(path.read_text()))
    module_spec = importlib.util.spec_from_file_location(f"sparse_ae_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(parse_arg(arg, **getattr(module, "ARGS", {})))
    if not isinstance(config, ml_collections.ConfigDict):
        raise TypeError(f"get_config of {os.fspath(path)!r} returned {type(config).__name__}, not a ConfigDict")
    return config


def complete(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of ``config`` with every field of the framework's sections (``task``, ``seed``,
    ``runlocal``, ``data``, ``optim``, ``train``, ``eval``, ``mesh``; an empty ``model``) that it
    left out at its default; other sections as they are. Raises naming ``config.<section>.<field>``
    for an unknown or ill-typed field."""
    result = ml_collections.ConfigDict(config.to_dict())
    for key, (kind, default) in TOP_LEVEL.items():
        result[key] = sections.check_value(f"config.{key}", result.get(key, default), kind)
    for name, cls in DEFAULTS.items():
        result[name] = sections.complete(result.get(name, {}), cls, f"config.{name}")
    if "model" not in result:
        result.model = ml_collections.ConfigDict()
    return result


def base_config() -> ml_collections.ConfigDict:
    """Every field the framework reads, at its default (a config built in code starts here)."""
    return complete(ml_collections.ConfigDict())


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


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError/TypeError naming the field for anything wrong in the framework's own
    sections of ``config`` (field names and types, ``data``, ``optim``, ``train``, ``eval``,
    ``mesh`` numbers). What needs the layers above (evaluator names, the mesh over devices, the
    task's ``model``) is checked by :func:`sparse_ae.train.validation.validate_run`, which calls
    this first.
    """
    for key, (kind, _) in TOP_LEVEL.items():
        if key not in config:
            raise ValueError(f"config.{key} is missing (load the config with sparse_ae.train.config_files)")
        sections.check_value(f"config.{key}", config[key], kind)
    for name in ("data", "model"):
        if name not in config:
            raise ValueError(f"config.{name} is missing (load the config with sparse_ae.train.config_files)")
    train, evaluation, mesh = (sections.parse_section(config, name, cls) for name, cls in SECTIONS.items())
    optim = optim_lib.validate_optim(config)
    data_lib.validate_config(config.data)
    _at_least(train, "config.train", ("num_steps", "log_every", "keep_checkpoints"), 1)
    _at_least(train, "config.train", ("eval_every", "checkpoint_every"), 0)
    _at_least(evaluation, "config.eval", ("num_batches", "batch_size", "num_images"), 0)
    _at_least(mesh, "config.mesh", ("fsdp_min_size",), 0)
    if optim.warmup_steps >= train.num_steps:
        raise ValueError(f"config.optim.warmup_steps={optim.warmup_steps} must be < "
                         f"config.train.num_steps={train.num_steps}")
    if not evaluation.splits or not all(evaluation.splits):
        raise ValueError(f"config.eval.splits={config.eval.splits!r} must be a non-empty list of split names")
    if train.keep_best:
        metric, _ = parse_keep_best(train.keep_best)
        split = metric.partition("/")[0]
        if split not in evaluation.splits:
            raise ValueError(f"config.train.keep_best={train.keep_best!r}: split {split!r} is not evaluated; "
                             f"config.eval.splits={tuple(evaluation.splits)}")
        if not train.eval_every:
            raise ValueError(f"config.train.keep_best={train.keep_best!r} needs periodic evaluations: set "
                             "config.train.eval_every > 0 (0 evaluates only at the end)")


MAXIMIZE_PREFIX = "max:"


def parse_keep_best(text: str) -> tuple[str, bool]:
    """``config.train.keep_best`` as ``(metric, maximize)``: "test/mse" → ("test/mse", False),
    "max:test/psnr" → ("test/psnr", True). ValueError naming the field unless the metric reads
    "<split>/<name>"."""
    maximize = text.startswith(MAXIMIZE_PREFIX)
    metric = text[len(MAXIMIZE_PREFIX):] if maximize else text
    split, _, name = metric.partition("/")
    if not split or not name or ":" in metric:
        raise ValueError(f"config.train.keep_best={text!r} must name an evaluation scalar \"<split>/<name>\" "
                         f"(lower is better), optionally prefixed {MAXIMIZE_PREFIX!r} (higher is better), "
                         "e.g. 'test/mse' or 'max:test/psnr'")
    return metric, maximize


def _at_least(section, field: str, keys: tuple[str, ...], minimum: int) -> None:
    for key in keys:
        if getattr(section, key) < minimum:
            raise ValueError(f"{field}.{key}={getattr(section, key)} must be >= {minimum}")
