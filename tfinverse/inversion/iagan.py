"""IAGAN: image-adaptive generative reconstruction (Abu Hussein, Tirer and Giryes, AAAI 2020).

Starting from a CSGM latent ``z_hat`` and the pre-trained weights ``theta``, IAGAN minimises

    f_IA(theta, z) = ||y - A G_theta(z)||^2

jointly over the latent and the generator weights with Adam and small learning rates
(early stopping by the iteration budget), keeps the pair ``(theta, z)`` with the lowest
objective seen, and returns ``x_IA = G_theta_IA(z_IA)``. Every image gets its own copy of
the weights; the caller's generator is never modified.

Batching. The ``N`` images of a call run in one compiled step. Each image has its own
weights, Adam moments and best-weight snapshot in variables; one image's step (forward,
backward, bookkeeping, Adam) is traced once, with one generator copy, and the chunk's step
calls that traced function once per image with the image's variables swapped in for the
copy's, so tracing costs the same for 8 images as for one, only one copy of the generator
is made, and TensorFlow runs the independent calls concurrently. With ``batched=False``, or
when the estimated memory of ``N`` images exceeds ``max_batched_bytes``, the images run in
chunks (of one image with ``batched=False``) that reuse one solver, reset between chunks;
``batched="auto"`` (the default) runs one image at a time below
:data:`AUTO_BATCHED_MIN_ITERATIONS` iterations, where the batched step's larger set-up
cost was not repaid, unless a kept solver removes that cost. All modes do the same
arithmetic per image. The solver of a call is kept for the next call with the same
generator, operator and settings (``reuse_solver``).
Measured on 2 CPU cores (AVX2) with the shipped 28 x 28 prior, 8 images, 4x super-resolution
(``benchmarks/bench_inversion.py``): whole calls ran 1.05-1.2x faster batched than one image
at a time at 150 and 300 iterations, and slower below about 100 (0.66x at 20); a reused
solver made them 1.3-1.9x faster than sequential runs at every budget. Tracing a graph of
all N copies instead cost 4-5 s of set-up at 8 images (generator copies and trace), and a
call at 300 iterations 10-13 s against 5.5-6.5 s. On the 5 M-parameter 64 x 64 DCGAN a
step is memory-bound and batching gains little (1.04x per step).
Stacking the per-image weights along a leading axis and vectorising with
``tf.vectorized_map`` was measured too: TensorFlow's vectorizer has no convolution with
per-example filters, falls back to a loop and was several times slower on CPU.

Presets (:data:`IAGAN_PRESETS`, :func:`iagan_preset`) give the paper's learning rates and
iteration counts per prior and task, halved under noise::

    from tfinverse.inversion.iagan import csgm_then_iagan
    csgm_result, iagan_result = csgm_then_iagan(g, A, y, prior="began", task="cs", seed=0)
"""

from __future__ import annotations

import time
import weakref
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

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
    "AUTO_BATCHED_MIN_ITERATIONS",
    "choose_mode",
    "iagan_preset",
    "estimate_batched_bytes",
    "iagan",
    "clear_solver_cache",
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

#: With ``batched="auto"``, :func:`iagan` batches several images from this many iterations on,
#: or at any budget when the previous call's batched solver can be reused (below it, one image
#: at a time was as fast or faster on 2 CPU cores; see ``benchmarks/bench_inversion.py``).
AUTO_BATCHED_MIN_ITERATIONS = 120

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


def choose_mode(batched, images: int, iterations: int) -> str:
    """``"batched"`` or ``"sequential"`` from the ``batched`` argument of :func:`iagan`
    (without a kept solver, which makes ``"auto"`` batch at any budget)."""
    if isinstance(batched, str):
        if batched != "auto":
            raise ValueError(f"batched must be True, False or 'auto', got {batched!r}")
        # A batched chunk's set-up (variables, trace, first run) costs about 1 s more than a
        # single image's; below this budget the faster steps did not repay it.
        return "batched" if images > 1 and iterations >= AUTO_BATCHED_MIN_ITERATIONS else "sequential"
    return "batched" if batched else "sequential"


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


