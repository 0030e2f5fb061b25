"""Console logging: keep the training log readable."""

from __future__ import annotations

import logging

from absl import logging as absl_logging

# Sources whose INFO lines drown the training log: orbax (one per checkpoint file and thread) and
# JAX's backend probe ("Unable to initialize backend 'tpu'" on every machine without one). Their
# warnings and errors still show.
QUIET_SOURCES = ("/orbax/", "/jax/_src/xla_bridge.py")


class _QuietLibraries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        path = record.pathname.replace("\\", "/")
        return record.levelno >= logging.WARNING or not any(source in path for source in QUIET_SOURCES)


def quiet_libraries() -> None:
    """Drops INFO records of :data:`QUIET_SOURCES` from the absl (console) handler."""
    absl_logging.get_absl_handler().addFilter(_QuietLibraries())
