"""The flags every training script shares, without TensorFlow.

Scripts build their parsers from this module so that ``--help`` and flag errors answer
before TensorFlow loads; :mod:`tfinverse.training.runner` runs what the flags describe.
Every train script (DCGAN, BEGAN, PGGAN, igan) shares the output, checkpoint, schedule and
hardware flags; the image-dataset flags (``--dataset``, ``--image-size``, ``--channels``)
and the single ``--lr`` are for the GAN priors only (igan has tasks and two rates).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from tfinverse.errors import InputError
from tfinverse.utils.cli import add_common_flags, parse_common_args
from tfinverse.utils.precision import add_precision_flag

__all__ = [
    "STRATEGIES",
    "RESUMABLE_SETTINGS",
    "PER_INVOCATION_SETTINGS",
    "TrainingSetupError",
    "TrainingDefaults",
    "TrainingSpec",
    "add_training_flags",
    "parse_training_args",
]

STRATEGIES = ("default", "mirrored", "multi_worker")

# Settings a resumed run may change; every other one must match the checkpointed run.
RESUMABLE_SETTINGS = (
    "steps",
    "out",
    "log_dir",
    "data_dir",
    "resume",
    "overwrite",
    "checkpoint_every",
    "sample_every",
    "log_every",
    "keep_checkpoints",
    "jit_compile",
    "strategy",
    "precision",
    "progress",
    "download",
    "short",
    "eval_every",
)

# Settings that belong to one invocation and are never taken over from a resumed run.
PER_INVOCATION_SETTINGS = ("out", "log_dir", "resume", "overwrite")


class TrainingSetupError(InputError):
    """A training request that cannot be run (bad sizes, unavailable data, output folder).

    An :class:`tfinverse.errors.InputError` (a ``ValueError``): scripts print it as one line.
    """


@dataclass(frozen=True)
class TrainingDefaults:
    """A script's defaults for the shared flags (the original's values where published).

    ``image_size``, ``channels`` and ``learning_rate`` are None for a script without the
    image-dataset flags and ``--lr`` (igan).
    """

    batch_size: int
    image_size: Optional[int]
    channels: Optional[int]
    learning_rate: Optional[float]
    steps: Optional[int]
    out: str
    dataset: str = "mnist5k"
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 50
    num_samples: int = 64


@dataclass(frozen=True)
class TrainingSpec:
    """How a script builds, feeds and exports its trainer.

    Attributes:
      name: short model name (``"dcgan"``), used in messages and metadata.
      validate: ``args -> None``; raises :class:`TrainingSetupError` for impossible settings
        (called before anything is written).
      build_trainer: ``args -> Trainer``, compiled; called inside the strategy scope.
      default_steps: ``(args, batches_per_epoch) -> steps`` used when ``--steps`` is not
        given (``batches_per_epoch`` is None when the dataset size is unknown).
      describe_data: ``args -> {"message", ...}`` (default: the image dataset of
        ``--dataset``; raises :class:`TrainingSetupError` for unavailable data).
      make_dataset: ``args -> (epoch -> tf.data.Dataset)`` of global training batches
        (default: ``--dataset`` at ``--image-size``).
      finish_dataset: ``args -> tf.data.Dataset`` of further batches for the trainer's
        ``finish_training`` (igan's batch-norm recalibration), or None.
      export: ``(trainer, out_dir, metadata, args) -> dict`` writes the trained model and
        returns ``run.json`` entries (default: the generator as a hub SavedModel).
      write_metadata: ``(args, checkpoint_dir, settings, trainer) -> None`` writes the run's model
        description next to its checkpoints on a fresh run (igan's ``igan.json``), or None.
      derived_settings: ``args -> dict`` of settings that are not plain flags but fix the
        run (igan's task options); stored and checked on resume like flags.
    """

    name: str
    validate: Callable[[argparse.Namespace], None]
    build_trainer: Callable[[argparse.Namespace], object]
    default_steps: Callable[[argparse.Namespace, Optional[int]], int]
    describe_data: Optional[Callable[[argparse.Namespace], Dict[str, Any]]] = None
    make_dataset: Optional[Callable[[argparse.Namespace], Callable[[int], object]]] = None
    finish_dataset: Optional[Callable[[argparse.Namespace], object]] = None
    export: Optional[Callable[..., Dict[str, Any]]] = None
    write_metadata: Optional[Callable[..., None]] = None
    derived_settings: Optional[Callable[[argparse.Namespace], Dict[str, Any]]] = None


def add_training_flags(parser: argparse.ArgumentParser, defaults: TrainingDefaults) -> argparse.ArgumentParser:
    """Adds the data, schedule, output, checkpoint and hardware flags every training script has.

    Args:
      parser: the script's parser.
      defaults: the script's defaults.

    Returns:
      ``parser``.
    """
    if defaults.image_size is not None:
        data = parser.add_argument_group("data")
        data.add_argument("--dataset", default=defaults.dataset, help="registered dataset (tfinverse.data.available()); offline: mnist5k, ...")
        data.add_argument("--image-size", type=int, default=defaults.image_size, help="training resolution; other image sizes are resized by the data layer")
        data.add_argument("--channels", type=int, default=defaults.channels, choices=(1, 3), help="1 (grey) or 3 (RGB); the data layer converts")
        data.add_argument("--download", action="store_true", help="let tensorflow-datasets download a missing copy")

    schedule = parser.add_argument_group("schedule")
    schedule.add_argument("--steps", type=int, default=defaults.steps, help="training steps (iterations) to reach in total; a resumed run continues up to it")
    schedule.add_argument("--batch-size", type=int, default=defaults.batch_size, help="global batch size (split over replicas and workers)")
    if defaults.learning_rate is not None:
        schedule.add_argument("--lr", type=float, default=defaults.learning_rate, help="learning rate of both networks")

    output = parser.add_argument_group("output")
    output.add_argument("--sample-every", type=int, default=defaults.sample_every, help="save a sample grid every N steps (0: only at the end)")
    output.add_argument("--num-samples", type=int, default=defaults.num_samples, help="size of the fixed latent batch of the sample grids")
    output.add_argument("--log-every", type=int, default=defaults.log_every, help="write TensorBoard scalars every N steps")
    output.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, help="save a checkpoint every N steps (0: only at the end)")
    output.add_argument("--keep-checkpoints", type=int, default=3, help="how many checkpoints to keep")
    output.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    output.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")

    hardware = parser.add_argument_group("hardware")
    hardware.add_argument(
        "--strategy", default="default", choices=STRATEGIES,
        help="'mirrored': data-parallel over all GPUs (or all logical CPUs) of this machine; 'multi_worker': "
        "over the machines of the TF_CONFIG environment variable (run the same command on each; the chief writes --out)",
    )
    hardware.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA")
    add_precision_flag(hardware)
    # The flag of earlier versions: --precision float16.
    hardware.add_argument("--mixed-precision", dest="precision", action="store_const", const="float16",
                          help=argparse.SUPPRESS)
    add_common_flags(parser, out_default=defaults.out)
    return parser


def parse_training_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses a training script's flags; with ``--resume`` the run's stored settings are the defaults.

    So ``--out runs/x --resume`` finishes a killed run with its own settings and
    ``--out runs/x --resume --steps 2000`` extends it; a flag given explicitly still wins
    (and :func:`run_training` refuses it if it would change the model, data or optimisation).

    Args:
      parser: a parser with :func:`add_training_flags`.
      argv: the arguments (default ``sys.argv[1:]``).

    Returns:
      The parsed namespace (``log_dir`` and ``data_dir`` filled in as by
      :func:`tfinverse.utils.cli.parse_common_args`).
    """
    args = parse_common_args(parser, argv)
    if not args.resume:
        return args
    from tfinverse.training.checkpointing import read_run_config

    stored = read_run_config(args.out)
    if not stored:
        return args
    known = {action.dest for action in parser._actions}
    parser.set_defaults(
        **{key: value for key, value in stored.items() if key in known and key not in PER_INVOCATION_SETTINGS}
    )
    return parse_common_args(parser, argv)