class _ImageState:
    """One image's variables: weights, Adam moments, best snapshot, latent, measurement, bookkeeping.

    Args:
      weights: the image's trainable weights (a generator copy's, or plain variables of the
        same shapes that stand in for them in a shared trace).
      latent_dim: latent dimension.
      image_shape: ``(H, W, C)`` of the generator's output.
      operator: the forward operator (its ``out_shape`` and ``dtype``).
      keep_best_weights: snapshot the weights whenever the objective improves (only
        ``return_generators`` needs them, and the snapshot copies every weight at almost
        every step, since the objective mostly falls).
    """

    def __init__(self, weights: Sequence[tf.Variable], latent_dim: int, image_shape, operator,
                 keep_best_weights: bool):
        self.weights = list(weights)
        self.slots = AdamSlots(self.weights)
        self.best_weights = ([tf.Variable(tf.convert_to_tensor(v), trainable=False) for v in self.weights]
                             if keep_best_weights else [])
        self.z = tf.Variable(tf.zeros([1, latent_dim]), trainable=False)
        self.z_slots = AdamSlots([self.z])
        self.y = tf.Variable(tf.zeros((1,) + tuple(operator.out_shape), operator.dtype), trainable=False)
        self.row = tf.Variable(tf.zeros([1], tf.int32), trainable=False)
        self.steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_fit = tf.Variable(tf.fill([1], np.float32(np.inf)), trainable=False)
        self.best_step = tf.Variable(tf.zeros([1], tf.int64), trainable=False)
        self.best_z = tf.Variable(tf.zeros([1, latent_dim]), trainable=False)
        self.best_x = tf.Variable(tf.zeros((1,) + tuple(image_shape)), trainable=False)

    def variables(self) -> List[tf.Variable]:
        """Every variable of the state, in a fixed order (the same for every image)."""
        slots = [s for adam in (self.slots, self.z_slots) for s in adam.first + adam.second]
        return (self.weights + self.best_weights + slots
                + [self.z, self.y, self.row, self.steps_taken, self.best_fit, self.best_step, self.best_z, self.best_x])

    def load(self, initial_weights: Sequence[np.ndarray], z: np.ndarray, y, row: int) -> None:
        """Resets the state to the pre-trained weights and one image's latent and measurement."""
        for variable, value in zip(self.weights, initial_weights):
            variable.assign(value)
        for snapshot, value in zip(self.best_weights, initial_weights):
            snapshot.assign(value)
        self.slots.reset()
        self.z_slots.reset()
        self.z.assign(z)
        self.y.assign(y)
        self.row.assign([int(row)])
        self.steps_taken.assign(0)
        self.best_fit.assign(tf.fill([1], np.float32(np.inf)))
        self.best_step.assign(tf.zeros([1], tf.int64))


def _shared_trace_available() -> bool:
    # Calling one traced function with another image's variables needs the concrete
    # function's flat call with explicit captures (TensorFlow 2.x, not a public API).
    try:
        from tensorflow.python.eager.polymorphic_function import concrete_function
    except ImportError:
        return False
    return hasattr(concrete_function.ConcreteFunction, "_call_flat")


