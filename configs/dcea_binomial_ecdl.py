"""Unsupervised convolutional dictionary learning (ECDL) with DCEA-C on simulated Binomial spikes.

    python -m sparse_ae.main --config=configs/dcea_binomial_ecdl.py --workdir=/tmp/dcea_ecdl
    python -m sparse_ae.main --config=configs/dcea_binomial_ecdl.py:family=gaussian --workdir=/tmp/dcea_ecdl_g
    python -m sparse_ae.main --config=configs/dcea_binomial_ecdl.py:untied --workdir=/tmp/dcea_ecdl_uc

Arguments: ``family`` — "binomial" (the true model: the encoder reads the counts, loss = Binomial
NLL) or "gaussian" (model mismatch: the encoder reads y/M and fits a Gaussian with offset
sigmoid(mu_true)); ``untied`` — DCEA-UC (separate encoder, in-loop and decoder kernels, all
started from the same atoms; the threshold stays fixed) instead of DCEA-C; ``steps``;
``runlocal``. Data: ``binomial_spikes`` (3 templates of length 50, signals of length 500, M = 30
trials, 4 events per template of amplitude 12–20, baseline mu = 0; near the official code's
simulation settings, where both lobes of a template change the spike rate: at an earlier mu = −2
and M = 20 the negative lobes fell where almost no spikes occur, and the learned atoms lost them).
Encoder: T = 100 FISTA steps, step 1/(0.6·L̂) with L̂ the family's curvature bound times
max_ω Σ_c|ĥ_c(ω)|² ≈ 40 for unit-norm templates of this length; threshold λ·step (λ below).
Atoms are unit-normalised inside the call; the threshold is fixed (not learned). One reweighting
pass (T more steps with thresholds λ·step·ε/(|x̄| + ε), ε ≈ a fifth of an event's code) takes
most of ℓ1's shrinkage off the events, and unused or duplicated atoms restart from residual
windows after each step (``restart_atoms``), with which random starts recover templates up to a
delay (which ones depends on the training draws; ``benchmarks.dcea_ecdl`` picks the start of
lowest held-out NLL, evaluator ``likelihood``).
"""

import math

import ml_collections

# The simulator (sparse_ae.data.binomial_spikes.SpikesConfig; its other fields at their defaults).
SPIKES = dict(num_templates=3, template_length=50, trials=30, mu=0.0)
SPECTRAL_NORM = 40.0     # max_ω Σ_c |ĥ_c(ω)|² of 3 smooth unit-norm length-50 templates (≈ 43)
# The Binomial encoder's λ (its sweep: benchmarks/README.md, "Config sweeps").
BINOMIAL_LAMBDA = 30.0
# ε of the reweighting pass, about a fifth of an event's code.
BINOMIAL_EPS, GAUSSIAN_EPS = 3.0, 0.4
# Step 1/(STEP_MARGIN·L̂) of the encoder.
STEP_MARGIN = 0.6
ARGS = dict(family="binomial", untied=False, steps=0, runlocal=False)


def get_config(args):
    if args.family not in ("binomial", "gaussian"):
        raise ValueError(f"config argument family={args.family!r} must be 'binomial' or 'gaussian'")
    config = ml_collections.ConfigDict()
    config.task = "dcea"
    config.data = dict(name="binomial_spikes", image_size=500, channels=1, batch_size=16, num_eval_examples=64,
                       spikes=SPIKES)
    spikes = config.data.spikes
    if args.family == "binomial":
        curvature, lam, mu, eps = spikes.trials / 4.0, BINOMIAL_LAMBDA, spikes.mu, BINOMIAL_EPS
    else:
        curvature, lam, mu, eps = 1.0, 0.3, 1.0 / (1.0 + math.exp(-spikes.mu)), GAUSSIAN_EPS
    step = 1.0 / (STEP_MARGIN * curvature * SPECTRAL_NORM)
    config.model = dict(
            objective="nll", family=args.family, trials=spikes.trials, mu=mu, tied=not args.untied,
            kernel_size=spikes.template_length, num_filters=spikes.num_templates, one_d=True, stride=1,
            num_iters=100, step=step, threshold=lam * step, learn_bias=False, nonneg=True,
            accelerated=True, reweight_passes=1, reweight_eps=eps, restart_atoms=True, boundary="zero",
            normalize_atoms=True, init_lipschitz_margin=0.0, shift_average=False, eval_shift_average=False,
            unroll=10)
    config.optim = dict(name="adam", lr=2e-3, schedule="cosine", warmup_steps=10)
    config.train = dict(num_steps=300, log_every=25, eval_every=0, checkpoint_every=0)
    # Template errors against the truth, and the NLL per bin of the 64 held-out test signals.
    config.eval = dict(evaluators=("dictionary_recovery", "likelihood"), splits=("test",), num_batches=1,
                       batch_size=64, num_images=4)
    if args.runlocal:
        config.runlocal = True
        config.data.batch_size = 8
        config.model.num_iters = 10
        config.optim.warmup_steps = 2
        config.train.update(num_steps=20, log_every=5, eval_every=0, checkpoint_every=10)
        config.eval.update(num_batches=1, batch_size=0, num_images=8)
    if args.steps:
        config.train.num_steps = args.steps
    return config
