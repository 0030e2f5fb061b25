"""The one way to import TensorFlow: CPU only, so it never takes accelerator memory from JAX.

TensorFlow is used for clu's TensorBoard writer and TFDS builders only.
"""

from __future__ import annotations

import functools
import os

from absl import logging


@functools.cache
def import_tensorflow():
    """Imports ``tensorflow`` with its GPUs hidden and its C++ INFO lines (the oneDNN notice) off,
    unless ``TF_CPP_MIN_LOG_LEVEL`` says otherwise; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError as err:  # TF's devices were initialised before this call
        logging.warning("could not hide GPUs from TensorFlow: %s", err)
    return tf
