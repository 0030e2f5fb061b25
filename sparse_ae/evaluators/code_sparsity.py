"""Statistics of the codes ``eval_step`` returns under "code" (B, ..., K) and, for VQ, "indices".

Scalars per split: ``<split>/code_hoyer`` (mean Hoyer sparsity of the code vectors along the last
axis: 1 = one non-zero, 0 = all entries of equal magnitude), ``<split>/code_nonzero`` (fraction of
entries with |z| > 0); with "indices" (VQ): ``<split>/codebook_usage`` (fraction of the K codewords
used over the split; K = ``config.model.num_atoms``) and ``<split>/codebook_perplexity``
(exp of the entropy of codeword frequencies).
"""

from __future__ import annotations

import numpy as np

from sparse_ae.evaluators import eval_outputs
from sparse_ae.sparse_coding import metrics


def codebook_usage(indices: np.ndarray, num_codes: int) -> tuple[float, float]:
    """(fraction of the ``num_codes`` codewords used, perplexity) of integer ``indices``."""
    counts = np.bincount(np.asarray(indices).reshape(-1), minlength=num_codes)
    p = counts[counts > 0] / counts.sum()
    return float(np.mean(counts > 0)), float(np.exp(-np.sum(p * np.log(p))))


def evaluate(task, state, datasets, config):
    scalars = {}
    for split, make_iterator in datasets.items():
        hoyer, nonzero, indices = [], [], []
        for _, outputs in eval_outputs(task, state, make_iterator):
            if "code" not in outputs:
                raise ValueError(f"evaluator 'code_sparsity' needs eval_step to return 'code'; task "
                                 f"{config.task!r} returned {sorted(outputs)}")
            code = outputs["code"]
            hoyer.append(np.asarray(metrics.hoyer_sparsity(code)).reshape(-1))
            nonzero.append(np.asarray(np.abs(code) > 0).reshape(len(code), -1).mean(axis=1))
            if "indices" in outputs:
                indices.append(outputs["indices"].reshape(-1))
        scalars[f"{split}/code_hoyer"] = float(np.mean(np.concatenate(hoyer)))
        scalars[f"{split}/code_nonzero"] = float(np.mean(np.concatenate(nonzero)))
        if indices:
            usage, perplexity = codebook_usage(np.concatenate(indices), config.model.num_atoms)
            scalars[f"{split}/codebook_usage"] = usage
            scalars[f"{split}/codebook_perplexity"] = perplexity
    return scalars, {}