class _ChunkSolver:
    """Joint (theta, z) Adam for a fixed number of images, each with its own weights.

    Every image's state lives in variables (:class:`_ImageState`), so one traced step serves
    every chunk: ``load`` resets the states to the pre-trained weights and sets the chunk's
    latents and measurements. One step evaluates each image's objective, records the best
    pair, then takes one Adam step; the objective returned is the one before the step.

    Compiled (not eager, the default), the per-image step is traced once, with the first
    image's generator copy, and the chunk's step calls that one traced function once per
    image with the image's own variables in place of the first image's (its captured
    inputs are swapped): tracing costs the same for 8 images as for one, and the calls are
    independent, so TensorFlow runs them concurrently. Only the first image needs a real
    generator copy; the others hold plain variables of the same shapes. The per-image
    function is kept out of line (``_noinline``): inlining 8 copies made the first step
    about twice as long (graph optimisation of every copy). Eager runs, and TensorFlow
    builds without the flat call, give each image a generator copy and run one step per
    image (traced together unless eager).
    """

    def __init__(self, generator, operator, batch: int, size: int, lr_z: float, lr_theta: float,
                 run_eagerly: bool, jit_compile: bool, keep_best_weights: bool):
        self.operator = operator
        self.size = int(size)
        self.batch = batch
        self.lr_z = float(lr_z)
        self.lr_theta = float(lr_theta)
        self.per_example = is_per_example_operator(operator)
        self.shared_trace = not run_eagerly and _shared_trace_available()
        copies = [generator.copy() for _ in range(1 if self.shared_trace else self.size)]
        for duplicate in copies:
            if [tuple(v.shape) for v in duplicate.trainable_variables] != [tuple(v.shape) for v in generator.trainable_variables]:
                raise RuntimeError("generator.copy() returned a generator with different trainable variables")
        self.generators = copies
        template = list(copies[0].trainable_variables)
        self.states = []
        for index in range(self.size):
            weights = (copies[index].trainable_variables if index < len(copies)
                       else [tf.Variable(tf.convert_to_tensor(v), trainable=True) for v in template])
            self.states.append(_ImageState(weights, generator.latent_dim, generator.output_shape, operator,
                                           keep_best_weights))
        if run_eagerly:
            self.step = self._all_steps
        elif self.shared_trace:
            self.step = self._shared_step(jit_compile)
        else:
            self.step = compile_step(self._all_steps, False, jit_compile)

    def sync_frozen(self, generator) -> None:
        """Gives the copies the generator's current non-trainable values (e.g. batch-norm statistics)."""
        trainable = {id(v) for v in generator.trainable_variables}
        frozen = [v for v in generator.variables if id(v) not in trainable]
        for duplicate in self.generators:
            own_trainable = {id(v) for v in duplicate.trainable_variables}
            own_frozen = [v for v in duplicate.variables if id(v) not in own_trainable]
            for target, source in zip(own_frozen, frozen):
                target.assign(source)

    def load(self, initial_weights: Sequence[np.ndarray], z: np.ndarray, y: tf.Tensor, rows: np.ndarray) -> None:
        """Resets every image's state; row ``i`` of ``z`` and ``y`` goes to image ``i``."""
        for index, state in enumerate(self.states):
            state.load(initial_weights, z[index:index + 1], y[index:index + 1], rows[index])

    def read(self, name: str) -> np.ndarray:
        """One bookkeeping variable (e.g. ``"best_fit"``) of every image, stacked."""
        return np.concatenate([getattr(state, name).numpy() for state in self.states], axis=0)

    def _fit(self, state: _ImageState, generator, z):
        x = generator(z)
        if self.per_example:
            # Per-example draws are indexed by the image's row in the full batch.
            full = tf.scatter_nd(state.row[:, None], tf.cast(x, self.operator.dtype),
                                 (self.batch,) + tuple(self.operator.in_shape))
            measured = self.operator(full)
            residual = tf.convert_to_tensor(state.y) - tf.gather(measured, state.row)
            axes = list(range(1, len(self.operator.out_shape) + 1))
            return tf.cast(tf.reduce_sum(tf.square(residual), axis=axes), tf.float32), x
        return measurement_fit(self.operator, x, tf.convert_to_tensor(state.y)), x

    def _image_step(self, state: _ImageState, generator):
        with tf.GradientTape() as tape:
            z = tf.convert_to_tensor(state.z)
            tape.watch(z)
            fit, x = self._fit(state, generator, z)
            total = tf.reduce_sum(fit)
        gradients = tape.gradient(total, [z] + state.weights)
        improved = fit < state.best_fit
        state.best_fit.assign(tf.where(improved, fit, state.best_fit))
        state.best_step.assign(tf.where(improved, state.steps_taken, state.best_step))
        state.best_z.assign(tf.where(improved[:, None], z, state.best_z))
        state.best_x.assign(tf.where(tf.reshape(improved, [-1, 1, 1, 1]), x, state.best_x))

        # Snapshot the weights that produced this image only when it improved.
        def snapshot():
            return tf.group(*[b.assign(w) for b, w in zip(state.best_weights, state.weights)])

        if state.best_weights:
            tf.cond(improved[0], snapshot, tf.no_op)
        state.steps_taken.assign_add(1)
        state.z_slots.apply([state.z], gradients[:1], state.steps_taken, self.lr_z)
        state.slots.apply(state.weights, gradients[1:], state.steps_taken, self.lr_theta)
        return fit

    def _all_steps(self):
        return tf.concat([self._image_step(s, g) for s, g in zip(self.states, self.generators)], axis=0)

    def _shared_step(self, jit_compile: bool):
        first = self.states[0]
        image_step = compile_step(
            lambda: self._image_step(first, self.generators[0]), False, jit_compile, noinline=True
        ).get_concrete_function()
        captured = image_step.captured_inputs
        position = {id(v.handle): k for k, v in enumerate(first.variables())}
        captured_ids = {id(c) for c in captured}
        if not all(id(v.handle) in captured_ids for v in first.weights):
            # Another image's weights could not be swapped in for a weight the trace never read.
            raise RuntimeError("the traced IAGAN step does not read every weight of the generator copy")
        captures = []
        for state in self.states:
            own = state.variables()
            captures.append([own[position[id(c)]].handle if id(c) in position else c for c in captured])
        if self.size == 1:
            return image_step
        return tf.function(
            lambda: tf.concat([image_step._call_flat([], c) for c in captures], axis=0), autograph=False
        )


