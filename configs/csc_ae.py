"""One-stage convolutional sparse-coding autoencoder on the embedded digits (the toy task).

    python -m sparse_ae.main --config=configs/csc_ae.py --workdir=/tmp/csc_ae
    python -m sparse_ae.main --config=configs/csc_ae.py:runlocal --workdir=/tmp/csc_ae_smoke

Arguments (``:a=b,flag``): ``runlocal`` (seconds-long smoke run), ``dataset`` (any data source
name, default digits), ``steps`` (override train.num_steps). Fields not set here are at the
defaults of ``sparse_ae.train.tasks.csc_ae.ModelConfig`` and the framework's sections.
"""

import ml_collections

ARGS = dict(runlocal=False, dataset="digits", steps=0)


def get_config(args):
    config = ml_collections.ConfigDict()
    config.task = "csc_ae"
    config.data = dict(name=args.dataset, image_size=16, batch_size=32)
    config.model = dict()
    config.optim = dict(name="adam", lr=2e-3, schedule="cosine", warmup_steps=50, grad_clip=1.0)
    config.train = dict(num_steps=2000, log_every=100, eval_every=500, checkpoint_every=500)
    config.eval = dict(evaluators=("reconstruction",), splits=("test",), num_batches=0)
    if args.runlocal:
        config.runlocal = True
        config.data.update(image_size=8, batch_size=8)
        config.model.update(num_atoms=4, kernel_size=3, num_iters=3, power_iters_init=10)
        config.optim.warmup_steps = 2
        config.train.update(num_steps=20, log_every=5, eval_every=0, checkpoint_every=10)
        config.eval.update(num_batches=1, num_images=8)
    if args.steps:
        config.train.num_steps = args.steps
    return config
