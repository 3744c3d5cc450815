"""IAGAN: image-adaptive generative reconstruction (Abu Hussein, Tirer and Giryes, AAAI 2020).

Starting from a CSGM latent ``z_hat`` and the pre-trained weights ``theta``, IAGAN minimises

    f_IA(theta, z) = ||y - A G_theta(z)||^2

jointly over the latent and the generator weights with Adam and small learning rates
(early stopping by the iteration budget), keeps the pair ``(theta, z)`` with the lowest
objective seen, and returns ``x_IA = G_theta_IA(z_IA)``. Every image gets its own copy of
the weights; the caller's generator is never modified.

Batching. The ``N`` images of a call run in one compiled step: the step holds ``N``
independent copies of the generator (from ``generator.copy()``), each with its own weights,
Adam moments and best-weight snapshot, and all their forward and backward passes, so that
TensorFlow can run the independent sub-graphs concurrently and pays the per-step overhead
once. With ``batched=False``, or when the estimated memory of ``N`` copies exceeds
``max_batched_bytes``, the images run in chunks (chunks of one image with ``batched=False``)
that reuse one set of copies, reset between chunks. Both modes do the same arithmetic per
image, so batching saves per-step overhead but not the per-image weight traffic (every image
reads and updates its own weights and Adam moments): on a 2-core CPU it ran a small prior
(16 x 16 DCGAN, 8 images) about 1.4x faster than sequential runs, and a 5 M-parameter
64 x 64 DCGAN no faster (see ``benchmarks/bench_inversion.py``). Stacking the per-image weights along a
leading axis and vectorising with ``tf.vectorized_map`` was measured too: TensorFlow's
vectorizer has no convolution with per-example filters, falls back to a loop and was several
times slower than the copies on CPU (see ``benchmarks/bench_inversion.py``).

Presets (:data:`IAGAN_PRESETS`, :func:`iagan_preset`) give the paper's learning rates and
iteration counts per prior and task, halved under noise::

    from tfinverse.inversion.iagan import csgm_then_iagan
    csgm_result, iagan_result = csgm_then_iagan(g, A, y, prior="began", task="cs", seed=0)
"""

from __future__ import annotations

import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import InversionResult, check_measurement
from tfinverse.inversion.csgm import (
    CSGM_PRESETS,
    AdamSlots,
    check_generator_operator,
    check_operator_batch,
    compile_step,
    check_positive_int,
    csgm,
    is_per_example_operator,
    measurement_fit,
)
from tfinverse.utils.cli import progress as progress_bar

__all__ = [
    "IAGAN_PRESETS",
    "IAGAN_TASKS",
    "DEFAULT_MAX_BATCHED_BYTES",
    "iagan_preset",
    "estimate_batched_bytes",
    "iagan",
    "csgm_then_iagan",
]

#: The IAGAN paper's settings per (prior, task): Adam learning rates for z and theta and the
#: number of joint iterations (noiseless; :func:`iagan_preset` halves them under noise). The
#: paper gives no iteration count for its deblurring experiment, so there is no preset for it.
IAGAN_PRESETS: Dict[Tuple[str, str], Dict[str, float]] = {
    ("began", "cs"): {"iterations": 600, "lr_z": 1e-4, "lr_theta": 1e-4},
    ("began", "sr"): {"iterations": 500, "lr_z": 1e-4, "lr_theta": 1e-4},
    ("pggan", "cs"): {"iterations": 500, "lr_z": 1e-4, "lr_theta": 1e-3},
    ("pggan", "sr"): {"iterations": 300, "lr_z": 1e-4, "lr_theta": 1e-3},
}

#: Accepted task names and the preset task they map to.
IAGAN_TASKS: Dict[str, str] = {
    "cs": "cs",
    "compressed_sensing": "cs",
    "subsampled_fourier": "cs",
    "fourier": "cs",
    "sr": "sr",
    "super_resolution": "sr",
}

#: Default memory budget of one batched IAGAN chunk (see :func:`estimate_batched_bytes`).
DEFAULT_MAX_BATCHED_BYTES = 4 * 1024**3

# iagan()'s default iteration count, halved by csgm_then_iagan(noisy=True) without a preset.
_DEFAULT_ITERATIONS = 600
# Per image: weights, gradient, two Adam moments and the best-weight snapshot.
_WEIGHT_COPIES_PER_IMAGE = 5
# Rough allowance for stored activations, in multiples of one output image.
_ACTIVATION_IMAGES = 64


