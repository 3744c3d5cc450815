#!/usr/bin/env python
"""Trains a BEGAN prior, the generator IAGAN and CSGM invert at 128x128, and exports it as a
SavedModel for tfinverse.hub.load_generator.

The paper's settings are the defaults: 128x128 RGB, z ~ U[-1, 1]^64 (h = 64 for the
auto-encoder's bottleneck too), n = 64 filters, Adam with learning rate 1e-4, gamma 0.5,
lambda_k 1e-3, k_0 = 0, batch 16. Not published, and chosen here: Adam's betas (0.5,
0.999), the number of steps, and when to halve the learning rate (the paper halves it "when
the convergence measure stalls"; --lr-halve-every halves it every N steps). One --steps step
updates D and G once from the same batch and then k_t. The default dataset is the offline
mnist5k, resized and converted by the data layer; CelebA needs a local tensorflow-datasets
copy.

Writes to --out: checkpoints/ (with k_t), samples/step_*.png from a fixed latent batch,
logs/ (TensorBoard: losses, k_t, M_global, learning rate, sample grids), generator/
(SavedModel), samples.png and run.json.

Examples::

    python scripts/train_began.py --steps 200 --image-size 32 --channels 1 --num-filters 32 --out runs/began_mnist
    python scripts/train_began.py --out runs/began_mnist --resume   # finish a killed run, same settings
    python scripts/train_began.py --out runs/began_mnist --resume --steps 400   # train on
    python scripts/train_began.py --dataset celeb_a --data-dir ~/tensorflow_datasets --out runs/began_celeba
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light imports only: --help and flag errors answer before TensorFlow loads.
from tfinverse.tasks.iagan import BEGAN_GAMMA, BEGAN_LAMBDA_K, BEGAN_LEARNING_RATE  # noqa: E402
from tfinverse.training.flags import (  # noqa: E402
    TrainingDefaults,
    TrainingSetupError,
    TrainingSpec,
    add_training_flags,
    parse_training_args,
)
from tfinverse.utils.cli import docstring_parser  # noqa: E402

DEFAULTS = TrainingDefaults(
    batch_size=16,
    image_size=128,
    channels=3,
    learning_rate=BEGAN_LEARNING_RATE,
    steps=200_000,
    out="runs/began",
)


def build_parser() -> argparse.ArgumentParser:
    """The script's flags: the shared training flags plus the BEGAN architecture and control."""
    parser = docstring_parser(__doc__)
    add_training_flags(parser, DEFAULTS)
    model = parser.add_argument_group("BEGAN")
    model.add_argument("--latent-dim", type=int, default=64, help="dimension of z ~ U[-1, 1]^d and of the embedding h")
    model.add_argument("--num-filters", type=int, default=64, help="n, the filters of the conv repeats")
    model.add_argument("--gamma", type=float, default=BEGAN_GAMMA, help="diversity ratio gamma = E[L_fake] / E[L_real]")
    model.add_argument("--lambda-k", type=float, default=BEGAN_LAMBDA_K, help="proportional gain of k_t")
    model.add_argument("--k-initial", type=float, default=0.0, help="k_0")
    model.add_argument("--beta1", type=float, default=0.5, help="Adam beta_1 (not published)")
    model.add_argument("--beta2", type=float, default=0.999, help="Adam beta_2 (not published)")
    model.add_argument("--lr-halve-every", type=int, default=100_000, help="halve the learning rate every N steps (0: never; not published)")
    return parser


def validate(args) -> None:
    """Refuses settings the BEGAN cannot be built with."""
    from tfinverse.models import began_num_repeats

    try:
        began_num_repeats(args.image_size)
    except ValueError:
        raise TrainingSetupError(
            f"--image-size {args.image_size}: BEGAN images must be 8 * 2^k pixels (16, 32, 64, 128, ...)"
        ) from None
    for flag in ("latent_dim", "num_filters"):
        if getattr(args, flag) < 1:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if not 0.0 < args.gamma <= 1.0:
        raise TrainingSetupError(f"--gamma must be in (0, 1], got {args.gamma}")
    if args.lambda_k < 0:
        raise TrainingSetupError(f"--lambda-k must be >= 0, got {args.lambda_k}")
    if not 0.0 <= args.k_initial <= 1.0:
        raise TrainingSetupError(f"--k-initial must be in [0, 1], got {args.k_initial}")
    if args.lr_halve_every < 0:
        raise TrainingSetupError(f"--lr-halve-every must be >= 0 (0: never), got {args.lr_halve_every}")


def build_trainer(args):
    """The compiled BEGAN trainer of the flags (called inside the strategy scope)."""
    from tfinverse.training import BEGANTrainer, began_optimizers
    from tfinverse.models import BEGANGenerator, build_began_discriminator

    generator = BEGANGenerator(
        resolution=args.image_size,
        channels=args.channels,
        latent_dim=args.latent_dim,
        num_filters=args.num_filters,
        seed=args.seed,
    )
    discriminator = build_began_discriminator(
        args.image_size, args.channels, args.latent_dim, args.num_filters, seed=args.seed + 1
    )
    trainer = BEGANTrainer(
        generator,
        discriminator,
        seed=args.seed,
        gamma=args.gamma,
        lambda_k=args.lambda_k,
        k_initial=args.k_initial,
    )
    trainer.compile(*began_optimizers(args.lr, args.beta1, args.beta2, args.lr_halve_every))
    return trainer


def default_steps(args, batches_per_epoch) -> int:
    """Not reached: --steps always has a value (the paper does not publish one)."""
    return DEFAULTS.steps


SPEC = TrainingSpec(name="began", validate=validate, build_trainer=build_trainer, default_steps=default_steps)


def main(argv=None) -> dict:
    """Parses ``argv``, trains, exports; returns the contents of run.json."""
    parser = build_parser()
    args = parse_training_args(parser, argv)
    from tfinverse.training import run_training

    return run_training(args, SPEC, argv)


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
