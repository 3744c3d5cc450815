#!/usr/bin/env python
"""Trains igan (adversarial parameter estimation) on one of its tasks.

The flags mirror the original's configuration (``initializer.py``): task
``unmixing_mnist_cifar``, GAN model vanilla, batch 8, the task's iteration budget counted in
generator steps (10000; 120000 for unmixing_mnist_mnist), random dual mapping on, paired
loss off, a sample grid every 20 generator steps and a checkpoint every 500. ``--short``
uses the task's short schedule (under 10 minutes on 2 CPU cores).

Writes into ``--out``::

    samples/<step>.png        input y | estimated component z | estimated x | true x
    checkpoints/              ckpt-<step> (newest 3) and igan.json (task and run settings)
    estimator/                SavedModel, signature y -> {"component", "clean"}
    logs/                     TensorBoard scalars (losses, mm) and sample images
    run.json                  settings, data sources, timing, final losses

``--resume`` continues the run in ``--out`` (same settings required; the budget, logging
intervals and --jit-compile may change) with the same generator-step count and ``mm``
state. The resumed data stream is seeded with (seed, step), so it differs from the batches
an uninterrupted run would have drawn.

Examples::

    python scripts/train_igan.py --task denoising --short --out runs/igan_denoising
    python scripts/train_igan.py --task unmixing_mnist_mnist --gan-model ls --paired-loss
    python scripts/train_igan.py --task derain --data-dir /data/rain --out runs/derain
    python scripts/train_igan.py --out runs/igan_denoising --task denoising --short --resume
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

# Settings a resumed run may change; every other stored setting must match.
RESUMABLE = ("max_iters", "short", "sample_every", "checkpoint_every", "max_checkpoints", "jit_compile", "log_dir")


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags."""
    from tfinverse.tasks import TASK_NAMES
    from tfinverse.utils.cli import add_common_flags

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="unmixing_mnist_cifar", choices=TASK_NAMES, help="the igan task")
    parser.add_argument(
        "--task-option", action="append", default=[], metavar="NAME=VALUE",
        help="a data option of the task (repeatable), e.g. noise_std=0.5 or variant=banana",
    )
    parser.add_argument("--gan-model", default="vanilla", choices=("vanilla", "ls", "wgan"), help="GAN losses")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per batch")
    parser.add_argument(
        "--max-iters", type=int, default=None,
        help="generator steps in total (default: the task's, 10000; 120000 for unmixing_mnist_mnist)",
    )
    parser.add_argument("--short", action="store_true", help="use the task's short schedule (under 10 min on 2 cores)")
    parser.add_argument(
        "--dual-mapping", action=argparse.BooleanOptionalAction, default=True,
        help="random dual mapping with the observation discriminator D2",
    )
    parser.add_argument("--paired-loss", action="store_true", help="add the supervised loss 1000 mean|X_gen - X|")
    parser.add_argument("--g-learning-rate", type=float, default=None, help="default: the original's (5e-5)")
    parser.add_argument(
        "--d-learning-rate", type=float, default=None, help="default: the original's (5e-6; 5e-5 for ls)"
    )
    parser.add_argument("--sample-every", type=int, default=20, help="generator steps between sample grids")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="generator steps between checkpoints")
    parser.add_argument("--max-checkpoints", type=int, default=3, help="checkpoints kept")
    parser.add_argument("--checkpoint-dir", default=None, help="default: <out>/checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --checkpoint-dir")
    parser.add_argument("--jit-compile", action="store_true", help="compile the training steps with XLA")
    add_common_flags(parser, out_default="results/igan")
    return parser


def _run_settings(args, task) -> dict:
    return {
        "task": task.name,
        "task_options": dict(task.options),
        "gan_model": args.gan_model,
        "batch_size": args.batch_size,
        "dual_mapping": args.dual_mapping,
        "paired_loss": args.paired_loss,
        "g_learning_rate": args.g_learning_rate,
        "d_learning_rate": args.d_learning_rate,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "max_iters": args.max_iters,
        "short": args.short,
        "sample_every": args.sample_every,
        "checkpoint_every": args.checkpoint_every,
        "max_checkpoints": args.max_checkpoints,
        "jit_compile": args.jit_compile,
        "log_dir": args.log_dir,
    }


def _prepare_folders(args, out: Path, checkpoint_dir: Path, settings: dict) -> None:
    """Applies the folder policy; raises ValueError with the flag to pass."""
    import tensorflow as tf

    from tfinverse.models.igan import read_igan_metadata
    from tfinverse.utils.cli import prepare_output_dir

    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    existing = tf.train.latest_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if args.resume:
        if existing is None:
            raise ValueError(f"--resume: there is no checkpoint in {checkpoint_dir}")
        stored = (read_igan_metadata(checkpoint_dir) or {}).get("run")
        if stored is None:
            raise ValueError(f"--resume: {checkpoint_dir}/igan.json is missing, so the settings cannot be checked")
        differences = [
            f"--{key.replace('_', '-')}: {stored.get(key)!r} -> {settings.get(key)!r}"
            for key in sorted(set(stored) | set(settings))
            if key not in RESUMABLE and stored.get(key) != settings.get(key)
        ]
        if differences:
            raise ValueError("--resume with settings that differ from the stored run: " + "; ".join(differences))
        out.mkdir(parents=True, exist_ok=True)
        return
    if existing is not None:
        if not args.overwrite:
            raise ValueError(
                f"{checkpoint_dir} holds the checkpoint of another run; pass --resume to continue it, "
                "--overwrite to start afresh (its checkpoints are deleted), or choose another --out"
            )
        shutil.rmtree(checkpoint_dir)
    prepare_output_dir(out, args.overwrite)


