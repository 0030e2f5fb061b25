"""The original CTRL (DCGAN-style conv encoder/decoder) with the same objective and data as
``configs/ctrl_csc.py``, for side-by-side comparison; same arguments, plus

  ldr   the official LDR code's choices (``Delay-Xili/LDR``): BatchNorm (batch statistics in
        training, running averages in evaluation), tanh output on images scaled to [−1, 1], N(0, 0.02)
        weights without biases; and its pure game: alternating updates, no pixel terms, no
        augmentation, Adam(1.5e-4, β = (0.5, 0.999)) decayed linearly to 0.

    python -m sparse_ae.main --config=configs/ctrl_conv.py --workdir=/tmp/ctrl_conv
    python -m sparse_ae.main --config=configs/ctrl_conv.py:ldr,steps=300 --workdir=/tmp/ctrl_ldr
"""

import importlib.util
import pathlib

_SPEC = importlib.util.spec_from_file_location("ctrl_csc_config", pathlib.Path(__file__).with_name("ctrl_csc.py"))
_CSC = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CSC)


ARGS = {**_CSC.ARGS, "ldr": False}


def _ldr(config) -> None:
    """LDR's networks and pure game on top of the dataset's settings."""
    config.model.update(norm="batch", output="tanh", init="ldr", pixel_range="symmetric")
    config.objective.update(recon_weight=0.0, encoder_recon_weight=0.0, aug_weight=0.0, update_rule="alternating")
    config.optim.update(name="adam", lr=1.5e-4, b1=0.5, b2=0.999, schedule="linear", warmup_steps=0)
    config.data.random_crop_pad = 0


def get_config(args):
    config = _CSC.build(args, "conv")
    if args.ldr:
        _ldr(config)
    return config
