"""What every training script shares: its flags and one complete, resumable run.

A script adds its model's flags, then::

    parser = argparse.ArgumentParser(...)
    add_training_flags(parser, defaults=TrainingDefaults(batch_size=64, image_size=64, ...))
    args = parse_training_args(parser, argv)
    run_training(args, TrainingSpec(name="dcgan", validate=..., build_trainer=..., ...))

:func:`run_training` applies the output policy, checks a resumed run's settings, sets the
seed and the dtype policy, builds the strategy, the data stream and the trainer (inside the
strategy scope), restores the last checkpoint with ``--resume``, runs
:func:`tfinverse.training.loop.train`, exports the trained model (by default the generator
to ``<out>/generator`` with :func:`tfinverse.hub.export_generator`; igan its estimator to
``<out>/estimator``) and writes ``<out>/samples.png`` and ``<out>/run.json`` (flags, steps,
wall time, final losses, ms per step, the declared update schedule). Impossible requests
raise :class:`TrainingSetupError` before anything is written.

Several machines (``--strategy multi_worker``): every worker runs the same command with its
own ``TF_CONFIG`` (``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type":
"worker", "index": i}}``). All workers take part in every step, checkpoint and export (the
saves are collective), but only the chief (worker 0, or the ``chief`` task) writes into
``--out``; the others write into a temporary folder that is deleted at the end, as
TensorFlow's multi-worker guide recommends. With ``--resume`` every worker restores the
chief's newest checkpoint from ``--out`` (a folder all workers can read).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import keras
import tensorflow as tf

from tfinverse.training.batch_stream import EpochBatchStream, epoch_seed
from tfinverse.training.checkpointing import (
    OutputFolderError,
    TrainingCheckpoint,
    check_resume_config,
    checkpoint_dir,
    prepare_training_output,
    read_run_config,
    write_run_config,
)
from tfinverse.training.loop import train
from tfinverse.training.flags import (
    PER_INVOCATION_SETTINGS,
    RESUMABLE_SETTINGS,
    STRATEGIES,
    TrainingDefaults,
    TrainingSetupError,
    TrainingSpec,
    add_training_flags,
    parse_training_args,
)
from tfinverse.utils.cli import set_global_seed, summary_writer
from tfinverse.utils.precision import precision_policy, warn_if_xla_on_cpu
from tfinverse.utils.results import atomic_write_text, reported_figure

__all__ = [
    "STRATEGIES",
    "RESUMABLE_SETTINGS",
    "PER_INVOCATION_SETTINGS",
    "TrainingSetupError",
    "TrainingDefaults",
    "TrainingSpec",
    "add_training_flags",
    "parse_training_args",
    "make_strategy",
    "is_chief",
    "describe_source",
    "dataset_factory",
    "run_training",
]

def make_strategy(name: str) -> tf.distribute.Strategy:
    """The distribution strategy of ``--strategy``.

    Args:
      name: ``"default"`` (no distribution), ``"mirrored"`` (all GPUs, or every logical CPU
        device when there is no GPU) or ``"multi_worker"``
        (``tf.distribute.MultiWorkerMirroredStrategy`` over the cluster of the ``TF_CONFIG``
        environment variable; create it before any other TensorFlow work).

    Returns:
      The strategy.

    Raises:
      TrainingSetupError: for an unknown name, or ``multi_worker`` without a usable
        ``TF_CONFIG``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        import os

        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise TrainingSetupError(
                "--strategy multi_worker needs the TF_CONFIG environment variable: "
                '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}'
            )
        try:
            config = json.loads(raw)
            workers = config["cluster"]["worker"]
            config["task"]["type"], int(config["task"]["index"])
        except (ValueError, KeyError, TypeError) as error:
            raise TrainingSetupError(f"TF_CONFIG is not a cluster description ({error!r}): {raw}") from None
        if not workers:
            raise TrainingSetupError("TF_CONFIG lists no worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingSetupError(f"--strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs.

    Args:
      strategy: the run's strategy.

    Returns:
      True without a cluster, for the ``chief`` task, and for worker 0 of a cluster without
      a chief; False for the other workers.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def _source_options(args) -> Dict[str, Any]:
    options = {}
    if getattr(args, "data_dir", None):
        options["data_dir"] = args.data_dir
    if getattr(args, "download", False):
        options["download"] = True
    return options


def describe_source(args) -> Dict[str, Any]:
    """The dataset's own image shape and whether the data layer resizes it.

    Args:
      args: parsed flags (``dataset``, ``image_size``, ``channels``, ``data_dir``).

    Returns:
      ``{"dataset", "source_shape", "training_shape", "resized", "message"}``.

    Raises:
      TrainingSetupError: for an unknown or unavailable dataset.
    """
    from tfinverse import data

    try:
        single = data.load(args.dataset, split="train", batch_size=None, shuffle=False, **_source_options(args))
        first = next(iter(single.take(1)))
    except (KeyError, FileNotFoundError, TypeError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise TrainingSetupError(f"--dataset {args.dataset}: {message}") from None
    if isinstance(first, (tuple, list)):
        raise TrainingSetupError(f"--dataset {args.dataset} yields pairs; GAN training needs a dataset of single images")
    source_shape = [int(d) for d in first.shape]
    training_shape = [int(args.image_size), int(args.image_size), int(args.channels)]
    resized = source_shape != training_shape
    if resized:
        message = (
            f"{args.dataset} images are {source_shape[0]}x{source_shape[1]}x{source_shape[2]}; the data "
            f"layer resizes them to {training_shape[0]}x{training_shape[1]}x{training_shape[2]} "
            f"({data.info(args.dataset).interpolation} interpolation)"
        )
    else:
        message = f"{args.dataset} images are {source_shape[0]}x{source_shape[1]}x{source_shape[2]}, as trained"
    return {
        "dataset": args.dataset,
        "source_shape": source_shape,
        "training_shape": training_shape,
        "resized": resized,
        "message": message,
    }


def dataset_factory(args) -> Callable[[int], tf.data.Dataset]:
    """The run's ``epoch -> dataset`` of training batches (see :class:`EpochBatchStream`).

    Each epoch is the ``train`` split of ``--dataset`` at ``--image-size`` and
    ``--channels``, shuffled with :func:`epoch_seed` of ``--seed``, in global batches of
    ``--batch-size`` (the last incomplete batch dropped, so every step has the same shape).

    Args:
      args: parsed flags.

    Returns:
      The factory.
    """
    from tfinverse import data

    options = _source_options(args)

    def make_dataset(epoch: int) -> tf.data.Dataset:
        return data.load(
            args.dataset,
            split="train",
            image_size=args.image_size,
            channels=args.channels,
            batch_size=args.batch_size,
            shuffle=True,
            seed=epoch_seed(args.seed, epoch),
            drop_remainder=True,
            **options,
        )

    return make_dataset


def _check_common(args) -> None:
    for flag in ("batch_size", "image_size", "num_samples", "keep_checkpoints", "log_every"):
        if getattr(args, flag, 1) < 1:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    for flag in ("sample_every", "checkpoint_every"):
        if getattr(args, flag) < 0:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be >= 0 (0: only at the end), got {getattr(args, flag)}")
    if args.steps is not None and args.steps < 0:
        raise TrainingSetupError(f"--steps must be >= 0, got {args.steps}")
    if hasattr(args, "lr") and not args.lr > 0:
        raise TrainingSetupError(f"--lr must be positive, got {args.lr}")


def _settings(args) -> Dict[str, Any]:
    return {key: value for key, value in sorted(vars(args).items()) if isinstance(value, (str, int, float, bool, type(None)))}


def _write_json(path: Path, payload: Dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n", overwrite=True)


def _finite_or_text(value: float):
    return value if math.isfinite(value) else str(value)


def _export_generator(trainer, out_dir: Path, metadata: Dict[str, Any], args) -> Dict[str, Any]:
    """The default export: the generator as a hub SavedModel in ``<out>/generator``."""
    from tfinverse import hub

    exported = hub.export_generator(
        trainer.generator,
        str(out_dir / "generator"),
        overwrite=True,
        extra_metadata={**metadata, "dataset": args.dataset},
    )
    return {
        "generator_export": str(out_dir / "generator"),
        "generator_output_shape": list(exported["resolution"]) + [exported["channels"]],
    }


def _distributed_factory(factory, strategy_name: str):
    if strategy_name != "multi_worker":
        return factory
    # Our pipelines are not file-based: each worker reads the global batch and keeps its share.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return lambda epoch: factory(epoch).with_options(options)


def run_training(args: argparse.Namespace, spec: TrainingSpec, argv=None) -> Dict[str, Any]:
    """Runs one complete training run as described in the module docstring.

    Args:
      args: flags parsed by :func:`parse_training_args` from a parser with
        :func:`add_training_flags` and the script's own flags.
      spec: how to validate the flags, build, feed and export the trainer.
      argv: the command line, recorded in ``run.json`` and in the export.

    Returns:
      The contents of ``run.json`` (this worker's, under ``multi_worker``).

    Raises:
      TrainingSetupError: for impossible settings, an unusable output folder, settings that
        differ from the resumed run, or unavailable data.
    """
    run_started = time.perf_counter()
    _check_common(args)
    spec.validate(args)
    # First TensorFlow work of the run: MultiWorkerMirroredStrategy must come before any other.
    strategy = make_strategy(args.strategy)
    replicas = int(strategy.num_replicas_in_sync)
    chief = is_chief(strategy)
    if args.jit_compile and replicas > 1 and not tf.config.list_logical_devices("GPU"):
        raise TrainingSetupError(
            f"--jit-compile with --strategy {args.strategy} needs GPUs: XLA cannot run one step across "
            "several logical CPU devices; drop one of the two flags"
        )
    if args.batch_size % replicas:
        raise TrainingSetupError(
            f"--batch-size {args.batch_size} must be divisible by the {replicas} replicas of --strategy {args.strategy}"
        )
    source = (spec.describe_data or describe_source)(args)
    settings = {**_settings(args), **(spec.derived_settings(args) if spec.derived_settings else {})}
    requested_out = Path(args.out)
    scratch = None
    try:
        if chief:
            out_dir = prepare_training_output(args.out, args.resume, args.overwrite)
            if args.resume:
                check_resume_config(out_dir, settings, RESUMABLE_SETTINGS)
        else:
            # Another worker: everything it must write goes to a folder deleted at the end.
            scratch = Path(tempfile.mkdtemp(prefix="tfinverse_worker_"))
            out_dir = scratch / "out"
            out_dir.mkdir()
    except OutputFolderError as error:
        raise TrainingSetupError(str(error)) from None
    try:
        return _run(args, spec, argv, strategy, replicas, chief, source, settings, out_dir, requested_out, run_started)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(args, spec, argv, strategy, replicas, chief, source, settings, out_dir, requested_out, run_started):
    print(source["message"], flush=True)
    log_dir = args.log_dir if chief else str(out_dir / "logs")
    warn_if_xla_on_cpu(args.jit_compile)
    with precision_policy(args.precision):
        set_global_seed(args.seed)

        with strategy.scope():
            trainer = spec.build_trainer(args)
        factory = _distributed_factory((spec.make_dataset or dataset_factory)(args), args.strategy)
        batches = EpochBatchStream(factory, strategy if args.strategy != "default" else None)
        finish_batches = None
        if spec.finish_dataset is not None:
            finish_batches = iter(spec.finish_dataset(args))
        checkpoint = TrainingCheckpoint(
            checkpoint_dir(out_dir),
            {**trainer.checkpoint_items(), **batches.checkpoint_items()},
            max_to_keep=args.keep_checkpoints,
        )
        restored = None
        if args.resume:
            try:
                if chief:
                    restored = checkpoint.restore_latest()
                else:  # the chief's newest checkpoint; this worker saves into its own folder
                    restored = checkpoint.restore_from(checkpoint_dir(requested_out))
            except AssertionError as error:
                raise TrainingSetupError(f"--resume: the checkpoint does not match the model: {error}") from None
            trainer.after_restore()
            batches.reset_iterator()
            print(f"resumed from {restored} at step {int(trainer.step.numpy())}", flush=True)
        elif chief:
            write_run_config(out_dir, settings)
            if spec.write_metadata is not None:
                spec.write_metadata(args, checkpoint_dir(out_dir), settings, trainer)

        steps = args.steps
        if steps is None:
            cardinality = int(batches.dataset_for_epoch(0).cardinality())
            steps = spec.default_steps(args, cardinality if cardinality > 0 else None)
        if int(trainer.step.numpy()) >= steps:
            print(f"the run is already at step {int(trainer.step.numpy())} >= --steps {steps}; nothing to train", flush=True)

        fixed_samples = trainer.fixed_sample_inputs(args.num_samples, args.seed)
        writer = summary_writer(log_dir)
        summary = train(
            trainer,
            batches,
            steps,
            global_batch_size=args.batch_size,
            strategy=strategy,
            jit_compile=args.jit_compile,
            writer=writer,
            checkpoint=checkpoint,
            checkpoint_every=args.checkpoint_every,
            sample_every=args.sample_every,
            sample_dir=out_dir / "samples",
            fixed_samples=fixed_samples,
            log_every=args.log_every,
            show_progress=args.progress or sys.stderr.isatty(),
            description=spec.name,
            finish_batches=finish_batches,
        )
        writer.close()

        command = list(sys.argv if argv is None else ["scripts/train_" + spec.name + ".py", *argv])
        metadata = {"model": spec.name, "steps": summary.final_step, "seed": args.seed, "command": command}
        exported = (spec.export or _export_generator)(trainer, out_dir, metadata, args)
        run = {
            "model": spec.name,
            "command": command,
            "flags": _settings(args),
            "settings": settings,
            "steps": summary.final_step,
            "start_step": summary.start_step,
            "resumed_from": restored,
            "wall_time_seconds": round(summary.wall_time_seconds, 3),
            "total_wall_time_seconds": round(time.perf_counter() - run_started, 3),
            "ms_per_step": None if summary.ms_per_step is None else round(summary.ms_per_step, 3),
            "compiled_step_functions": summary.traces,
            "final_losses": {name: _finite_or_text(value) for name, value in summary.final_metrics.items()},
            "final_scalars": {name: _finite_or_text(value) for name, value in trainer.log_scalars().items()},
            "optimizer_iterations": trainer.optimizer_iterations(),
            "update_schedule": trainer.describe_schedule(),
            "finish": summary.finish_report,
            "strategy": args.strategy,
            "replicas": replicas,
            "per_replica_batch_size": args.batch_size // replicas,
            "data": {key: source[key] for key in source if key != "message"},
            "data_position": {"epoch": batches.position[0], "batch_in_epoch": batches.position[1]},
            "checkpoint": checkpoint.latest,
            **exported,
            "dtype_policy": keras.mixed_precision.global_policy().name,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _write_json(out_dir / "run.json", run)
        # The figure after the run's record: a sample grid that fails costs no results.
        with reported_figure(out_dir / "samples.png"):
            trainer.write_sample_grid(out_dir / "samples.png", fixed_samples)
        return run
