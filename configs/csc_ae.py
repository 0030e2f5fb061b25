"""One-stage convolutional sparse-coding autoencoder on the embedded digits (the toy task).

    python -m sparse_ae.main --config=configs/csc_ae.py --workdir=/tmp/csc_ae
    python -m sparse_ae.main --config=configs/csc_ae.py:runlocal --workdir=/tmp/csc_ae_smoke

Arguments (``:a=b,flag``): ``runlocal`` (seconds-long smoke run), ``dataset`` (any data source
name, default digits), ``steps`` (override train.num_steps).
"""

from sparse_ae import config as config_lib
from sparse_ae.train.tasks import csc_ae


def get_config(arg=None):
    args = config_lib.parse_arg(arg, runlocal=False, dataset="digits", steps=0)
    config = config_lib.base_config()
    config.task = "csc_ae"
    config.data.name = args.dataset
    config.data.image_size = 16
    config.data.batch_size = 32
    config.model = csc_ae.model_config()
    config.optim.update(name="adam", lr=2e-3, schedule="cosine", warmup_steps=50, grad_clip=1.0)
    config.train.update(num_steps=2000, log_every=100, eval_every=500, checkpoint_every=500)
    config.eval.update(evaluators=("reconstruction",), splits=("test",), num_batches=0)
    if args.runlocal:
        config = config_lib.apply_runlocal(config)
        config.data.image_size = 8
        config.model.update(num_atoms=4, kernel_size=3, num_iters=3, power_iters_init=10)
    if args.steps:
        config.train.num_steps = args.steps
    return config