def iagan_preset(prior: str, task: str, noisy: bool = False) -> Dict[str, float]:
    """The paper's IAGAN settings for a prior and task.

    Args:
      prior: ``"began"`` or ``"pggan"``.
      task: ``"cs"`` (Gaussian or Fourier compressed sensing) or ``"sr"`` (super-resolution);
        the aliases in :data:`IAGAN_TASKS` are accepted.
      noisy: halve the iterations ("only half of the amount of iterations, to avoid
        overfitting the noise"), rounding down.

    Returns:
      A new dict with ``iterations``, ``lr_z`` and ``lr_theta``, ready for ``iagan(**...)``.

    Raises:
      KeyError: for an unknown prior or task (the message lists the known ones).
    """
    task_key = IAGAN_TASKS.get(str(task).lower())
    key = (str(prior).lower(), task_key)
    if task_key is None or key not in IAGAN_PRESETS:
        raise KeyError(
            f"no IAGAN preset for prior {prior!r} and task {task!r}; priors: began, pggan; "
            f"tasks: {', '.join(sorted(IAGAN_TASKS))}"
        )
    preset = dict(IAGAN_PRESETS[key])
    if noisy:
        preset["iterations"] = max(1, int(preset["iterations"]) // 2)
    preset["iterations"] = int(preset["iterations"])
    return preset


def estimate_batched_bytes(generator, images: int) -> int:
    """A rough estimate of the memory that ``images`` IAGAN copies need together.

    Counts, per image, five copies of the trainable weights (weights, gradient, two Adam
    moments, best snapshot) and an allowance of 64 output images for activations.

    Args:
      generator: the prior.
      images: number of images run together.

    Returns:
      Bytes.
    """
    weight_bytes = sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in generator.trainable_variables)
    image_bytes = 4 * int(np.prod(generator.output_shape))
    return int(images) * (_WEIGHT_COPIES_PER_IMAGE * weight_bytes + _ACTIVATION_IMAGES * image_bytes)


