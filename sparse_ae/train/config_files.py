"""Experiment configs as the entry points read them: a config file's ``get_config(args)``, with every
field that the file left out at its default, then the command line's ``--config.a.b=v``.

The defaults come from the layer that reads each section: the framework's sections from
:func:`sparse_ae.config.complete`, the task's own (``model``, ``objective``, ...) from the task
module's optional ``config_sections(config) -> {name: dataclass}``, and the section of each
evaluator that ``config.eval.evaluators`` names or that the file declares (``config.<evaluator>``)
from the evaluator's optional ``default_config()``. A completed config is what ``config.json`` in a
workdir holds, so every field can be overridden and every default is on record.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags

from sparse_ae import config as config_lib
from sparse_ae import evaluators
from sparse_ae.train import task as task_lib
from sparse_ae.utils import sections

CONFIG_FILE = "config.json"  # a workdir's completed config, written by training and read by evaluate

# What a resumed run may change: its length and cadence, its evaluation, and its placement.
RESUMABLE_FIELDS = ("train.num_steps", "train.log_every", "train.checkpoint_every", "train.eval_every",
                    "train.keep_checkpoints")
RESUMABLE_SECTIONS = ("eval", "mesh")


def complete(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of ``config`` with every section the run reads filled in (see the module docstring);
    raises naming ``config.<section>.<field>`` for an unknown or ill-typed field."""
    config = config_lib.complete(config)
    task_sections = getattr(task_lib.task_module(config.task), "config_sections", None)
    for name, cls in (task_sections(config) if task_sections else {}).items():
        config[name] = sections.complete(config.get(name, {}), cls, f"config.{name}")
    named = [*config.eval.evaluators, *(key for key in config if key in evaluators.available_evaluators())]
    for name in dict.fromkeys(named):
        defaults = getattr(evaluators.get_evaluator(name), "default_config", None)
        if defaults is not None:
            config[name] = defaults(**config.get(name, {}))
    return config


def load(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> ml_collections.ConfigDict:
    """The completed config of ``spec`` = ``"path/to/x.py[:arg]"`` (``root``: the folder a relative
    path is read from)."""
    return complete(config_lib.load_config_file(spec, root))


def save(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> pathlib.Path:
    """Writes ``config`` (completed) as ``workdir/config.json``, whole or not at all; returns its path."""
    path = pathlib.Path(workdir) / CONFIG_FILE
    scratch = path.with_name(f".{CONFIG_FILE}.tmp")
    scratch.write_text(config.to_json_best_effort(indent=2) + "\n")
    return scratch.replace(path)


def _flatten(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """``{"section.field": value}`` of ``config`` as JSON holds it (tuples as lists)."""

    def walk(node: dict, prefix: str):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    return dict(walk(json.loads(config.to_json_best_effort()), ""))


def _may_change_on_resume(key: str) -> bool:
    section = key.partition(".")[0]
    return key in RESUMABLE_FIELDS or section in RESUMABLE_SECTIONS or section in evaluators.available_evaluators()


def resume_changes(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict) -> list[str]:
    """``"config.a.b: <saved> -> <now>"`` for each field, other than those a resumed run may change
    (:data:`RESUMABLE_FIELDS`, :data:`RESUMABLE_SECTIONS` and evaluator sections), that differs
    between ``saved`` and ``config`` (both completed)."""
    before, after = _flatten(saved), _flatten(config)
    missing = "(absent)"
    return [f"config.{key}: {before.get(key, missing)!r} -> {after.get(key, missing)!r}"
            for key in sorted(before.keys() | after.keys())
            if before.get(key, missing) != after.get(key, missing) and not _may_change_on_resume(key)]


class _ConfigFileParser(flags.ArgumentParser):
    """Reads ``--config=path[:arg]`` as :func:`sparse_ae.config.load_config_file` does, then ``fill``."""

    def __init__(self, fill: Callable[[ml_collections.ConfigDict], ml_collections.ConfigDict]):
        self._fill = fill

    def parse(self, argument):
        config = self._fill(config_lib.load_config_file(argument))
        config.lock()
        return config

    def flag_type(self) -> str:
        return "config object"


def define_flag(name: str, help_string: str,
                fill: Callable[[ml_collections.ConfigDict], ml_collections.ConfigDict] = complete,
                flag_values: flags.FlagValues = flags.FLAGS, **kwargs):
    """``--<name>=configs/x.py[:arg]`` read by :func:`sparse_ae.config.load_config_file` and ``fill``
    (default :func:`complete`), then ``--<name>.a.b=v`` overrides of any field (ml_collections'
    ``config_flags``, which ``kwargs`` go to; an unknown field is an error). Returns the flag holder."""
    holder = config_flags.DEFINE_config_file(name, None, help_string, flag_values=flag_values, **kwargs)
    flag_values[name].parser = _ConfigFileParser(fill)
    return holder
