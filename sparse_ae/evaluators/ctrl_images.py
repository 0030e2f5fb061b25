"""Structure of a CTRL model: mean fraction of non-zero code entries per stage
(``<split>/sparsity/stage<ℓ>``) from ``eval_step`` outputs ``"sparsity/stage<ℓ>"`` (per-example
fractions). The pictures of the representation (atoms, effective atoms, principal directions)
are the ``ctrl`` task's ``images``, drawn by :mod:`sparse_ae.models.ctrl_pictures`.
"""

from __future__ import annotations

import numpy as np

from sparse_ae.evaluators import eval_outputs

SPARSITY_PREFIX = "sparsity/stage"


def evaluate(task, state, datasets, config):
    """Mean per-stage code sparsity per split."""
    del config
    scalars = {}
    for split, make_iterator in datasets.items():
        sums: dict[str, list[np.ndarray]] = {}
        for _, outputs in eval_outputs(task, state, make_iterator):
            for key, value in outputs.items():
                if key.startswith(SPARSITY_PREFIX):
                    sums.setdefault(key, []).append(value)
        scalars.update({f"{split}/{key}": float(np.mean(np.concatenate(v))) for key, v in sums.items()})
    return scalars, {}