class _SolverCache:
    """Holds the last call's solver, for the generator (weakly) and settings it was built for."""

    def __init__(self):
        self._generator = None
        self._key = None
        self._solver = None

    def take(self, generator, key) -> Optional[_ChunkSolver]:
        if self._solver is not None and self._generator() is generator and self._key == key:
            return self._solver
        return None

    def keep(self, generator, key, solver: _ChunkSolver) -> None:
        self._generator = weakref.ref(generator)
        # The operator object is part of the key by identity: holding the solver holds it, so
        # its id cannot be reused by another operator while the entry lives.
        self._key = key
        self._solver = solver

    def clear(self) -> None:
        self._generator = self._key = self._solver = None


_SOLVER_CACHE = _SolverCache()


def clear_solver_cache() -> None:
    """Frees the solver :func:`iagan` keeps for its next call (see ``reuse_solver``)."""
    _SOLVER_CACHE.clear()


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
    batched: Union[bool, str] = "auto",
    max_batched_bytes: int = DEFAULT_MAX_BATCHED_BYTES,
    jit_compile: bool = False,
    progress: bool = True,
    run_eagerly: bool = False,
    return_generators: bool = False,
    reuse_solver: bool = True,
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
      batched: True runs all images in one compiled step (chunks if ``max_batched_bytes``
        says so); False runs one image at a time; ``"auto"`` batches when there is more than
        one image and at least :data:`AUTO_BATCHED_MIN_ITERATIONS` iterations, or when the
        previous call's batched solver serves this call. All give the same result up to
        rounding.
      max_batched_bytes: memory budget of one chunk, compared with
        :func:`estimate_batched_bytes`; the chunk size is the largest that fits (at least 1).
      jit_compile: compile the step with XLA.
      progress: show a progress bar (only on a terminal).
      run_eagerly: run the step without ``tf.function`` (debugging, benchmarks).
      return_generators: also return, in ``extras["generators"]``, one adapted generator per
        image holding its best weights (so ``extras["generators"][i](latents[i:i+1])``
        reproduces ``x_hat[i]``); costs a full copy of the weights per image.
      reuse_solver: keep this call's solver (its traced step and per-image variables) for
        the next call with the same generator, operator object, number of measurements,
        chunk size, learning rates and flags, which then skips the trace; one solver is kept
        at a time. :func:`clear_solver_cache` frees it.

    Returns:
      :class:`~tfinverse.inversion.base.InversionResult`: ``x_hat`` ``[N, H, W, C]``
      (``G_theta_best(z_best)`` in [0, 1]), ``latents`` (``z_best``), ``best_objective``
      ``[N]``, ``history`` ``[iterations, N]`` (row ``t``: the objective after ``t + 1``
      joint steps). ``extras``: ``best_iteration`` ``[N]`` (steps taken by the returned
      pair; 0 = the start), ``initial_objective`` ``[N]`` (the objective of the start, i.e.
      CSGM's when ``z_init`` comes from CSGM), ``chunk_size`` (images per compiled step),
      ``mode`` (``"batched"`` or ``"sequential"``), ``shared_trace`` (every chunk ran one
      traced per-image step for all its images), ``reused_solver`` (the previous call's
      solver served this one) and optionally ``generators``.

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

    per_image = max(1, estimate_batched_bytes(generator, 1))
    batched_chunk = int(min(batch, max(1, max_batched_bytes // per_image)))

    def solver_key(size: int):
        return (id(operator), batch, size, float(lr_z), float(lr_theta), bool(run_eagerly), bool(jit_compile),
                bool(return_generators))

    mode = choose_mode(batched, batch, iterations)
    if batched == "auto" and batch > 1 and reuse_solver and _SOLVER_CACHE.take(generator, solver_key(batched_chunk)):
        mode = "batched"  # the set-up is paid already: batching wins at any budget
    chunk = batched_chunk if mode == "batched" else 1
    initial_weights = [tf.convert_to_tensor(v).numpy() for v in generator.trainable_variables]
    solvers: Dict[int, _ChunkSolver] = {}
    reused = []

    def solver_for(size: int) -> _ChunkSolver:
        # Chunks of one size share a solver (and its trace); the last chunk may be smaller.
        # The full-size solver of the previous call is reused when nothing it traced changed.
        if size not in solvers:
            key = solver_key(size)
            solver = _SOLVER_CACHE.take(generator, key) if reuse_solver else None
            reused.append(solver is not None)
            if solver is None:
                solver = _ChunkSolver(generator, operator, batch, size, lr_z, lr_theta, run_eagerly, jit_compile,
                                      keep_best_weights=return_generators)
            solver.sync_frozen(generator)
            solvers[size] = solver
            if reuse_solver and size == chunk:
                _SOLVER_CACHE.keep(generator, key, solver)
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
        # Step k reports (and records as a candidate) the objective after k updates, so one
        # step more than the budget evaluates the last weights; its update is never used.
        for k in range(iterations + 1):
            fits.append(solver.step())
            if k:
                bar.update(len(rows))
        fits = tf.stack(fits).numpy()
        initial_objective[rows] = fits[0]
        history[:, rows] = fits[1:]
        best_objective[rows] = solver.read("best_fit")
        best_iteration[rows] = solver.read("best_step")
        latents[rows] = solver.read("best_z")
        x_hat[rows] = solver.read("best_x")
        if return_generators:
            for state in solver.states:
                duplicate = generator.copy()
                for variable, best in zip(duplicate.trainable_variables, state.best_weights):
                    variable.assign(best)
                adapted.append(duplicate)
    bar.close()

    extras = {
        "best_iteration": best_iteration,
        "initial_objective": initial_objective,
        "chunk_size": chunk,
        "mode": "batched" if chunk > 1 else "sequential",
        "shared_trace": all(solver.shared_trace for solver in solvers.values()),
        "reused_solver": any(reused),
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
