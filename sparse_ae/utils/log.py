"""Console logging: keep the training log readable."""

from __future__ import annotations

import logging

from absl import logging as absl_logging

# Libraries whose INFO lines (one per checkpoint file and thread) drown the training log;
# their warnings and errors still show.
QUIET_LIBRARIES = ("orbax",)


class _QuietLibraries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not any(f"/{lib}/" in record.pathname for lib in QUIET_LIBRARIES)


def quiet_libraries() -> None:
    """Drops INFO records of :data:`QUIET_LIBRARIES` from the absl (console) handler."""
    absl_logging.get_absl_handler().addFilter(_QuietLibraries())
