"""The one way to import TensorFlow: CPU only, so it never takes accelerator memory from JAX.

TensorFlow is used for clu's TensorBoard writer and TFDS builders only.
"""

from __future__ import annotations

import contextlib
import functools
import os

from absl import logging

QUIET_ENV = "SPARSE_AE_TF_IMPORT_LOG"  # "1": let TensorFlow's import-time C++ log lines through


@contextlib.contextmanager
def _without_native_stderr():
    """Sends what native code writes to the process's stderr (file descriptor 2) to /dev/null.

    TensorFlow's C++ logs its loading notices (oneDNN, CUDA drivers not found, CPU features)
    through absl before logging is initialised, straight to that descriptor, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; Python's own errors are raised, not written, so they still show.
    """
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def import_tensorflow():
    """Imports ``tensorflow`` with its GPUs hidden and its import-time C++ notices dropped
    (``SPARSE_AE_TF_IMPORT_LOG=1`` keeps them); returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    quiet = os.environ.get(QUIET_ENV, "") in ("", "0")
    with _without_native_stderr() if quiet else contextlib.nullcontext():
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError as err:  # TF's devices were initialised before this call
            logging.warning("could not hide GPUs from TensorFlow: %s", err)
    return tf