def run(args, argv=None) -> dict:
    """Trains as the parsed flags say and returns the contents of ``run.json``."""
    import numpy as np

    from tfinverse.models.igan import (
        IGAN_METADATA_FILE,
        build_discriminators_for_task,
        build_estimator_for_task,
        task_metadata,
    )
    from tfinverse.tasks.igan_tasks import data_sources, get_task, training_batches
    from tfinverse.training.igan import IGAN, igan_optimizers, train_igan
    from tfinverse.utils.cli import set_global_seed
    from tfinverse.utils.results import atomic_write_text

    from tfinverse.utils.cli import parse_name_values
    task = get_task(args.task, **parse_name_values(args.task_option))
    for flag in ("batch_size", "max_checkpoints"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    for flag in ("sample_every", "checkpoint_every"):
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.max_iters is not None and args.max_iters < 0:
        raise ValueError(f"--max-iters must be >= 0, got {args.max_iters}")
    budget = args.max_iters if args.max_iters is not None else (task.short_iters if args.short else task.max_iters)

    def stream(start_step: int):
        # A resumed run draws a new stream, seeded by (seed, step).
        seed = args.seed if start_step == 0 else int(np.random.SeedSequence([args.seed, start_step]).generate_state(1)[0])
        return training_batches(task, batch_size=args.batch_size, seed=seed, data_dir=args.data_dir)

    batches = stream(0)  # fails early (missing data folder) before anything is written
    out = Path(args.out)
    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else out / "checkpoints"
    settings = _run_settings(args, task)
    _prepare_folders(args, out, checkpoint_dir, settings)

    set_global_seed(args.seed)
    estimator = build_estimator_for_task(task, seed=args.seed)
    d1, d2 = build_discriminators_for_task(task, seed=args.seed + 1)
    model = IGAN(
        estimator,
        d1,
        d2 if args.dual_mapping else None,
        dual_mapping=args.dual_mapping,
        paired=args.paired_loss,
        paired_loss_min_over_permutations=task.paired_loss_min_over_permutations,
    )
    model.compile(
        *igan_optimizers(args.gan_model, args.g_learning_rate, args.d_learning_rate),
        gan_model=args.gan_model,
        jit_compile=args.jit_compile,
    )
    if not args.resume:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        metadata = dict(task_metadata(task), kind=estimator.kind, run=settings)
        atomic_write_text(checkpoint_dir / IGAN_METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True) + "\n",
                          overwrite=True)

    sources = data_sources(task, args.data_dir)
    print(f"igan {task.name}: {', '.join(f'{k} from {v}' for k, v in sources.items())}", flush=True)

    start_step = 0
    if args.resume:
        from tfinverse.training.checkpointing import TrainingCheckpoint

        try:
            restored = TrainingCheckpoint(checkpoint_dir, model.checkpoint_items()).restore_latest()
        except (AssertionError, ValueError) as error:
            raise ValueError(f"--resume: the checkpoint does not match task {task.name}: {error}") from None
        start_step = int(model.generator_steps.numpy())
        print(f"resumed from {restored} at generator step {start_step} (mm {int(model.mm.numpy())})", flush=True)
        batches = stream(start_step)

    started = time.time()
    summary = train_igan(
        model,
        batches,
        budget,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        max_checkpoints=args.max_checkpoints,
        sample_dir=out / "samples",
        sample_every=args.sample_every,
        log_dir=args.log_dir,
        resume=False,  # restored above, before the data stream was chosen
    )
    export_dir = model.export(out / "estimator", overwrite=True, task_options=dict(task.options))
    report = {
        "command": " ".join(["train_igan.py", *(argv if argv is not None else sys.argv[1:])]),
        "task": task.name,
        "task_description": task.description,
        "data_sources": sources,
        "settings": settings,
        "max_generator_steps": budget,
        "start_step": summary.start_step,
        "final_step": summary.final_step,
        "discriminator_rounds": summary.discriminator_rounds,
        "schedule": model.schedule_state(),
        "wall_time_seconds": round(time.time() - started, 3),
        "ms_per_generator_step": summary.ms_per_generator_step,
        "final_logs": {k: (v if math.isfinite(v) else str(v)) for k, v in summary.final_logs.items()},
        "checkpoints": summary.checkpoints,
        "estimator_savedmodel": str(export_dir),
    }
    atomic_write_text(out / "run.json", json.dumps(report, indent=2, default=str) + "\n", overwrite=True)
    ms = summary.ms_per_generator_step
    print(
        f"trained {summary.final_step - summary.start_step} generator steps "
        f"({summary.discriminator_rounds} discriminator rounds) in {summary.wall_time_seconds:.1f} s"
        + (f", {ms:.0f} ms per generator step" if ms else "")
        + f"; SavedModel in {export_dir}",
        flush=True,
    )
    return report


def main(argv=None) -> int:
    from tfinverse.utils.cli import parse_common_args

    parser = build_parser()
    args = parse_common_args(parser, argv)  # before anything heavy: --help and flag errors answer at once
    from tfinverse.data import DatasetUnavailableError

    try:
        run(args, argv)
    except (ValueError, DatasetUnavailableError, FileExistsError) as error:
        raise SystemExit(f"error: {error}") from None
    return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
