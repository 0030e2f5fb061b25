"""One parser for every config section: a ConfigDict checked against a frozen dataclass.

A section (``config.data``, ``config.model``, ...) is declared as a frozen dataclass whose
fields carry a type, a default (or none: the field is required) and a comment. :func:`parse`
turns the ConfigDict into that dataclass and names any problem as ``config.<section>.<field>``:
an unknown field (with the nearest known name), a missing required one, a wrong type, or a
value outside a ``Literal[...]`` choice. An int is accepted where a float is declared.
:func:`complete` fills a section that a config file wrote in part with the dataclass's defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import ml_collections

T = TypeVar("T")


def _as_dict(value: Any, where: str) -> dict:
    if hasattr(value, "to_dict"):  # ConfigDict, FrozenConfigDict
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"{where} must be a mapping or ConfigDict, got {type(value).__name__}")


def _unknown_message(where: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {where}.{close[0]}? " if close else ""
    return f"unknown field {where}.{name}; {hint}known fields: {', '.join(known)}"


def check_value(where: str, value: Any, kind: Any) -> Any:
    """``value`` checked against the annotation ``kind`` (an int becomes a float where declared)."""
    if dataclasses.is_dataclass(kind):
        return parse(value, kind, where)
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise ValueError(f"{where}={value!r} is not one of {choices}")
        return value
    if origin is tuple or kind is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}={value!r} has type {type(value).__name__}; expected a sequence")
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(f"{where}[{i}]", item, args[0]) for i, item in enumerate(value))
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{where}={value!r} has type {type(value).__name__}; expected {kind.__name__}")
    return value


def parse(values: Any, cls: type[T], where: str) -> T:
    """``values`` (ConfigDict or mapping) as a ``cls`` instance; ``where`` is e.g. ``"config.data"``.

    Missing fields with a default take it; unknown fields, missing required fields, wrong types
    and values outside a ``Literal`` raise ValueError/TypeError naming ``where.<field>``.
    """
    if isinstance(values, cls):
        return values
    values = _as_dict(values, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for name in values:
        if name not in fields:
            raise ValueError(_unknown_message(where, name, list(fields)))
    kwargs = {}
    for name, field in fields.items():
        if name in values:
            kwargs[name] = check_value(f"{where}.{name}", values[name], hints[name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}.{name} is missing; set it in the config file")
    return cls(**kwargs)


def parse_section(config: Any, name: str, cls: type[T]) -> T:
    """``config.<name>`` parsed as ``cls``, every field present (a task reads its section as the
    config file wrote it, so a field left out is an error, not a silent default); ValueError when
    the section or one of its fields is absent."""
    if name not in config:
        raise ValueError(f"config.{name} is missing; declare it with the fields of {cls.__qualname__}")
    parsed = parse(config[name], cls, f"config.{name}")  # first: a typo also shows as a missing field
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in config[name]]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(f'config.{name}.{k}' for k in missing)}; "
                         f"the defaults are those of {cls.__qualname__}")
    return parsed


def complete(values: Any, cls: type, where: str) -> ml_collections.ConfigDict:
    """``values`` (a section as a config file wrote it, possibly in part) with every other field
    at ``cls``'s default, checked by :func:`parse`, as a ConfigDict."""
    return ml_collections.ConfigDict(dataclasses.asdict(parse(values, cls, where)))
