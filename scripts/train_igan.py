#!/usr/bin/env python
"""Trains igan (adversarial parameter estimation) on one of its tasks.

The flags mirror the original's configuration (``initializer.py``): task
``unmixing_mnist_cifar``, GAN model vanilla, batch 8, the task's iteration budget counted in
generator steps (10000; 120000 for unmixing_mnist_mnist), random dual mapping on, paired
loss off, a sample grid every 20 generator steps and a checkpoint every 500. ``--short``
uses the task's short schedule (under 10 minutes on 2 CPU cores). One training step is one
generator step; a discriminator round (D1, D2) runs on its own fresh batch before the first
generator step of each round, and the number of generator steps per round follows the
original's adaptive ``mm`` rule.

Runs on the same loop and runner as train_dcgan.py / train_began.py / train_pggan.py, with
the same --resume / --overwrite / TensorBoard / --strategy / --precision behaviour. Writes
into ``--out``::

    samples/step_<step>.png   input y | estimated component z | estimated x | true x
                              (a fixed batch of held-out samples; toy2d: a scatter plot)
    checkpoints/              ckpt-<step> (newest --keep-checkpoints), run_config.json and
                              igan.json (task settings, read by deploy_igan.py)
    estimator/                SavedModel, signature y -> {"component", "clean"}
    logs/                     TensorBoard scalars (losses, mm, learning rates) and samples
    run.json, samples.png     settings, data, timing, final losses, the update schedule

Before the final checkpoint and the export the estimator's batch-norm statistics are
re-estimated from --bn-recalibration-batches further batches (not in the original).
``--resume`` continues the run in ``--out`` (same settings required; the budget, logging
intervals, --strategy and --jit-compile may change) exactly where it stopped: the data
stream, the generator-step count and the ``mm`` state are restored.

Examples::

    python scripts/train_igan.py --task denoising --short --out runs/igan_denoising
    python scripts/train_igan.py --task unmixing_mnist_mnist --gan-model ls --paired-loss
    python scripts/train_igan.py --task derain --data-dir /data/rain --out runs/derain
    python scripts/train_igan.py --out runs/igan_denoising --resume --steps 800
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light imports only: --help and flag errors answer before TensorFlow loads.
from tfinverse.training.flags import (  # noqa: E402
    TrainingDefaults,
    TrainingSetupError,
    TrainingSpec,
    add_training_flags,
    parse_training_args,
)
from tfinverse.utils.cli import docstring_parser  # noqa: E402

DEFAULTS = TrainingDefaults(
    batch_size=8,
    image_size=None,  # fixed by the task
    channels=None,
    learning_rate=None,  # two rates: --g-learning-rate, --d-learning-rate
    steps=None,  # the task's budget
    out="results/igan",
    sample_every=20,
    checkpoint_every=500,
    log_every=20,
    num_samples=8,
)

# Batches per "epoch" of the endless task streams: a resumed run regenerates at most this
# many batches to find its place (each epoch is an independently seeded stream).
BATCHES_PER_EPOCH = 100


def build_parser() -> argparse.ArgumentParser:
    """The script's flags: the shared training flags plus igan's task, game and schedule."""
    from tfinverse.tasks import TASK_NAMES

    parser = docstring_parser(__doc__)
    add_training_flags(parser, DEFAULTS)
    igan = parser.add_argument_group("igan")
    igan.add_argument("--task", default="unmixing_mnist_cifar", choices=TASK_NAMES, help="the igan task")
    igan.add_argument(
        "--task-option", action="append", default=[], metavar="NAME=VALUE",
        help="a data option of the task (repeatable), e.g. noise_std=0.5 or variant=banana",
    )
    igan.add_argument("--gan-model", default="vanilla", choices=("vanilla", "ls", "wgan"), help="GAN losses")
    igan.add_argument("--max-iters", dest="steps", type=int, default=argparse.SUPPRESS,
                      help="the original's name of --steps: generator steps in total (default: the task's, "
                      "10000; 120000 for unmixing_mnist_mnist)")
    igan.add_argument("--short", action="store_true", help="use the task's short schedule (under 10 min on 2 cores)")
    igan.add_argument(
        "--dual-mapping", action=argparse.BooleanOptionalAction, default=True,
        help="random dual mapping with the observation discriminator D2",
    )
    igan.add_argument("--paired-loss", action="store_true", help="add the supervised loss 1000 mean|X_gen - X|")
    igan.add_argument("--g-learning-rate", type=float, default=None, help="default: the original's (5e-5)")
    igan.add_argument("--d-learning-rate", type=float, default=None, help="default: the original's (5e-6; 5e-5 for ls)")
    igan.add_argument("--bn-recalibration-batches", type=int, default=50,
                      help="batches re-estimating the estimator's batch-norm statistics before export (0: none)")
    igan.add_argument("--max-checkpoints", dest="keep_checkpoints", type=int, default=argparse.SUPPRESS, help="the former name of --keep-checkpoints")
    return parser


def get_task(args):
    """The task of ``--task`` with its ``--task-option`` s.

    Raises:
      TrainingSetupError: for a malformed or unknown option.
    """
    from tfinverse.tasks.igan_tasks import get_task as lookup
    from tfinverse.utils.cli import parse_name_values

    try:
        return lookup(args.task, **parse_name_values(args.task_option))
    except (ValueError, TypeError) as error:
        raise TrainingSetupError(str(error)) from None


def validate(args) -> None:
    """Refuses settings igan cannot be trained with."""
    get_task(args)
    if args.bn_recalibration_batches < 0:
        raise TrainingSetupError(f"--bn-recalibration-batches must be >= 0, got {args.bn_recalibration_batches}")
    for flag in ("g_learning_rate", "d_learning_rate"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be positive, got {value}")


def task_settings(args) -> dict:
    """Settings that are not plain flags: the task's data options (checked on --resume)."""
    return {"task_options": dict(sorted(dict(get_task(args).options).items()))}


