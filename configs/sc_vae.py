"""SC-VAE and its baselines on 64×64 crops of the offline natural photographs (held-out test images).

    python -m sparse_ae.main --config=configs/sc_vae.py --workdir=/tmp/sc_vae
    python -m sparse_ae.main --config=configs/sc_vae.py:bottleneck=vq --workdir=/tmp/vq_vae
    python -m sparse_ae.main --config=configs/sc_vae.py:runlocal --workdir=/tmp/sc_vae_smoke
    python -m sparse_ae.main --config=configs/sc_vae.py:paper,dataset=image_folder --config.data.path=DIR ...

Arguments (``:a=b,flag``): ``bottleneck`` (lista | ista | vq | none; ista is the bottleneck and loss of
the authors' code: ISTA with a trained dictionary from K-SVD's overcomplete DCT and a trained step, a
fixed threshold, no ‖Z‖₁ term in the loss), ``dataset`` (any data source, default
natural_crops), ``image_size`` (default 64; 256 with ``paper``), ``steps`` (train.num_steps),
``paper`` (the paper's architecture: C′ = 128, widths up to C″ = 512, d = 4, n = 256, K = 512,
s = 16, attention at 16×16; and its optimiser: Adam, lr 1e-4 constant, batch 16, 10 epochs =
ceil(10 · ``train_examples`` / 16) steps, ``train_examples`` default 66,000, the size of the FFHQ
training list in the authors' code, so 41,250 steps; the checkpoint with the lowest validation
reconstruction MSE, ``test/mse``, is kept in WORKDIR/checkpoints_best, one evaluation per epoch),
``runlocal`` (seconds-long smoke run). Evaluators: reconstruction
(PSNR/SSIM), code_sparsity (Hoyer, non-zeros, VQ codebook usage), code_edits (traversals and
interpolations), patch_clusters; segmentation is added for sources with masks ("composites", and
``dataset=tfds:caltech_birds2011``, whose ``segmentation_mask`` becomes the mask).
rFID and LPIPS need weight files (nothing is downloaded): add ``fid`` / ``lpips`` to
``--config.eval.evaluators`` and give ``--config.fid.weights=FILE`` / ``--config.lpips.weights=FILE``
(conversions in sparse_ae/evaluators/fid.py and lpips.py). Fields not set here are at the defaults
of ``sparse_ae.models.sc_vae.ModelConfig``, the evaluators' and the framework's sections.
"""

import ml_collections

MASK_SOURCES = ("composites",)
TFDS_MASK_KEYS = {"tfds:caltech_birds2011": "segmentation_mask"}
ARGS = dict(runlocal=False, paper=False, bottleneck="lista", dataset="natural_crops", image_size=0, steps=0,
            train_examples=66_000)
PAPER_EPOCHS, PAPER_BATCH = 10, 16


def epoch_steps(num_examples: int, batch_size: int) -> int:
    """Steps of one pass over ``num_examples`` at ``batch_size`` (the last batch counted)."""
    return -(-num_examples // batch_size)


def get_config(args):
    config = ml_collections.ConfigDict()
    config.task = "sc_vae"
    config.data = dict(name=args.dataset, image_size=args.image_size or (256 if args.paper else 64), channels=3,
                       batch_size=16)
    config.model = dict(bottleneck=args.bottleneck)
    if args.bottleneck == "ista":
        config.model.update(dictionary="learned", dct_atoms="ksvd")
    if args.paper:
        config.model.update(channels=128, channel_mult=(1, 1, 2, 2, 4), num_res_blocks=2, num_down=4,
                            attn_resolutions=(16,), latent_dim=256, num_atoms=512, lista_steps=16)
    config.optim = dict(name="adam", lr=1e-3, schedule="cosine", warmup_steps=100, b1=0.9, b2=0.999, grad_clip=1.0)
    config.train = dict(num_steps=3000, log_every=50, eval_every=1000, checkpoint_every=1000)
    if args.paper:
        epoch = epoch_steps(args.train_examples, PAPER_BATCH)
        config.data.batch_size = PAPER_BATCH
        config.optim = dict(name="adam", lr=1e-4, schedule="constant", warmup_steps=0, b1=0.9, b2=0.999,
                            grad_clip=0.0)
        config.train.update(num_steps=PAPER_EPOCHS * epoch, eval_every=epoch, checkpoint_every=epoch,
                            keep_best="test/mse")
    evaluators = ["reconstruction", "code_sparsity", "code_edits", "patch_clusters"]
    if args.dataset in TFDS_MASK_KEYS:
        config.data.mask_key = TFDS_MASK_KEYS[args.dataset]
    if args.dataset in MASK_SOURCES or args.dataset in TFDS_MASK_KEYS:
        evaluators.append("segmentation")
    config.eval = dict(evaluators=tuple(evaluators), splits=("test",), num_batches=0, batch_size=32)
    # The evaluators' sections (their defaults fill what is not set here); rFID and LPIPS read weights.
    config.segmentation = dict()
    config.code_edits = dict()
    config.patch_clusters = dict()
    config.fid = dict(weights="")
    config.lpips = dict(weights="")
    if args.runlocal:
        config.runlocal = True
        config.data.update(image_size=args.image_size or 16, batch_size=8, num_eval_examples=16)
        config.model.update(channels=8, channel_mult=(1, 2), num_down=2, latent_dim=16, num_atoms=32,
                            lista_steps=3)
        config.optim.warmup_steps = 2
        config.train.update(num_steps=20, log_every=5, eval_every=10 if args.paper else 0, checkpoint_every=10)
        config.eval.update(num_batches=1, batch_size=0, num_images=8)
        config.patch_clusters.update(num_clusters=4, clusters_shown=2, patches_shown=4)
        config.code_edits.update(num_components=2, num_values=3)
    if args.steps:
        config.train.num_steps = args.steps
    return config
