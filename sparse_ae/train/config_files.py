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

import os
from collections.abc import Callable

import ml_collections
from absl import flags
from ml_collections import config_flags

from sparse_ae import config as config_lib
from sparse_ae import evaluators
from sparse_ae.train import task as task_lib
from sparse_ae.utils import sections


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
