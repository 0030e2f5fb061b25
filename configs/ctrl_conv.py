"""The original CTRL (DCGAN-style conv encoder/decoder) with the same objective and data as
``configs/ctrl_csc.py``, for side-by-side comparison; same arguments.

    python -m sparse_ae.main --config=configs/ctrl_conv.py --workdir=/tmp/ctrl_conv
"""

import importlib.util
import pathlib

_SPEC = importlib.util.spec_from_file_location("ctrl_csc_config", pathlib.Path(__file__).with_name("ctrl_csc.py"))
_CSC = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CSC)


ARGS = _CSC.ARGS


def get_config(args):
    return _CSC.build(args, "conv")
