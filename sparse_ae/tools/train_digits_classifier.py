"""Train the digits classifier of the offline Fréchet distance: ``python -m sparse_ae.tools.train_digits_classifier --out DIR``.

Trains :class:`sparse_ae.models.digits_classifier.DigitsClassifier` at ``--image_size`` as
:func:`sparse_ae.evaluators._digits_classifier_training.train` does, reports its "test" split
accuracy and saves ``DIR/classifier.npz`` + ``DIR/classifier.json``. Point
``config.frechet_digits.classifier`` at DIR; left empty, the evaluator uses the classifier this
tool trains by default at ``config.data.image_size``, trained on first use and cached.
"""

from __future__ import annotations

import argparse
import time

from sparse_ae.evaluators import _digits_classifier_training as training
from sparse_ae.models import digits_classifier
from sparse_ae.utils import cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for classifier.npz / classifier.json")
    parser.add_argument("--image_size", type=int, default=16)
    parser.add_argument("--feature_dim", type=int, default=training.FEATURE_DIM)
    parser.add_argument("--steps", type=int, default=training.STEPS)
    parser.add_argument("--seed", type=int, default=training.SEED)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with cli.mistakes_in_one_line():
        model, meta = training.train(args.image_size, args.feature_dim, args.steps, seed=args.seed)
        folder = digits_classifier.save(model, args.out, meta)
    print(f"digits classifier ({args.image_size}x{args.image_size}): test accuracy {meta['test_accuracy']:.4f}, "
          f"train {meta['train_accuracy']:.4f}; saved to {folder} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