def describe_data(args) -> dict:
    """Where the task's data come from; fails early (missing data folder) before any write."""
    from tfinverse.data import DatasetUnavailableError
    from tfinverse.tasks.igan_tasks import data_sources, training_batches

    task = get_task(args)
    try:
        training_batches(task, batch_size=args.batch_size, seed=args.seed, data_dir=args.data_dir)
        sources = data_sources(task, args.data_dir)
    except DatasetUnavailableError as error:
        raise TrainingSetupError(str(error)) from None
    message = f"igan {task.name}: " + ", ".join(f"{k} from {v}" for k, v in sources.items())
    return {"message": message, "task": task.name, "sources": sources}


def make_dataset(args):
    """``epoch -> dataset``: epochs of ``BATCHES_PER_EPOCH`` batches of independently seeded task streams."""
    from tfinverse.tasks.igan_tasks import training_batches
    from tfinverse.training.batch_stream import epoch_seed

    task = get_task(args)

    def for_epoch(epoch: int):
        stream = training_batches(task, batch_size=args.batch_size, seed=epoch_seed(args.seed, epoch), data_dir=args.data_dir)
        return stream.take(BATCHES_PER_EPOCH)

    return for_epoch


def finish_dataset(args):
    """The batches of the final batch-norm recalibration: a stream of its own (not training's)."""
    import numpy as np

    from tfinverse.tasks.igan_tasks import training_batches

    seed = int(np.random.default_rng([args.seed, 0xBA7C]).integers(0, 2**31 - 1))
    return training_batches(get_task(args), batch_size=args.batch_size, seed=seed, data_dir=args.data_dir)


def build_trainer(args):
    """The compiled IGAN of the flags, with its fixed held-out sample batch."""
    from tfinverse.models.igan import build_discriminators_for_task, build_estimator_for_task
    from tfinverse.tasks.igan_tasks import evaluation_batches
    from tfinverse.training.igan import IGAN, igan_optimizers

    task = get_task(args)
    estimator = build_estimator_for_task(task, seed=args.seed)
    d1, d2 = build_discriminators_for_task(task, seed=args.seed + 1)
    model = IGAN(
        estimator,
        d1,
        d2 if args.dual_mapping else None,
        dual_mapping=args.dual_mapping,
        paired=args.paired_loss,
        paired_loss_min_over_permutations=task.paired_loss_min_over_permutations,
        recalibration_batches=args.bn_recalibration_batches,
        seed=args.seed,
    )
    model.compile(*igan_optimizers(args.gan_model, args.g_learning_rate, args.d_learning_rate), gan_model=args.gan_model)
    model.fixed_samples = evaluation_batches(task, n=args.num_samples, seed=args.seed, data_dir=args.data_dir)
    return model


def default_steps(args, batches_per_epoch) -> int:
    """The task's budget in generator steps (its short schedule with --short)."""
    task = get_task(args)
    return task.short_iters if args.short else task.max_iters


def write_metadata(args, checkpoint_folder: Path, settings: dict, trainer) -> None:
    """``checkpoints/igan.json``: the task settings deploy_igan.py checks a checkpoint against."""
    from tfinverse.models.igan import IGAN_METADATA_FILE, task_metadata
    from tfinverse.utils.results import atomic_write_text

    metadata = dict(task_metadata(get_task(args)), kind=trainer.estimator.kind, run=settings)
    atomic_write_text(Path(checkpoint_folder) / IGAN_METADATA_FILE,
                      json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n", overwrite=True)


def export(trainer, out_dir: Path, metadata: dict, args) -> dict:
    """The estimator SavedModel in ``<out>/estimator`` (deploy_igan.py --saved-model)."""
    path = trainer.export(
        Path(out_dir) / "estimator",
        overwrite=True,
        task_options=dict(get_task(args).options),
        **{key: value for key, value in metadata.items() if key != "steps"},
    )
    return {"estimator_savedmodel": str(path), "schedule": trainer.schedule_state()}


SPEC = TrainingSpec(
    name="igan",
    validate=validate,
    build_trainer=build_trainer,
    default_steps=default_steps,
    describe_data=describe_data,
    make_dataset=make_dataset,
    finish_dataset=finish_dataset,
    export=export,
    write_metadata=write_metadata,
    derived_settings=task_settings,
)


def main(argv=None) -> dict:
    """Parses ``argv``, trains, exports; returns the contents of run.json."""
    parser = build_parser()
    args = parse_training_args(parser, argv)  # before anything heavy: --help and flag errors answer at once
    from tfinverse.training import run_training

    return run_training(args, SPEC, argv)


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
