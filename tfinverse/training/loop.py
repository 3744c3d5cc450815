"""The one training loop of every trainer: an explicit loop over a ``tf.function``-compiled step.

Any :class:`~tfinverse.training.trainer.Trainer` runs on it (DCGAN, BEGAN, PGGAN, igan):
before each step the loop asks the trainer for the step's plan
(:meth:`~tfinverse.training.trainer.Trainer.plan_step`), draws as many batches as the plan
needs (igan: two when a discriminator round is due, one otherwise) and runs the step
compiled for that plan.

Why an explicit loop rather than ``keras.Model.fit``: a GAN run needs things ``fit`` does not
model well, and all of them are plain Python here:

* PGGAN grows between steps and needs a *new* compiled step per level (``level`` is read at
  trace time); igan's steps with and without a discriminator round take different numbers of
  batches; the loop keeps one compiled function per (:meth:`Trainer.trace_key`, plan).
* Exact resumption: the step counter, the optimizers and the data position
  (:class:`~tfinverse.training.batch_stream.EpochBatchStream`) are restored and the loop
  carries on from that step; ``fit`` restarts its own data iterator and epoch count.
* Step-based, not epoch-based, sampling, logging and checkpointing from a fixed latent batch.
* ``tf.distribute`` (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``): the step is
  ``strategy.run(trainer.train_step, ...)`` on a distributed batch, with metrics reduced
  across replicas.

The trainers still follow the Keras contract (``compile``, ``train_step``, ``metrics``), so
they also work with ``fit`` for quick experiments, but the scripts always use this loop.

``jit_compile=True`` compiles the per-replica step with XLA (as Keras does), the outer
function that distributes it stays a plain ``tf.function``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from tfinverse.training.checkpointing import TrainingCheckpoint
from tfinverse.training.samples import save_sample_grid, tile_images
from tfinverse.training.trainer import Trainer
from tfinverse.utils.cli import progress, summary_images, summary_scalar
from tfinverse.utils.precision import warn_if_xla_on_cpu
from tfinverse.utils.results import reported_figure

__all__ = ["TrainingSummary", "compile_train_step", "tile_images", "save_sample_grid", "train"]


@dataclass
class TrainingSummary:
    """What :func:`train` did.

    Attributes:
      start_step: the step counter when the loop started (non-zero when resumed).
      final_step: the step counter at the end.
      wall_time_seconds: time spent in the loop.
      ms_per_step: mean time of a compiled step, excluding calls that traced a new function.
      final_metrics: the trackers' means over the last logging interval.
      traces: how many step functions were compiled (PGGAN: one per level visited).
      checkpoints: checkpoint prefixes written.
      sample_files: sample grids written.
      history: ``(step, values)`` of every logging point: the trackers' interval means and
        ``trainer.log_scalars()`` (learning rates, PGGAN level and alpha of that step).
      finish_report: what ``trainer.finish_training`` reported (igan: the batch-norm
        recalibration), or None.
    """

    start_step: int
    final_step: int
    wall_time_seconds: float = 0.0
    ms_per_step: Optional[float] = None
    final_metrics: Dict[str, float] = field(default_factory=dict)
    traces: int = 0
    checkpoints: List[str] = field(default_factory=list)
    sample_files: List[str] = field(default_factory=list)
    history: List[tuple] = field(default_factory=list)
    finish_report: Optional[Dict[str, object]] = None


def compile_train_step(
    trainer: Trainer,
    strategy: Optional[tf.distribute.Strategy] = None,
    jit_compile: bool = False,
    run_eagerly: bool = False,
) -> Callable:
    """A compiled function ``batch -> metrics`` running one ``train_step`` on every replica.

    Args:
      trainer: a compiled :class:`Trainer` (built under ``strategy.scope()``).
      strategy: the distribution strategy (default: the current one).
      jit_compile: compile the per-replica step with XLA.
      run_eagerly: do not compile at all (for debugging, and cheaper than tracing when only
        a handful of steps of a tiny model run).

    Returns:
      A ``tf.function`` (a plain function with ``run_eagerly``) taking a (distributed) batch
      and returning the trackers' results, averaged over replicas, as scalar tensors.

    Raises:
      ValueError: for ``jit_compile`` together with ``run_eagerly``.
    """
    if jit_compile and run_eagerly:
        raise ValueError("jit_compile and run_eagerly exclude each other")
    strategy = strategy or tf.distribute.get_strategy()
    warn_if_xla_on_cpu(jit_compile)
    replica_step = tf.function(trainer.train_step, jit_compile=True) if jit_compile else trainer.train_step

    def distributed_step(batch):
        outputs = strategy.run(replica_step, args=(batch,))
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in outputs.items()
        }

    return distributed_step if run_eagerly else tf.function(distributed_step)


def _to_floats(logs) -> Dict[str, float]:
    return {name: float(np.asarray(value)) for name, value in logs.items()}


def _draw(batches, count: int):
    """One batch, or a tuple of ``count`` successive batches (a step's sub-batches)."""
    if count == 1:
        return next(batches)
    return tuple(next(batches) for _ in range(count))


def train(
    trainer: Trainer,
    batches,
    total_steps: int,
    *,
    global_batch_size: int,
    strategy: Optional[tf.distribute.Strategy] = None,
    jit_compile: bool = False,
    run_eagerly: bool = False,
    writer: Optional[tf.summary.SummaryWriter] = None,
    checkpoint: Optional[TrainingCheckpoint] = None,
    checkpoint_every: int = 0,
    sample_every: int = 0,
    sample_dir=None,
    fixed_samples=None,
    fixed_latents=None,
    log_every: int = 50,
    show_progress: bool = False,
    description: str = "training",
    finish_batches=None,
) -> TrainingSummary:
    """Runs ``trainer.train_step`` until its step counter reaches ``total_steps``.

    The loop starts at the trainer's current step (a restored checkpoint resumes). Before
    each step it calls ``trainer.prepare_step(step, images_seen)`` (PGGAN grows there), asks
    ``trainer.plan_step()`` for the step's plan, draws the plan's sub-batches from
    ``batches`` and runs the step function compiled for ``(trainer.trace_key(), plan)``.
    Every ``log_every`` steps it writes the trackers' interval means and
    ``trainer.log_scalars()`` to TensorBoard, then resets the trackers. Every
    ``sample_every`` steps it saves ``sample_dir/step_<step>.png`` and a TensorBoard image
    from ``fixed_samples``; every ``checkpoint_every`` steps it saves a checkpoint. After
    the last step it calls ``trainer.finish_training(finish_batches)`` (igan re-estimates
    its batch-norm statistics there) and saves the final checkpoint (rewriting
    ``ckpt-<step>`` when the finish changed the state).

    Args:
      trainer: a compiled :class:`~tfinverse.training.trainer.Trainer`.
      batches: an iterator of (distributed) batches, e.g. an ``EpochBatchStream``.
      total_steps: the step count to reach (not the number of steps to run).
      global_batch_size: samples per batch over all replicas (for PGGAN's image count).
      strategy: distribution strategy the trainer was built under (default: current).
      jit_compile: XLA-compile the per-replica step.
      run_eagerly: run the steps without ``tf.function`` (see :func:`compile_train_step`).
      writer: TensorBoard writer (None: no summaries).
      checkpoint: where to save (None: no checkpoints).
      checkpoint_every: period in steps (0: only at the end).
      sample_every: period of sample grids in steps (0: only at the end, if ``sample_dir``).
      sample_dir: folder of the PNG grids (None: no PNGs).
      fixed_samples: the inputs of every sample grid, from
        ``trainer.fixed_sample_inputs`` (None: no samples).
      fixed_latents: the former name of ``fixed_samples`` (GAN latents).
      log_every: logging period in steps (>= 1).
      show_progress: force the progress bar on (it is shown anyway on a terminal).
      description: progress-bar label.
      finish_batches: further batches for ``trainer.finish_training`` (not the training
        stream, so that a resumed run sees the same training batches); None: none.

    Returns:
      A :class:`TrainingSummary`.

    Raises:
      ValueError: for ``total_steps < 0``, ``log_every < 1``, negative periods or a
        non-positive batch size.
      RuntimeError: if the trainer was not compiled.
    """
    if int(total_steps) < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    if int(log_every) < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    if int(checkpoint_every) < 0 or int(sample_every) < 0:
        raise ValueError("checkpoint_every and sample_every must be >= 0 (0: only at the end)")
    if int(global_batch_size) < 1:
        raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
    if fixed_samples is None:
        fixed_samples = fixed_latents
    trainer.require_compiled()
    strategy = strategy or tf.distribute.get_strategy()
    total_steps = int(total_steps)
    step = int(trainer.step.numpy())
    summary = TrainingSummary(start_step=step, final_step=step)
    compiled: Dict[object, Callable] = {}
    step_times: List[float] = []
    last_logs = None

    def write_scalars(values: Dict[str, float], at_step: int) -> None:
        if writer is None:
            return
        with writer.as_default():
            for name, value in values.items():
                summary_scalar(name, value, step=at_step)
        writer.flush()

    def write_samples(at_step: int, path: Optional[Path]) -> None:
        if fixed_samples is None:
            return
        if path is not None:
            with reported_figure(path):  # a sample grid that cannot be written never stops training
                summary.sample_files.append(str(trainer.write_sample_grid(path, fixed_samples)))
        if writer is not None:
            images = trainer.sample_summaries(fixed_samples)
            if images:
                with writer.as_default():
                    for tag, image in images.items():
                        summary_images(tag, np.asarray(image)[None], step=at_step, max_outputs=1)

    bar = progress(total=total_steps, initial=min(step, total_steps), desc=description, force=show_progress)
    started = time.perf_counter()
    last_saved = None
    try:
        while step < total_steps:
            trainer.prepare_step(step, step * int(global_batch_size))
            plan = trainer.plan_step()
            # The plan is read while tracing (like PGGAN's level): one function per plan.
            trainer.active_plan = plan
            key = (trainer.trace_key(), plan.key)
            traced_now = key not in compiled
            if traced_now:
                compiled[key] = compile_train_step(trainer, strategy, jit_compile, run_eagerly)
                summary.traces += 1
            batch = _draw(batches, plan.num_batches)
            tick = time.perf_counter()
            last_logs = compiled[key](batch)
            if not traced_now:
                step_times.append(time.perf_counter() - tick)
            step += 1
            bar.update(1)
            if step % int(log_every) == 0 or step == total_steps:
                values = _to_floats(last_logs)
                scalars = trainer.log_scalars()
                summary.history.append((step, {**values, **scalars}))
                summary.final_metrics = values
                write_scalars({**{f"train/{name}": value for name, value in values.items()}, **scalars}, step)
                for at_step, dated in trainer.dated_scalars():
                    write_scalars(dated, at_step)
                for tracker in trainer.metrics:
                    tracker.reset_state()
                bar.set_postfix({name: f"{value:.3g}" for name, value in list(values.items())[:3]})
            if sample_every and step % int(sample_every) == 0:
                path = None if sample_dir is None else Path(sample_dir) / f"step_{step:07d}.png"
                write_samples(step, path)
            if checkpoint is not None and checkpoint_every and step % int(checkpoint_every) == 0:
                summary.checkpoints.append(checkpoint.save(step))
                last_saved = step
    finally:
        bar.close()
        trainer.active_plan = None
    # Before the final checkpoint, so that checkpoint and export hold the same state.
    summary.finish_report = trainer.finish_training(finish_batches) if step > 0 else None
    for at_step, dated in trainer.dated_scalars():
        write_scalars(dated, at_step)
    changed = summary.finish_report is not None
    if checkpoint is not None and step > 0 and ((last_saved != step and step > summary.start_step) or changed):
        path = checkpoint.save(step)  # rewrites ckpt-<step> after a finish that changed the state
        if path not in summary.checkpoints:
            summary.checkpoints.append(path)
    if sample_dir is not None and fixed_samples is not None and (not sample_every or step % int(sample_every)):
        if step > summary.start_step:
            write_samples(step, Path(sample_dir) / f"step_{step:07d}.png")
    summary.final_step = step
    summary.wall_time_seconds = time.perf_counter() - started
    summary.ms_per_step = 1000.0 * float(np.mean(step_times)) if step_times else None
    return summary
