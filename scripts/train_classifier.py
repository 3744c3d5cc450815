#!/usr/bin/env python
"""Trains the digit classifier behind ``frechet_digit_distance`` and prints reference distances.

The classifier (``tfinverse.evaluation.classifier``) is trained on the MNIST-5000 training
split only (4000 digits); its accuracy is measured on the 1000 held-out test digits. The
model is saved without optimizer state to ``tfinverse/assets/mnist_classifier.keras``
unless ``--out`` says otherwise; an existing file is kept unless ``--overwrite`` is given.

It then prints, as a Markdown table, the Frechet distance to the held-out test digits of
reference sets of 4000 images, which tell what a value means:

* the training digits: the floor (two samples of the same distribution);
* the training digits blurred (Gaussian, sigma 1 and 2 pixels) or with Gaussian noise;
* the training digits with their pixels shuffled (right ink statistics, no strokes);
* uniform noise in ``[0, 1]``.

Examples::

    python scripts/train_classifier.py                      # default file, refuses to overwrite
    python scripts/train_classifier.py --epochs 3 --out /tmp/clf.keras
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["build_parser", "reference_sets", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags."""
    from tfinverse.utils.cli import add_run_flags

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None,
                        help="the .keras file to write (default: the packaged tfinverse/assets/mnist_classifier.keras)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the 4000 training digits")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step size")
    parser.add_argument("--image-size", type=int, default=28, help="input side length (28 or 32)")
    parser.add_argument("--feature-dim", type=int, default=128, help="width of the feature layer")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisers, dropout, shuffling and references")
    from tfinverse.utils.precision import add_precision_flag

    add_precision_flag(parser)
    add_run_flags(parser)
    return parser


def reference_sets(train_images: np.ndarray, seed: int) -> dict:
    """Reference image sets derived from the training digits, plus noise.

    Args:
      train_images: float32 ``[N, S, S, 1]`` in ``[0, 1]``.
      seed: seed of the random draws.

    Returns:
      ``{description: images}``, every set with ``N`` images in ``[0, 1]``.
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    n, size = train_images.shape[0], train_images.shape[1]
    flat = train_images.reshape(n, -1)
    shuffled = np.take_along_axis(flat, np.argsort(rng.random(flat.shape), axis=1), axis=1)
    noisy = np.clip(train_images + rng.normal(0.0, 0.1, train_images.shape), 0.0, 1.0)
    return {
        "train digits (floor)": train_images,
        "train digits, Gaussian blur sigma 1": gaussian_filter(train_images, sigma=(0, 1, 1, 0)),
        "train digits, Gaussian blur sigma 2": gaussian_filter(train_images, sigma=(0, 2, 2, 0)),
        "train digits + Gaussian noise sigma 0.1": noisy.astype(np.float32),
        "train digits, pixels shuffled": shuffled.reshape(train_images.shape),
        "uniform noise U[0, 1]": rng.uniform(0.0, 1.0, (n, size, size, 1)).astype(np.float32),
    }


def main(argv=None) -> int:
    """Trains, saves and reports; returns the exit status (2 for a refused ``--out``)."""
    from tfinverse.utils.cli import configure_run

    args = build_parser().parse_args(argv)
    configure_run(args)
    from tfinverse.evaluation.classifier import DEFAULT_CLASSIFIER_PATH

    out = Path(args.out or DEFAULT_CLASSIFIER_PATH)
    if out.suffix != ".keras":
        print(f"error: --out must end in .keras, got {out}", file=sys.stderr)
        return 2
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2

    from tfinverse.evaluation.classifier import (
        FeatureExtractor,
        load_labelled_mnist5k,
        train_digit_classifier,
    )
    from tfinverse.evaluation.frechet import frechet_distance_of

    from tfinverse.utils.precision import precision_policy

    train_images, train_labels = load_labelled_mnist5k("train", args.image_size)
    test_images, test_labels = load_labelled_mnist5k("test", args.image_size)
    start = time.perf_counter()
    with precision_policy(args.precision):
        model = train_digit_classifier(
            train_images,
            train_labels,
            epochs=args.epochs,
            seed=args.seed,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            feature_dim=args.feature_dim,
        )
    seconds = time.perf_counter() - start
    extractor = FeatureExtractor(model)
    train_accuracy = extractor.accuracy(train_images, train_labels)
    test_accuracy = extractor.accuracy(test_images, test_labels)
    extractor.save(out, overwrite=args.overwrite)
    print(f"trained {args.epochs} epochs on {len(train_images)} digits in {seconds:.1f} s "
          f"({model.count_params()} weights)")
    print(f"accuracy: train {train_accuracy:.4f}, held-out test {test_accuracy:.4f}")
    print(f"saved {out} ({out.stat().st_size / 1024:.1f} KiB)")

    print()
    print(f"Frechet distance to the {len(test_images)} held-out test digits "
          f"({extractor.feature_dim}-d features):")
    print()
    print("| reference set | images | Frechet distance |")
    print("| --- | ---: | ---: |")
    test_features = extractor.features(test_images)
    for name, images in reference_sets(train_images, args.seed).items():
        distance = frechet_distance_of(extractor.features(images), test_features)
        print(f"| {name} | {len(images)} | {distance:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
