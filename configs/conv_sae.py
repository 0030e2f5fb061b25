"""Convolutional sparse autoencoder (task ``conv_sae``).

    python -m sparse_ae.main --config=configs/conv_sae.py:dataset=digits,code=l1 --workdir=/tmp/csae_digits
    python -m sparse_ae.main --config=configs/conv_sae.py:dataset=natural_crops,corruption=noise --workdir=/tmp/csae_dn

Arguments: dataset = digits (16 × 16, labels: linear probe of the code on the test split) |
natural_crops (32 × 32 gray crops of the scikit-image / scikit-learn photos, for denoising and
inpainting); code = l1 (ReLU code + λ·mean|z|, λ = ``lam``) | topk (ReLU code, keep the ``k``
largest) | dense (a plain autoencoder of the same size: linear code, no sparsity);
corruption = none | noise (σ = 25/255) | mask (50 % of the pixels dropped); seed; steps; runlocal.
"""

from __future__ import annotations

from sparse_ae import config as config_lib
from sparse_ae.train.tasks import conv_sae

CODES = ("l1", "topk", "dense")


def get_config(arg=None):
    args = config_lib.parse_arg(arg, dataset="digits", code="l1", corruption="", lam=1e-3, k=0, seed=0, steps=0,
                                runlocal=False)
    if args.code not in CODES:
        raise ValueError(f"config argument code={args.code!r} is not one of {CODES}")
    config = config_lib.base_config()
    config.task = "conv_sae"
    config.seed = args.seed
    config.model = conv_sae.model_config()
    config.objective = conv_sae.objective_config()
    config.optim.update(name="adam", lr=1e-3)
    if args.dataset == "digits":
        config.data.update(name="digits", image_size=16, channels=1, batch_size=64)
        config.model.update(widths=(16, 32), code_dim=128)
        config.train.update(num_steps=2000, log_every=200, checkpoint_every=0)
        config.eval.update(evaluators=("linear_probe", "reconstruction", "code_sparsity"), splits=("train", "test"),
                           batch_size=250)
        corruption = args.corruption or "none"
    elif args.dataset == "natural_crops":
        config.data.update(name="natural_crops", image_size=32, channels=1, batch_size=64, num_eval_examples=512)
        config.model.update(widths=(32, 64), code_dim=256)
        config.train.update(num_steps=4000, log_every=250, checkpoint_every=0)
        config.eval.update(evaluators=("reconstruction", "code_sparsity"), splits=("test",), batch_size=256)
        corruption = args.corruption or "noise"
    else:
        raise ValueError(f"config argument dataset={args.dataset!r} is not one of ('digits', 'natural_crops')")
    config.objective.corruption = corruption
    k = args.k or config.model.code_dim // 8
    config.model.update({"l1": dict(sparsity=f"l1:{args.lam:g}", code_activation="relu"),
                         "topk": dict(sparsity=f"l0:{k}", code_activation="relu"),
                         "dense": dict(sparsity="none", code_activation="linear")}[args.code])
    if args.runlocal:
        config = config_lib.apply_runlocal(config)
        config.data.image_size = 16
        config.model.update(widths=(4, 8), code_dim=16)
        if args.code == "topk":
            config.model.sparsity = "l0:4"
        config.data.num_eval_examples = 16
        config.eval.update(batch_size=8, num_batches=2)
    if args.steps:
        config.train.num_steps = args.steps
    return config
