"""The DCEA authors' published networks (Tolooshams et al., code ``btolooshams/dea``) as
:class:`sparse_ae.models.dcea.DCEA` parameters.

A network is two files side by side: ``<name>.npz``, the PyTorch ``state_dict`` arrays under the
authors' names, and ``<name>.json``, their hyper-parameters (``class``, ``peak``, ``T``,
``stride``, ``dictionary_dim``, ``num_conv``, ``twosided``, ``single_bias``,
``model_distribution``, ``nonlin``).

Tensor mapping. Torch's ``conv_transpose2d(x, W, stride)`` with W (M, C, k, k) is this package's
synthesis with kernel ``W.transpose(2, 3, 0, 1)`` (kh, kw, M, C) and ``conv2d(r, W, stride)`` its
adjoint (both index the kernel from the code position, no flip). The authors' step is folded into
the weights (α = 1) and their threshold is ``relu(x − b)``, the non-negative soft threshold.

- ``DEA2Dtied`` (DCEA-C): ``H`` -> ``kernel``.
- ``DEA2Dfree`` (DCEA-UC): ``We`` (analysis in the loop) -> ``encoder``, ``H`` (synthesis in the
  loop) -> ``loop``, ``Wd`` (the final synthesis) -> ``decoder``.
- ``b`` (1, M, 1, 1) -> ``bias`` (M,).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

CLASSES = {"DEA2Dtied": ("H",), "DEA2Dfree": ("We", "H", "Wd")}
PARAM_NAMES = {"DEA2Dtied": ("kernel",), "DEA2Dfree": ("encoder", "loop", "decoder")}
HYPERPARAMETERS = ("class", "peak", "T", "stride", "dictionary_dim", "num_conv", "twosided", "single_bias",
                   "model_distribution", "nonlin")


def read_hyperparameters(npz_path: str | os.PathLike) -> dict[str, Any]:
    """The ``.json`` beside ``npz_path``; ValueError naming the file and what is missing or wrong."""
    path = pathlib.Path(npz_path).with_suffix(".json")
    if not path.is_file():
        raise ValueError(f"{os.fspath(path)!r} not found: an official DCEA network is <name>.npz with its "
                         "hyper-parameters in <name>.json beside it")
    hyp = json.loads(path.read_text())
    missing = [k for k in HYPERPARAMETERS if k not in hyp]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} lacks the hyper-parameter(s) {missing}")
    if hyp["class"] not in CLASSES:
        raise ValueError(f"{os.fspath(path)!r}: class {hyp['class']!r} is not one of {sorted(CLASSES)} "
                         "(the 2-D Poisson networks)")
    if not hyp["single_bias"]:
        raise ValueError(f"{os.fspath(path)!r}: single_bias=false (one bias per iteration) is not supported; "
                         "DCEA here learns one bias per filter")
    if not str(hyp["nonlin"]).startswith("ELU") or hyp["model_distribution"] != "poisson":
        raise ValueError(f"{os.fspath(path)!r}: only Poisson networks with an ELU residual are supported, got "
                         f"model_distribution={hyp['model_distribution']!r}, nonlin={hyp['nonlin']!r}")
    return hyp


def model_fields(hyp: dict[str, Any]) -> dict[str, Any]:
    """The ``config.model`` fields (task ``dcea``) of the authors' network ``hyp``."""
    peak = float(hyp["peak"])
    return dict(tied=hyp["class"] == "DEA2Dtied", peak=peak, residual_elu=peak, elu_form="authors",
                layout="valid", family="poisson", kernel_size=int(hyp["dictionary_dim"]),
                num_filters=int(hyp["num_conv"]), channels=1, stride=int(hyp["stride"]),
                num_iters=int(hyp["T"]), step=1.0, nonneg=not hyp["twosided"], accelerated=False,
                learn_bias=True, normalize_atoms=False, mu=0.0, reweight_passes=0)


def load(npz_path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config.model fields, params)`` of an official network; params float32 as
    :class:`DCEA` holds them. ValueError naming the tensor and the file for a missing tensor or
    a wrong shape."""
    path = pathlib.Path(npz_path)
    if not path.is_file():
        raise ValueError(f"{os.fspath(path)!r} not found (expected an official DCEA .npz)")
    hyp = read_hyperparameters(path)
    k, m = int(hyp["dictionary_dim"]), int(hyp["num_conv"])
    expected = {name: (m, 1, k, k) for name in CLASSES[hyp["class"]]} | {"b": (1, m, 1, 1)}
    try:
        with np.load(path) as saved:
            tensors = {name: np.asarray(saved[name], np.float32) for name in expected if name in saved}
    except (OSError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)!r} cannot be read as an .npz archive: {err}") from err
    for name, shape in expected.items():
        if name not in tensors:
            raise ValueError(f"tensor {name!r} is missing from {os.fspath(path)!r}; a {hyp['class']} network "
                             f"has {sorted(expected)}")
        if tensors[name].shape != shape:
            raise ValueError(f"tensor {name!r} in {os.fspath(path)!r} has shape {tensors[name].shape}, expected "
                             f"{shape} (num_conv={m}, dictionary_dim={k} in its .json)")
    params = {ours: tensors[theirs].transpose(2, 3, 0, 1)
              for ours, theirs in zip(PARAM_NAMES[hyp["class"]], CLASSES[hyp["class"]])}
    params["bias"] = tensors["b"].reshape(m)
    return model_fields(hyp), params
