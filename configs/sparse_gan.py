"""DCGAN with sparsity-regularised generator layers (task ``sparse_gan``).

    python -m sparse_ae.main --config=configs/sparse_gan.py:reg=l0inf --workdir=DIR

Arguments: reg = none | l1 | l0 | l0inf | ml; disc = dcgan | sngan (``config.model.discriminator``:
plain, or every weight spectrally normalised as in SNGAN); dataset = digits (16 × 16, offline;
Fréchet distance in the digits classifier's features) | cifar10 (32 × 32 RGB via TFDS; FID with the
InceptionV3 weights in ``config.fid.weights``); loss = nonsaturating | hinge | wgan_gp;
keep = percent kept by l0 / l0inf (default 25); l1 = λ of the l1 penalty; fraction = share of
the training set used (the paper's low-data regime: 0.1, 0.2; the same subset for every seed,
``config.data.train_fraction``); seed; steps; runlocal.

The digits classifier is by default the one the ``frechet_digits`` evaluator trains on its first
use (about 20 s) and caches (in ``$SPARSE_AE_CACHE``, else ``~/.cache/sparse_ae``);
``--config.frechet_digits.classifier=CLASSIFIER_DIR`` reads one made by
``python -m sparse_ae.tools.train_digits_classifier --out=CLASSIFIER_DIR`` instead.

Regularisers act on the generator's hidden layers h_1 … h_n (n = 2 at 16 × 16, 3 at 32 × 32):
l1 / l0 / l0inf on the last one (the representation the output dictionary synthesises from),
ml = l0inf on the last two.
"""

import ml_collections

REGS = ("none", "l1", "l0", "l0inf", "ml")
# dataset -> (source, image size, channels, generator hidden layers: 4×4 doubled to the image size)
DATASETS = {"digits": ("digits", 16, 1, 2), "cifar10": ("tfds:cifar10", 32, 3, 3)}
ARGS = dict(reg="none", disc="dcgan", dataset="digits", loss="nonsaturating", keep=25.0, l1=0.1, fraction=1.0,
            seed=0, steps=0, runlocal=False)


def sparsity_specs(reg: str, num_layers: int, keep: float, l1: float) -> tuple[str, ...]:
    """One spec per generator hidden layer for the named regulariser."""
    if reg not in REGS:
        raise ValueError(f"config argument reg={reg!r} is not one of {REGS}")
    specs = ["none"] * num_layers
    last = {"none": "none", "l1": f"l1:{l1:g}", "l0": f"l0:{keep:g}%", "l0inf": f"l0inf:{keep:g}%",
            "ml": f"l0inf:{keep:g}%"}[reg]
    specs[-1] = last
    if reg == "ml":
        specs[-2] = last
    return tuple(specs)


def get_config(args):
    if args.dataset not in DATASETS:
        raise ValueError(f"config argument dataset={args.dataset!r} is not one of {tuple(DATASETS)}")
    name, size, channels, hidden_layers = DATASETS[args.dataset]
    config = ml_collections.ConfigDict()
    config.task = "sparse_gan"
    config.seed = args.seed
    config.data = dict(name=name, image_size=size, channels=channels, batch_size=64, train_fraction=args.fraction)
    config.model = dict(discriminator=args.disc)
    config.objective = dict(loss=args.loss)
    if args.loss == "wgan_gp":
        config.objective.disc_steps = 5
    config.optim = dict(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    config.optim_disc = dict(name="adam", lr=2e-4, b1=0.5, b2=0.999)
    config.frechet_digits = dict(classifier="")
    config.fid = dict(weights="")
    if args.dataset == "digits":
        config.train = dict(num_steps=3000, log_every=100, checkpoint_every=1000)
        config.eval = dict(evaluators=("frechet_digits", "code_sparsity"), splits=("train",), batch_size=250)
    else:
        config.data.update(fit="resize", random_flip=True)
        config.model.update(g_width=64, d_width=64)
        config.train = dict(num_steps=100_000, log_every=500, eval_every=10_000, checkpoint_every=5000)
        config.eval = dict(evaluators=("fid", "code_sparsity"), splits=("train",), num_batches=40, batch_size=250)
    if args.runlocal:
        config.runlocal = True
        config.data.batch_size = 8
        config.model.update(latent_dim=8, g_width=4, d_width=4)
        config.train.update(num_steps=20, log_every=5, eval_every=0, checkpoint_every=10)
        config.eval.update(batch_size=8, num_batches=2, num_images=8)
    config.model.sparsity = sparsity_specs(args.reg, hidden_layers, args.keep, args.l1)
    if args.steps:
        config.train.num_steps = args.steps
    return config
