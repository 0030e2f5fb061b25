"""Convolutional sparse autoencoder (task ``conv_sae``).

    python -m sparse_ae.main --config=configs/conv_sae.py:dataset=digits,code=l1 --workdir=/tmp/csae_digits
    python -m sparse_ae.main --config=configs/conv_sae.py:dataset=natural_crops,corruption=noise --workdir=/tmp/csae_dn

Arguments: dataset = digits (16 × 16, labels: linear probe of the code on the test split) |
natural_crops (32 × 32 gray crops of the scikit-image / scikit-learn photos, for denoising,
inpainting and super-resolution); code = l1 (ReLU code + λ·mean|z|, λ = ``lam``) | topk (ReLU
code, keep the ``k`` largest) | dense (a plain autoencoder of the same size: linear code, no
sparsity); corruption = none | noise (σ = 25/255) | mask (50 % of the pixels dropped) | sr
(super-resolution ×2: 2 × 2 box average, bicubic upsampling back); seed; steps; runlocal.
Fields not set here are at the defaults of ``sparse_ae.train.tasks.conv_sae`` (``ModelConfig``,
``ObjectiveConfig``) and the framework's sections.
"""

import ml_collections

CODES = ("l1", "topk", "dense")
ARGS = dict(dataset="digits", code="l1", corruption="", lam=1e-3, k=0, seed=0, steps=0, runlocal=False)


def get_config(args):
    if args.code not in CODES:
        raise ValueError(f"config argument code={args.code!r} is not one of {CODES}")
    config = ml_collections.ConfigDict()
    config.task = "conv_sae"
    config.seed = args.seed
    config.model = dict()
    config.objective = dict()
    config.optim = dict(name="adam", lr=1e-3)
    if args.dataset == "digits":
        config.data = dict(name="digits", image_size=16, channels=1, batch_size=64)
        config.model.update(widths=(16, 32), code_dim=128)
        config.train = dict(num_steps=2000, log_every=200, checkpoint_every=0)
        config.eval = dict(evaluators=("linear_probe", "reconstruction", "code_sparsity"), splits=("train", "test"),
                           batch_size=250)
        corruption = args.corruption or "none"
    elif args.dataset == "natural_crops":
        config.data = dict(name="natural_crops", image_size=32, channels=1, batch_size=64, num_eval_examples=512)
        config.model.update(widths=(32, 64), code_dim=256)
        config.train = dict(num_steps=4000, log_every=250, checkpoint_every=0)
        config.eval = dict(evaluators=("reconstruction", "code_sparsity"), splits=("test",), batch_size=256)
        corruption = args.corruption or "noise"
    else:
        raise ValueError(f"config argument dataset={args.dataset!r} is not one of ('digits', 'natural_crops')")
    config.objective.corruption = corruption
    k = args.k or config.model.code_dim // 8
    config.model.update({"l1": dict(sparsity=f"l1:{args.lam:g}", code_activation="relu"),
                         "topk": dict(sparsity=f"l0:{k}", code_activation="relu"),
                         "dense": dict(sparsity="none", code_activation="linear")}[args.code])
    if args.runlocal:
        config.runlocal = True
        config.data.update(image_size=16, batch_size=8, num_eval_examples=16)
        config.model.update(widths=(4, 8), code_dim=16)
        if args.code == "topk":
            config.model.sparsity = "l0:4"
        config.train.update(num_steps=20, log_every=5, eval_every=0, checkpoint_every=10)
        config.eval.update(batch_size=8, num_batches=2, num_images=8)
    if args.steps:
        config.train.num_steps = args.steps
    return config
