"""Held-out likelihood: the mean of ``eval_step``'s per-example ``"nll"`` (B,), the negative
log-likelihood of each example per observation under the task's model.

Scalars per split: ``<split>/nll`` (mean over examples). A measure of fit that needs no ground
truth, e.g. to choose among restarts of a dictionary learner.
"""

from __future__ import annotations

import numpy as np

from sparse_ae.evaluators import eval_outputs


def evaluate(task, state, datasets, config):
    """``<split>/nll`` per split; no images."""
    scalars = {}
    for split, make_iterator in datasets.items():
        values = []
        for _, outputs in eval_outputs(task, state, make_iterator):
            if "nll" not in outputs:
                raise ValueError(f"evaluator 'likelihood' needs eval_step to return 'nll'; task {config.task!r} "
                                 f"returned {sorted(outputs)}")
            values.append(outputs["nll"])
        if not values:
            raise ValueError(f"split {split!r} gave no evaluation examples")
        scalars[f"{split}/nll"] = float(np.mean(np.concatenate(values)))
    return scalars, {}
