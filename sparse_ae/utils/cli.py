"""How the entry points end on a mistake: one line on stderr, ``error: …``, exit status 2.

A mistake is an exception of :data:`USER_ERRORS` that the project raised itself (the innermost frame
of its traceback lies in the ``sparse_ae`` package): a wrong config field or argument, a missing file
or dataset, a refused resume, NaN in a batch. Anything else (a bug here, a failure inside a library)
keeps its traceback, as does every mistake under ``--verbose`` or ``SPARSE_AE_VERBOSE=1``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

from absl import app, flags

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FloatingPointError, RuntimeError, app.UsageError)
VERBOSE_ENV = "SPARSE_AE_VERBOSE"
EXIT_MISTAKE = 2
EXIT_INTERRUPTED = 130   # the shell's code for Ctrl-C
_PACKAGE = pathlib.Path(__file__).resolve().parents[1]

_VERBOSE = flags.DEFINE_bool("verbose", False, f"on a mistake, show the traceback (or set {VERBOSE_ENV}=1)")


def verbose() -> bool:
    """Whether tracebacks of mistakes are wanted (``--verbose`` once parsed, or the environment)."""
    from_flag = flags.FLAGS.is_parsed() and _VERBOSE.value
    return bool(from_flag or os.environ.get(VERBOSE_ENV, "") not in ("", "0"))


def raised_by_project(err: BaseException) -> bool:
    """True when the innermost frame of ``err``'s traceback is a file of the ``sparse_ae`` package."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return pathlib.Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


def fail(message: str) -> NoReturn:
    """Prints ``error: <message>`` as one line on stderr and exits with :data:`EXIT_MISTAKE`."""
    text = "; ".join(line.strip() for line in str(message).splitlines() if line.strip())
    print(f"error: {text}", file=sys.stderr, flush=True)
    sys.exit(EXIT_MISTAKE)


@contextlib.contextmanager
def mistakes_in_one_line() -> Iterator[None]:
    """Turns the project's own :data:`USER_ERRORS` raised inside into :func:`fail` (see the module)."""
    try:
        yield
    except USER_ERRORS as err:
        if verbose() or not (isinstance(err, app.UsageError) or raised_by_project(err)):
            raise
        fail(str(err))


# Python's own words for a value that does not convert, and what the field wanted.
_CONVERSION_ERRORS = ((r"invalid literal for int\(\) with base 10: (.*)", "an integer"),
                      (r"could not convert string to float: (.*)", "a number"))


def _plain_conversion_error(text: str) -> str:
    """``flag --x=abc: invalid literal for int() ...: 'abc'`` -> ``flag --x=abc: expected an integer, got 'abc'``."""
    for pattern, wanted in _CONVERSION_ERRORS:
        match = re.search(pattern, text)
        if match:
            return f"{text[:match.start()]}expected {wanted}, got {match.group(1)}"
    return text


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with a bad or missing flag reported by :func:`fail`."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        fail(_plain_conversion_error(str(err)))
    except (AttributeError, KeyError) as err:   # ml_collections: an override of a field the config lacks
        text = str(err.args[0] if err.args else err)
        field = re.search(r"[\w.]+", text).group(0)
        suggestion = re.search(r"Did you mean [^?]*\?", text)
        named = [arg.partition("=")[0] for arg in argv[1:] if f".{field}" in arg.partition("=")[0]]
        fail(f"{' '.join(named) or 'an override'}: the config has no field {field!r}"
             f"{'; ' + suggestion.group(0) if suggestion else ''} (the config file, or a run's config.json, "
             f"lists the fields)")


def run(main: Callable[[list[str]], None], flags_parser: Callable[[list[str]], list[str]] = parse_flags) -> None:
    """``absl.app.run(main)`` with mistakes, in the flags or in ``main``, reported in one line, and
    a Ctrl-C that ``main`` did not handle (the training loop saves on the first) ending quietly."""

    def checked(argv: list[str]) -> None:
        try:
            with mistakes_in_one_line():
                main(argv)
        except KeyboardInterrupt:
            if verbose():
                raise
            print("interrupted", file=sys.stderr, flush=True)
            sys.exit(EXIT_INTERRUPTED)

    app.run(checked, flags_parser=flags_parser)