def _check_latents(generator, z_init, batch: int) -> np.ndarray:
    z = np.asarray(z_init.numpy() if isinstance(z_init, (tf.Tensor, tf.Variable)) else z_init)
    if z.dtype.kind != "f":
        raise ValueError(f"z_init must be floating point, got dtype {z.dtype}")
    if z.shape != (batch, generator.latent_dim):
        raise ValueError(
            f"z_init must have shape [{batch}, {generator.latent_dim}] (one latent per image), "
            f"got {list(z.shape)}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("z_init contains NaN or Inf values")
    return z.astype(np.float32)


class _ChunkSolver:
    """Joint (theta, z) Adam for a fixed number of images, one generator copy per image.

    All state lives in variables so that one traced step serves every chunk: ``load``
    resets the copies to the pre-trained weights and sets the chunk's latents and
    measurements.
    """

    def __init__(self, copies, operator, batch: int, lr_z: float, lr_theta: float,
                 run_eagerly: bool, jit_compile: bool):
        self.copies = list(copies)
        self.operator = operator
        self.size = len(self.copies)
        self.batch = batch
        self.lr_z = float(lr_z)
        self.lr_theta = float(lr_theta)
        first = self.copies[0]
        self.weights = [list(c.trainable_variables) for c in self.copies]
        self.slots = [AdamSlots(w) for w in self.weights]
        self.best_weights = [
            [tf.Variable(tf.convert_to_tensor(v), trainable=False) for v in w] for w in self.weights
        ]
        self.z = tf.Variable(tf.zeros([self.size, first.latent_dim]), trainable=False)
        self.z_slots = AdamSlots([self.z])
        self.y = tf.Variable(tf.zeros((self.size,) + tuple(operator.out_shape), operator.dtype), trainable=False)
        self.rows = tf.Variable(tf.zeros([self.size], tf.int32), trainable=False)
        self.steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_fit = tf.Variable(tf.fill([self.size], np.float32(np.inf)), trainable=False)
        self.best_step = tf.Variable(tf.zeros([self.size], tf.int64), trainable=False)
        self.best_z = tf.Variable(tf.zeros([self.size, first.latent_dim]), trainable=False)
        self.best_x = tf.Variable(tf.zeros((self.size,) + tuple(first.output_shape)), trainable=False)
        self.per_example = is_per_example_operator(operator)
        self.step = compile_step(self._step, run_eagerly, jit_compile)
        # Runs once per chunk: eager execution is cheaper than a trace.
        self.evaluate = self._evaluate

    def load(self, initial_weights: Sequence[np.ndarray], z: np.ndarray, y: tf.Tensor, rows: np.ndarray) -> None:
        """Resets the solver to the pre-trained weights and a chunk's latents and measurements."""
        for weights, best, slots in zip(self.weights, self.best_weights, self.slots):
            for variable, snapshot, value in zip(weights, best, initial_weights):
                variable.assign(value)
                snapshot.assign(value)
            slots.reset()
        self.z_slots.reset()
        self.z.assign(z)
        self.y.assign(y)
        self.rows.assign(rows.astype(np.int32))
        self.steps_taken.assign(0)
        self.best_fit.assign(tf.fill([self.size], np.float32(np.inf)))
        self.best_step.assign(tf.zeros([self.size], tf.int64))

    def _fit(self, z):
        # Each copy generates its own image; the operator then sees the whole chunk at once.
        x = tf.concat([c(z[i:i + 1]) for i, c in enumerate(self.copies)], axis=0)
        if self.per_example:
            # Per-example draws are indexed by the image's row in the full batch.
            full = tf.scatter_nd(self.rows[:, None], tf.cast(x, self.operator.dtype),
                                 (self.batch,) + tuple(self.operator.in_shape))
            measured = self.operator(full)
            residual = tf.convert_to_tensor(self.y) - tf.gather(measured, self.rows)
            axes = list(range(1, len(self.operator.out_shape) + 1))
            return tf.cast(tf.reduce_sum(tf.square(residual), axis=axes), tf.float32), x
        return measurement_fit(self.operator, x, tf.convert_to_tensor(self.y)), x

    def _track(self, fit, z, x):
        improved = fit < self.best_fit
        self.best_fit.assign(tf.where(improved, fit, self.best_fit))
        self.best_step.assign(tf.where(improved, self.steps_taken, self.best_step))
        self.best_z.assign(tf.where(improved[:, None], z, self.best_z))
        self.best_x.assign(tf.where(tf.reshape(improved, [-1, 1, 1, 1]), x, self.best_x))
        for index in range(self.size):
            # Snapshot the weights that produced this image only when it improved.
            def snapshot(index=index):
                return tf.group(*[b.assign(w) for b, w in zip(self.best_weights[index], self.weights[index])])

            tf.cond(improved[index], snapshot, tf.no_op)

    def _step(self):
        variables = [v for w in self.weights for v in w]
        with tf.GradientTape() as tape:
            z = tf.convert_to_tensor(self.z)
            tape.watch(z)
            fit, x = self._fit(z)
            total = tf.reduce_sum(fit)
        gradients = tape.gradient(total, [z] + variables)
        self._track(fit, z, x)
        self.steps_taken.assign_add(1)
        self.z_slots.apply([self.z], gradients[:1], self.steps_taken, self.lr_z)
        offset = 1
        for weights, slots in zip(self.weights, self.slots):
            slots.apply(weights, gradients[offset:offset + len(weights)], self.steps_taken, self.lr_theta)
            offset += len(weights)
        return fit

    def _evaluate(self):
        z = tf.convert_to_tensor(self.z)
        fit, x = self._fit(z)
        self._track(fit, z, x)
        return fit


def iagan(
    generator,
    operator,
    y,
    *,
    z_init=None,
    iterations: int = 600,
    lr_z: float = 1e-4,
    lr_theta: float = 1e-4,
    seed=0,
    batched: bool = True,
    max_batched_bytes: int = DEFAULT_MAX_BATCHED_BYTES,
    jit_compile: bool = False,
    progress: bool = True,
    run_eagerly: bool = False,
    return_generators: bool = False,
) -> InversionResult:
    """Image-adaptive reconstruction: Adam on the latent and the generator weights jointly.

    Each iteration evaluates ``||y_i - A G_theta_i(z_i)||^2`` for every image, snapshots
    ``(theta_i, z_i)`` and the image when the value is the lowest so far, then takes one Adam
    step on ``z_i`` (``lr_z``) and ``theta_i`` (``lr_theta``). The weights reached after the
    last step are evaluated too. The generator runs in inference mode, one image per call;
    batch-norm moving statistics are left as they are (the paper's BEGAN and PGGAN have no
    batch norm). A DCGAN built with ``batch_statistics=True`` would normalise every image by
    its own statistics; use ``batch_statistics=False`` with IAGAN.

    Args:
      generator: a :class:`tfinverse.models.Generator` (never modified: every image works
        on weights copied from it with ``generator.copy()``).
      operator: any :class:`tfinverse.operators.LinearOperator`.
      y: ``[N, *operator.out_shape]`` measurements.
      z_init: the start latents ``[N, latent_dim]``, normally CSGM's (``result.latents``);
        when None they are drawn from the prior with ``seed`` (not the paper's setting; see
        :func:`csgm_then_iagan`).
      iterations: joint Adam steps (:func:`iagan_preset` gives the paper's).
      lr_z: Adam learning rate of the latent (1e-4 in the paper).
      lr_theta: Adam learning rate of the weights (1e-4 with BEGAN, 1e-3 with PGGAN).
      seed: seed of the latents drawn when ``z_init`` is None (IAGAN draws nothing else).
      batched: run all images in one compiled step (chunks if ``max_batched_bytes`` says
        so); False runs one image at a time. Both give the same result up to rounding.
      max_batched_bytes: memory budget of one chunk, compared with
        :func:`estimate_batched_bytes`; the chunk size is the largest that fits (at least 1).
      jit_compile: compile the step with XLA.
      progress: show a progress bar (only on a terminal).
      run_eagerly: run the step without ``tf.function`` (debugging, benchmarks).
      return_generators: also return, in ``extras["generators"]``, one adapted generator per
        image holding its best weights (so ``extras["generators"][i](latents[i:i+1])``
        reproduces ``x_hat[i]``); costs a full copy of the weights per image.

    Returns:
      :class:`~tfinverse.inversion.base.InversionResult`: ``x_hat`` ``[N, H, W, C]``
      (``G_theta_best(z_best)`` in [0, 1]), ``latents`` (``z_best``), ``best_objective``
      ``[N]``, ``history`` ``[iterations, N]`` (row ``t``: the objective after ``t + 1``
      joint steps). ``extras``: ``best_iteration`` ``[N]`` (steps taken by the returned
      pair; 0 = the start), ``initial_objective`` ``[N]`` (the objective of the start, i.e.
      CSGM's when ``z_init`` comes from CSGM), ``chunk_size`` (images per compiled step),
      ``mode`` (``"batched"`` or ``"sequential"``) and optionally ``generators``.

    Raises:
      ValueError: for a measurement of the wrong shape or with NaN/Inf (checked first), a
        generator that does not fit the operator, a bad ``z_init``, non-positive
        ``iterations``, learning rates or ``max_batched_bytes``.
    """
    start_time = time.perf_counter()
    y = check_measurement(operator, y)
    check_generator_operator(generator, operator)
    iterations = check_positive_int(iterations, "iterations")
    for name, value in (("lr_z", lr_z), ("lr_theta", lr_theta)):
        if not float(value) > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    max_batched_bytes = check_positive_int(max_batched_bytes, "max_batched_bytes")
    batch = int(y.shape[0])
    if batch < 1:
        raise ValueError("y holds no measurements (batch size 0)")
    check_operator_batch(operator, batch)
    if z_init is None:
        z_start = np.asarray(generator.sample_latent(batch, seed), np.float32)
    else:
        z_start = _check_latents(generator, z_init, batch)
    if not generator.trainable_variables:
        raise ValueError("the generator has no trainable variables to adapt")

    if batched:
        per_image = max(1, estimate_batched_bytes(generator, 1))
        chunk = int(min(batch, max(1, max_batched_bytes // per_image)))
    else:
        chunk = 1
    initial_weights = [tf.convert_to_tensor(v).numpy() for v in generator.trainable_variables]
    copies = [generator.copy() for _ in range(chunk)]
    for duplicate in copies:
        shapes = [tuple(v.shape) for v in duplicate.trainable_variables]
        if shapes != [w.shape for w in initial_weights]:
            raise RuntimeError("generator.copy() returned a generator with different trainable variables")
    solvers: Dict[int, _ChunkSolver] = {}

    def solver_for(size: int) -> _ChunkSolver:
        # The last chunk may be smaller; it shares the first copies (they are reset anyway).
        if size not in solvers:
            solvers[size] = _ChunkSolver(copies[:size], operator, batch, lr_z, lr_theta, run_eagerly, jit_compile)
        return solvers[size]

    history = np.zeros((iterations, batch), np.float32)
    best_objective = np.zeros(batch, np.float32)
    best_iteration = np.zeros(batch, np.int64)
    initial_objective = np.zeros(batch, np.float32)
    latents = np.zeros((batch, generator.latent_dim), np.float32)
    x_hat = np.zeros((batch,) + tuple(generator.output_shape), np.float32)
    adapted: List = []

    bar = progress_bar(total=iterations * batch, desc="IAGAN", unit="img-it",
                       **({} if progress else {"disable": True}))
    for first in range(0, batch, chunk):
        rows = np.arange(first, min(batch, first + chunk))
        solver = solver_for(len(rows))
        solver.load(initial_weights, z_start[rows], tf.gather(y, rows), rows)
        fits = []
        for _ in range(iterations):
            fits.append(solver.step())
            bar.update(len(rows))
        fits.append(solver.evaluate())
        fits = tf.stack(fits).numpy()
        initial_objective[rows] = fits[0]
        history[:, rows] = fits[1:]
        best_objective[rows] = solver.best_fit.numpy()
        best_iteration[rows] = solver.best_step.numpy()
        latents[rows] = solver.best_z.numpy()
        x_hat[rows] = solver.best_x.numpy()
        if return_generators:
            for index in range(len(rows)):
                duplicate = generator.copy()
                for variable, best in zip(duplicate.trainable_variables, solver.best_weights[index]):
                    variable.assign(best)
                adapted.append(duplicate)
    bar.close()

    extras = {
        "best_iteration": best_iteration,
        "initial_objective": initial_objective,
        "chunk_size": chunk,
        "mode": "batched" if chunk > 1 else "sequential",
    }
    if return_generators:
        extras["generators"] = adapted
    return InversionResult(
        x_hat=x_hat,
        history=history,
        best_objective=best_objective,
        latents=latents,
        seconds=time.perf_counter() - start_time,
        extras=extras,
    )


def csgm_then_iagan(
    generator,
    operator,
    y,
    *,
    prior: Optional[str] = None,
    task: Optional[str] = None,
    noisy: bool = False,
    csgm_options: Optional[Mapping] = None,
    iagan_options: Optional[Mapping] = None,
    seed=0,
    jit_compile: bool = False,
    progress: bool = True,
) -> Tuple[InversionResult, InversionResult]:
    """CSGM followed by IAGAN from its latents: the paper's full pipeline.

    Args:
      generator: the prior (not modified).
      operator: the forward operator.
      y: ``[N, *operator.out_shape]`` measurements.
      prior: ``"began"`` or ``"pggan"`` to start from :data:`CSGM_PRESETS` and
        :func:`iagan_preset`; None uses the functions' defaults.
      task: the preset task (``"cs"``/``"sr"`` or an alias); required with ``prior``.
      noisy: halve the IAGAN iterations of the preset (or of the default 600 without one)
        for noisy measurements; an explicit ``iterations`` in ``iagan_options`` is used as
        given.
      csgm_options: keyword arguments for :func:`~tfinverse.inversion.csgm.csgm`, overriding
        the preset.
      iagan_options: keyword arguments for :func:`iagan`, overriding the preset.
      seed: seed of CSGM's restarts.
      jit_compile: compile both steps with XLA.
      progress: show progress bars.

    Returns:
      ``(csgm_result, iagan_result)``; IAGAN starts from ``csgm_result.latents``.

    Raises:
      ValueError: for bad measurements (checked first) or options.
      KeyError: for an unknown preset.
    """
    y = check_measurement(operator, y)
    csgm_kwargs: Dict = {}
    iagan_kwargs: Dict = {}
    if prior is not None:
        if task is None:
            raise ValueError("give task= ('cs' or 'sr') together with prior=")
        prior_key = str(prior).lower()
        if prior_key not in CSGM_PRESETS:
            raise KeyError(f"no CSGM preset for prior {prior!r}; known: {', '.join(CSGM_PRESETS)}")
        csgm_kwargs.update(CSGM_PRESETS[prior_key])
        iagan_kwargs.update(iagan_preset(prior_key, task, noisy))
    elif noisy:
        iagan_kwargs["iterations"] = max(1, _DEFAULT_ITERATIONS // 2)
    # Explicit options win over presets (and are not halved under noise).
    csgm_kwargs.update(csgm_options or {})
    iagan_kwargs.update(iagan_options or {})
    iagan_kwargs.pop("z_init", None)
    csgm_result = csgm(
        generator, operator, y, seed=seed, jit_compile=jit_compile, progress=progress, **csgm_kwargs
    )
    iagan_result = iagan(
        generator,
        operator,
        y,
        z_init=csgm_result.latents,
        jit_compile=jit_compile,
        progress=progress,
        **iagan_kwargs,
    )
    return csgm_result, iagan_result
