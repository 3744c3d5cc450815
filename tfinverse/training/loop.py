"""The training loop shared by every GAN: an explicit loop over a ``tf.function``-compiled step.

Why an explicit loop rather than ``keras.Model.fit``: a GAN run needs things ``fit`` does not
model well, and all of them are plain Python here:

* PGGAN grows between steps and needs a *new* compiled step per level (``level`` is read at
  trace time); the loop keeps one compiled function per :meth:`GANTrainer.trace_key`.
* Exact resumption: the step counter, the optimizers and the data position
  (:class:`~tfinverse.training.batch_stream.EpochBatchStream`) are restored and the loop
  carries on from that step; ``fit`` restarts its own data iterator and epoch count.
* Step-based, not epoch-based, sampling, logging and checkpointing from a fixed latent batch.
* ``tf.distribute``: the step is ``strategy.run(trainer.train_step, ...)`` on a distributed
  batch, with metrics reduced across replicas.

The trainers still follow the Keras contract (``compile``, ``train_step``, ``metrics``), so
they also work with ``fit`` for quick experiments, but the scripts always use this loop.

``jit_compile=True`` compiles the per-replica step with XLA (as Keras does), the outer
function that distributes it stays a plain ``tf.function``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from tfinverse.training.checkpointing import TrainingCheckpoint
from tfinverse.training.gan_trainer import GANTrainer
from tfinverse.utils.cli import progress, summary_images, summary_scalar
from tfinverse.utils.results import reported_figure
from tfinverse.utils.results import save_image_grid
from tfinverse.utils.precision import warn_if_xla_on_cpu

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


def compile_train_step(
    trainer: GANTrainer,
    strategy: Optional[tf.distribute.Strategy] = None,
    jit_compile: bool = False,
    run_eagerly: bool = False,
) -> Callable:
    """A compiled function ``batch -> metrics`` running one ``train_step`` on every replica.

    Args:
      trainer: a compiled :class:`GANTrainer` (built under ``strategy.scope()``).
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


def tile_images(images: np.ndarray, columns: Optional[int] = None) -> np.ndarray:
    """Tiles ``[n, H, W, C]`` images into one ``[rows * H, columns * W, C]`` mosaic (blank
    cells are black).

    Args:
      images: a batch of images.
      columns: images per row (default: ``ceil(sqrt(n))``).

    Returns:
      The mosaic.

    Raises:
      ValueError: for a batch that is not ``[n, H, W, C]`` with ``n >= 1``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images must have shape [n, H, W, C] with n >= 1, got {images.shape}")
    count, height, width, channels = images.shape
    columns = int(columns or math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    mosaic = np.zeros((rows * height, columns * width, channels), images.dtype)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        mosaic[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return mosaic


def save_sample_grid(path, images: np.ndarray, overwrite: bool = True) -> Path:
    """Writes a batch of samples as an about square PNG grid, pixels enlarged.

    Args:
      path: the ``.png`` file.
      images: ``[n, H, W, C]`` in ``[0, 1]`` (clipped).
      overwrite: replace an existing file (a resumed run redraws the same steps).

    Returns:
      ``path`` as a :class:`pathlib.Path`.
    """
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    columns = int(math.ceil(math.sqrt(len(images))))
    rows = [list(images[start : start + columns]) for start in range(0, len(images), columns)]
    return save_image_grid(path, rows, min_cell_size=64, padding=2, overwrite=overwrite)


def _to_floats(logs) -> Dict[str, float]:
    return {name: float(np.asarray(value)) for name, value in logs.items()}


def train(
    trainer: GANTrainer,
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
    fixed_latents=None,
    log_every: int = 50,
    show_progress: bool = False,
    description: str = "training",
) -> TrainingSummary:
    """Runs ``trainer.train_step`` until its step counter reaches ``total_steps``.

    The loop starts at the trainer's current step (a restored checkpoint resumes), calls
    ``trainer.prepare_step(step, images_seen)`` before each step (PGGAN grows there), picks
    or compiles the step function for ``trainer.trace_key()``, and every ``log_every`` steps
    writes the trackers' interval means (losses; BEGAN's ``k_t`` and ``M_global``) and
    ``trainer.log_scalars()`` (learning rates; PGGAN's ``alpha``, level and resolution) to
    TensorBoard, then resets the trackers. Every
    ``sample_every`` steps it saves ``sample_dir/step_<step>.png`` and a TensorBoard image from
    ``fixed_latents``; every ``checkpoint_every`` steps and at the end it saves a checkpoint.

    Args:
      trainer: a compiled :class:`GANTrainer`.
      batches: an iterator of (distributed) batches, e.g. an ``EpochBatchStream``.
      total_steps: the step count to reach (not the number of steps to run).
      global_batch_size: images per step over all replicas (for PGGAN's image count).
      strategy: distribution strategy the trainer was built under (default: current).
      jit_compile: XLA-compile the per-replica step.
      run_eagerly: run the steps without ``tf.function`` (see :func:`compile_train_step`).
      writer: TensorBoard writer (None: no summaries).
      checkpoint: where to save (None: no checkpoints).
      checkpoint_every: period in steps (0: only at the end).
      sample_every: period of sample grids in steps (0: only at the end, if ``sample_dir``).
      sample_dir: folder of the PNG grids (None: no PNGs).
      fixed_latents: the latent batch of every sample grid (None: no samples).
      log_every: logging period in steps (>= 1).
      show_progress: force the progress bar on (it is shown anyway on a terminal).
      description: progress-bar label.

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
        if fixed_latents is None:
            return
        images = trainer.sample(fixed_latents)
        if path is not None:
            with reported_figure(path):  # a sample grid that cannot be written never stops training
                summary.sample_files.append(str(save_sample_grid(path, images)))
        if writer is not None:
            with writer.as_default():
                summary_images("samples", tile_images(images)[None], step=at_step, max_outputs=1)

    bar = progress(total=total_steps, initial=min(step, total_steps), desc=description, force=show_progress)
    started = time.perf_counter()
    last_saved = None
    try:
        while step < total_steps:
            trainer.prepare_step(step, step * int(global_batch_size))
            key = trainer.trace_key()
            traced_now = key not in compiled
            if traced_now:
                compiled[key] = compile_train_step(trainer, strategy, jit_compile, run_eagerly)
                summary.traces += 1
            batch = next(batches)
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
    if checkpoint is not None and last_saved != step and step > summary.start_step:
        summary.checkpoints.append(checkpoint.save(step))
    if sample_dir is not None and fixed_latents is not None and (not sample_every or step % int(sample_every)):
        if step > summary.start_step:
            write_samples(step, Path(sample_dir) / f"step_{step:07d}.png")
    summary.final_step = step
    summary.wall_time_seconds = time.perf_counter() - started
    summary.ms_per_step = 1000.0 * float(np.mean(step_times)) if step_times else None
    return summary
