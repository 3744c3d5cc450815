#!/usr/bin/env python
"""Trains a progressive GAN (PGGAN) prior with WGAN-GP and progressive growing, and exports
the generator as a SavedModel for tfinverse.hub.load_generator.

The original's settings are the defaults: z ~ N(0, I_512), up to 1024x1024 RGB with
fmap_base 8192 and fmap_max 512, Adam with learning rate 1e-3 and betas (0, 0.99),
WGAN-GP with lambda 10 and drift 1e-3, one critic step per generator step, minibatch-stddev
groups of 4, growth from 4x4 with 600k images per fade-in and per stabilisation phase
(--kimg-per-phase), optimizer moments reset at each new level. Training stops after --steps
steps, by default when the top level has been faded in and stabilised. Not reproduced: the
original lowers the batch size above 128x128 to fit GPU memory (here --batch-size is fixed)
and keeps a moving average of the generator's weights.

--image-size is the top resolution (a power of two, 4 ... 1024); the data layer resizes
the dataset to it, and each level sees the images average-pooled to its own resolution.
Each level gets its own compiled training step.

Writes to --out: checkpoints/ (with the level; alpha is a network variable),
samples/step_*.png at the current resolution, logs/ (TensorBoard: losses, alpha,
resolution, learning rate, sample grids), generator/ (SavedModel at the final level),
samples.png and run.json.

Examples::

    python scripts/train_pggan.py --image-size 32 --channels 1 --fmap-base 512 --fmap-max 128 \\
        --kimg-per-phase 10 --out runs/pggan_mnist
    python scripts/train_pggan.py --out runs/pggan_mnist --resume   # finish a killed run, same settings
    python scripts/train_pggan.py --out runs/pggan_mnist --resume --steps 6000   # train on
    python scripts/train_pggan.py --dataset celeb_a --data-dir ~/tensorflow_datasets --image-size 128 --out runs/pggan_celeba
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light imports only: --help and flag errors answer before TensorFlow loads.
from tfinverse.tasks.iagan import (  # noqa: E402
    PGGAN_BETAS,
    PGGAN_DRIFT_WEIGHT,
    PGGAN_GP_WEIGHT,
    PGGAN_KIMG_PER_PHASE,
    PGGAN_LEARNING_RATE,
)
from tfinverse.training.progressive_schedule import ProgressiveSchedule  # noqa: E402
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
    image_size=1024,
    channels=3,
    learning_rate=PGGAN_LEARNING_RATE,
    steps=None,
    out="runs/pggan",
)


def build_parser() -> argparse.ArgumentParser:
    """The script's flags: the shared training flags plus the PGGAN networks and schedule."""
    parser = docstring_parser(__doc__)
    add_training_flags(parser, DEFAULTS)
    model = parser.add_argument_group("PGGAN")
    model.add_argument("--latent-dim", type=int, default=512, help="dimension of z ~ N(0, I)")
    model.add_argument("--fmap-base", type=int, default=8192, help="feature-map budget: level l has min(fmap_base / 2^(l+1), fmap_max) channels")
    model.add_argument("--fmap-max", type=int, default=512, help="channel cap")
    model.add_argument("--mbstd-group-size", type=int, default=4, help="minibatch-stddev group size of the critic")
    model.add_argument("--kimg-per-phase", type=float, default=PGGAN_KIMG_PER_PHASE, help="thousands of images per fade-in and per stabilisation phase")
    model.add_argument("--start-level", type=int, default=0, help="level to start at (0 = 4x4)")
    model.add_argument("--gp-weight", type=float, default=PGGAN_GP_WEIGHT, help="WGAN-GP lambda")
    model.add_argument("--drift-weight", type=float, default=PGGAN_DRIFT_WEIGHT, help="weight of the drift term E[D(x)^2]")
    model.add_argument("--beta1", type=float, default=PGGAN_BETAS[0], help="Adam beta_1")
    model.add_argument("--beta2", type=float, default=PGGAN_BETAS[1], help="Adam beta_2")
    model.add_argument("--no-optimizer-reset", action="store_true", help="keep the optimizers' moments when a new level starts")
    return parser


def _num_levels(args) -> int:
    from tfinverse.models import pggan_num_levels

    try:
        return pggan_num_levels(args.image_size)
    except ValueError:
        raise TrainingSetupError(
            f"--image-size {args.image_size}: the PGGAN top resolution must be a power of two in [4, 1024]"
        ) from None


def _schedule(args) -> ProgressiveSchedule:
    return ProgressiveSchedule(_num_levels(args), int(round(args.kimg_per_phase * 1000)), args.start_level)


def validate(args) -> None:
    """Refuses settings the PGGAN cannot be built or trained with."""
    levels = _num_levels(args)
    if not 0 <= args.start_level < levels:
        raise TrainingSetupError(f"--start-level must be in [0, {levels - 1}] for {args.image_size}px, got {args.start_level}")
    if int(round(args.kimg_per_phase * 1000)) < 1:
        raise TrainingSetupError(f"--kimg-per-phase must be at least 0.001 (one image), got {args.kimg_per_phase}")
    for flag in ("latent_dim", "fmap_base", "fmap_max", "mbstd_group_size"):
        if getattr(args, flag) < 1:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    _check_group(args.batch_size, args.mbstd_group_size)


def _check_group(batch_size: int, group_size: int) -> None:
    group = min(group_size, batch_size)
    if batch_size % group:
        raise TrainingSetupError(
            f"the (per-replica) batch of {batch_size} must be divisible by the minibatch-stddev group "
            f"size {group} (--mbstd-group-size)"
        )


def build_trainer(args):
    """The compiled PGGAN trainer of the flags (called inside the strategy scope)."""
    from tfinverse.training import PGGANTrainer, pggan_optimizers
    import tensorflow as tf

    from tfinverse.models import PGGANDiscriminatorNetwork, PGGANGenerator

    _check_group(args.batch_size // tf.distribute.get_strategy().num_replicas_in_sync, args.mbstd_group_size)
    generator = PGGANGenerator(
        resolution=args.image_size,
        latent_dim=args.latent_dim,
        channels=args.channels,
        fmap_base=args.fmap_base,
        fmap_max=args.fmap_max,
        seed=args.seed,
    )
    discriminator = PGGANDiscriminatorNetwork(
        args.image_size,
        args.channels,
        fmap_base=args.fmap_base,
        fmap_max=args.fmap_max,
        mbstd_group_size=args.mbstd_group_size,
        seed=args.seed + 1,
    )
    trainer = PGGANTrainer(
        generator,
        discriminator,
        _schedule(args),
        seed=args.seed,
        gp_weight=args.gp_weight,
        drift_weight=args.drift_weight,
        reset_optimizers_on_growth=not args.no_optimizer_reset,
    )
    trainer.compile(*pggan_optimizers(args.lr, args.beta1, args.beta2))
    return trainer


def default_steps(args, batches_per_epoch) -> int:
    """Steps until the top level has been faded in and stabilised."""
    return _schedule(args).steps_to_complete(args.batch_size)


SPEC = TrainingSpec(name="pggan", validate=validate, build_trainer=build_trainer, default_steps=default_steps)


def main(argv=None) -> dict:
    """Parses ``argv``, trains, exports; returns the contents of run.json."""
    parser = build_parser()
    args = parse_training_args(parser, argv)
    from tfinverse.training import run_training

    return run_training(args, SPEC, argv)


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
