"""ACSG: CSGM with an AmbientGAN-style discriminator-feature loss (Ambient VAE-GAN's "iterative" baseline).

The estimate is ``G(z)`` where ``z`` follows Adam on

    f(z) = mean_i [ w_f * mean((D_feat(f_theta_t(G(z_i))) - D_feat(y_i))^2) + w_z * ||z_i||^2 ]

with a fresh measurement draw ``theta_t`` at every iteration ``t`` (a new mask, patch or noise
per example), ``w_f = 5`` and ``w_z = 0.001``, learning rate 0.1, 100 iterations, ``z``
started from ``N(0, I)``. ``D_feat`` is a discriminator's feature map (for Ambient VAE-GAN the
pre-batch-norm output of its last conv). As the original (``vaegan.py``, ``estimate``) it
returns the image after the update of (0-based) iteration 90 rather than the last one, and
records per iteration the cumulative time and the MSE against the clean images, for the
MSE-vs-time figure. The generator and discriminator are called as they are: for Ambient
VAE-GAN's networks that is with batch statistics, which couples the images of a batch, as in
the original (whose batch was the 64 test images).

Differences from the original: any latent size (it hard-coded 128 and could not run on
MNIST); Adam is :func:`tfinverse.inversion.csgm.adam_update` (PyTorch's form: ``eps`` inside
the bias correction, TF1's outside; with ``eps = 1e-8`` the two differ only for gradients
near 1e-8); the step is traced before the clock starts (TF1 built its graph before timing).

The latent optimiser is CSGM's (:class:`~tfinverse.inversion.csgm.AdamSlots`,
:func:`~tfinverse.inversion.csgm.compile_step`); only the objective differs.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional

import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import InversionResult
from tfinverse.inversion.csgm import AdamSlots, check_positive_int, compile_step
from tfinverse.operators.base import LinearOperator, stateless_seed
from tfinverse.tasks.ambient import (
    ACSG_FEATURE_WEIGHT,
    ACSG_ITERATIONS,
    ACSG_LATENT_WEIGHT,
    ACSG_LEARNING_RATE,
    ACSG_SNAPSHOT_ITERATION,
)
from tfinverse.utils.cli import progress as progress_bar

__all__ = ["acsg", "measurement_function", "feature_function", "iteration_seed"]


def measurement_function(measure) -> Callable:
    """``measure`` as a function ``(x, seed) -> y`` with a fresh draw per seed.

    Args:
      measure: a :class:`~tfinverse.operators.LinearOperator` (called as ``A(x, seed=s)``),
        or any callable ``(x, seed)`` such as
        :class:`~tfinverse.models.ambient.AmbientMeasurement`.

    Returns:
      The function.

    Raises:
      TypeError: for anything else.
    """
    if isinstance(measure, LinearOperator):
        operator = measure
        return lambda x, seed: operator(tf.cast(x, operator.dtype), seed=seed)
    if callable(measure):
        return measure
    raise TypeError(f"measure must be a LinearOperator or a callable (x, seed), got {type(measure).__name__}")


def feature_function(discriminator) -> Callable:
    """The feature map of ``[0, 1]`` images: ``discriminator.features`` if it has one, else ``discriminator``.

    Accepts an :class:`~tfinverse.models.ambient.AmbientNetworks` or any callable
    ``images -> features``.

    Raises:
      TypeError: for something that is not callable and has no ``features``.
    """
    features = getattr(discriminator, "features", discriminator)
    if not callable(features):
        raise TypeError(
            "discriminator must be a callable images -> features or have a features method, "
            f"got {type(discriminator).__name__}"
        )
    return features


def iteration_seed(seed, iteration) -> tf.Tensor:
    """The stateless ``[2]`` seed of iteration ``t``'s measurement draw."""
    base = tf.random.experimental.stateless_fold_in(stateless_seed(seed), 0x0AC5, alg="philox")
    return tf.random.experimental.stateless_fold_in(base, tf.cast(iteration, tf.int64), alg="philox")


def _as_images(value, what: str, shape=None) -> np.ndarray:
    array = np.asarray(value.numpy() if isinstance(value, (tf.Tensor, tf.Variable)) else value)
    if array.dtype.kind != "f":
        raise ValueError(f"{what} must be floating point, got dtype {array.dtype}")
    if array.ndim != 4 or (shape is not None and array.shape != tuple(shape)):
        expected = "[N, H, W, C]" if shape is None else str(list(shape))
        raise ValueError(f"{what} must have shape {expected}, got {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or Inf values")
    return array.astype(np.float32)


def acsg(
    generator,
    discriminator,
    measure,
    y,
    *,
    iterations: int = ACSG_ITERATIONS,
    learning_rate: float = ACSG_LEARNING_RATE,
    feature_weight: float = ACSG_FEATURE_WEIGHT,
    latent_weight: float = ACSG_LATENT_WEIGHT,
    snapshot_iteration: Optional[int] = ACSG_SNAPSHOT_ITERATION,
    reference=None,
    seed: int = 0,
    z_init=None,
    jit_compile: bool = False,
    run_eagerly: bool = False,
    progress: bool = True,
) -> InversionResult:
    """Recovers images by Adam on ``z`` matching discriminator features of re-measured ``G(z)``.

    Iteration ``t`` (0-based) evaluates the objective at the current latents with the
    measurement draw of :func:`iteration_seed` ``(seed, t)``, records it, then takes one Adam
    step. The snapshot is ``G(z)`` after the step of iteration ``snapshot_iteration``.

    Args:
      generator: a :class:`tfinverse.models.Generator` (e.g.
        :class:`~tfinverse.models.ambient.AmbientGenerator`) making ``[0, 1]`` images.
      discriminator: the feature map of ``[0, 1]`` images: a callable, or an object with a
        ``features`` method (:class:`~tfinverse.models.ambient.AmbientNetworks`).
      measure: the forward model with per-call draws: a random
        :class:`~tfinverse.operators.LinearOperator` or a callable ``(x, seed)``
        (:func:`tfinverse.tasks.ambient.build_measurement`).
      y: the measurements ``[N, H, W, C]`` (measurement images, as the discriminator takes).
      iterations: Adam steps (100).
      learning_rate: Adam's learning rate (0.1).
      feature_weight: ``w_f`` (5).
      latent_weight: ``w_z`` (0.001).
      snapshot_iteration: the iteration after whose update the returned image is taken (90,
        the original's last ``t % 10 == 0`` image); None: after the last one.
      reference: optional clean images ``[N, *generator.output_shape]`` in ``[0, 1]``: the
        MSE of ``G(z)`` against them is recorded at every iteration.
      seed: seed of the initial latents (``generator.sample_latent``) and of the
        measurement draws.
      z_init: optional initial latents ``[N, latent_dim]`` instead of draws.
      jit_compile: compile the step with XLA.
      run_eagerly: run the step without ``tf.function`` (debugging).
      progress: show a progress bar (on a terminal).

    Returns:
      :class:`~tfinverse.inversion.base.InversionResult`: ``x_hat`` the snapshot
      ``[N, H, W, C]`` in ``[0, 1]``; ``latents`` its ``z``; ``history`` ``[iterations, N]``
      the per-image objective at iteration ``t``; ``best_objective`` ``[N]`` the objective of
      the snapshot's latents (with the next iteration's draw); ``seconds`` the wall time.
      ``extras``:

      * ``cumulative_seconds`` ``[iterations]``: time spent in the steps up to and including
        ``t`` (tracing excluded);
      * ``mse`` ``[iterations]``: ``mean (G(z_t) - reference)^2`` on ``[0, 1]`` (multiply by 4
        for the original's CelebA ``[-1, 1]`` scale), present with ``reference``;
      * ``time_mse`` ``[2, iterations]``: the two rows above, the layout of the original's
        ``iterative_time.npy`` (NaN MSE without ``reference``);
      * ``objective`` ``[iterations]`` (the batch mean), ``feature_loss``, ``latent_loss``
        ``[iterations]`` (batch means of the unweighted terms);
      * ``snapshot_iteration``, ``initial_latents``, ``final_latents``, ``final_x_hat``.

    Raises:
      ValueError: bad shapes, NaN/Inf in ``y`` or ``reference``, non-positive
        ``iterations`` or ``learning_rate``, negative weights, or a ``snapshot_iteration``
        outside ``[0, iterations)`` (all before any optimisation).
      TypeError: a ``discriminator`` or ``measure`` of the wrong kind.
    """
    start_time = time.perf_counter()
    features_of = feature_function(discriminator)
    measure_fn = measurement_function(measure)
    image_shape = tuple(generator.output_shape)
    measurement_shape = tuple(getattr(measure, "out_shape", image_shape))
    y = _as_images(y, "measurement y")
    if y.shape[1:] != measurement_shape:
        raise ValueError(f"measurement y must have shape [N, {', '.join(map(str, measurement_shape))}], got {list(y.shape)}")
    batch = y.shape[0]
    if batch < 1:
        raise ValueError("y holds no measurements (batch size 0)")
    if tuple(getattr(measure, "in_shape", getattr(measure, "image_shape", image_shape))) != image_shape:
        raise ValueError(f"the generator makes images of shape {image_shape} but the measurement takes "
                         f"{tuple(getattr(measure, 'in_shape', getattr(measure, 'image_shape', ())))}")
    iterations = check_positive_int(iterations, "iterations")
    if not float(learning_rate) > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if not (float(feature_weight) >= 0 and float(latent_weight) >= 0):
        raise ValueError(f"feature_weight and latent_weight must be >= 0, got {feature_weight}, {latent_weight}")
    snapshot = iterations - 1 if snapshot_iteration is None else int(snapshot_iteration)
    if not 0 <= snapshot < iterations:
        raise ValueError(
            f"snapshot_iteration must be in [0, iterations) = [0, {iterations}), got {snapshot_iteration} "
            "(None takes the last iteration)"
        )
    if reference is not None:
        reference = tf.constant(_as_images(reference, "reference", (batch,) + image_shape))
    if z_init is None:
        z_start = np.asarray(generator.sample_latent(batch, int(seed)), np.float32)
    else:
        z_start = np.asarray(z_init.numpy() if isinstance(z_init, (tf.Tensor, tf.Variable)) else z_init)
        if z_start.dtype.kind != "f" or z_start.shape != (batch, generator.latent_dim):
            raise ValueError(f"z_init must be floating point with shape [{batch}, {generator.latent_dim}], "
                             f"got {z_start.dtype} {list(z_start.shape)}")
        if not np.all(np.isfinite(z_start)):
            raise ValueError("z_init contains NaN or Inf values")
        z_start = z_start.astype(np.float32)

    y_tensor = tf.constant(y)
    target = tf.stop_gradient(features_of(y_tensor))  # D(y): fixed, as y is
    z_var = tf.Variable(z_start, trainable=False)
    slots = AdamSlots([z_var])
    steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False)
    w_feature, w_latent = float(feature_weight), float(latent_weight)

    def objective(z, draw_seed):
        x = generator(z)
        predicted = features_of(measure_fn(x, draw_seed))
        axes = list(range(1, len(predicted.shape)))
        feature = tf.reduce_mean(tf.square(tf.cast(predicted, tf.float32) - tf.cast(target, tf.float32)), axis=axes)
        latent = tf.reduce_sum(tf.square(z), axis=1)
        return x, w_feature * feature + w_latent * latent, feature, latent

    def mse_of(x):
        if reference is None:
            return tf.constant(np.nan, tf.float32)
        return tf.reduce_mean(tf.square(tf.cast(x, tf.float32) - reference))

    def step(draw_seed):
        with tf.GradientTape() as tape:
            z = tf.convert_to_tensor(z_var)
            tape.watch(z)
            x, per_image, feature, latent = objective(z, draw_seed)
            loss = tf.reduce_mean(per_image)
        gradient = tape.gradient(loss, z)
        mse = mse_of(x)
        steps_taken.assign_add(1)
        slots.apply([z_var], [gradient], steps_taken, learning_rate)
        return per_image, tf.reduce_mean(feature), tf.reduce_mean(latent), mse

    def evaluate(draw_seed):
        z = tf.convert_to_tensor(z_var)
        x, per_image, _, _ = objective(z, draw_seed)
        return x, per_image

    step_fn = compile_step(step, run_eagerly, jit_compile)
    if not run_eagerly:  # trace before the clock starts
        step_fn.get_concrete_function(tf.TensorSpec([2], tf.int64))

    per_image_rows: List[np.ndarray] = []
    features_mean, latents_mean, mses, elapsed = [], [], [], []
    snapshot_x = snapshot_z = snapshot_objective = None
    total = 0.0
    bar = progress_bar(range(iterations), desc="ACSG", **({} if progress else {"disable": True}))
    for t in bar:
        draw_seed = iteration_seed(seed, t)
        tick = time.perf_counter()
        per_image, feature, latent, mse = step_fn(draw_seed)
        per_image = per_image.numpy()  # waits for the step: the time is the step's
        total += time.perf_counter() - tick
        elapsed.append(total)
        per_image_rows.append(per_image)
        features_mean.append(float(feature))
        latents_mean.append(float(latent))
        mses.append(float(mse))
        if t == snapshot:
            # The original fetched G(z) in a separate run after the update: untimed.
            x_now, objective_now = evaluate(iteration_seed(seed, t + 1))
            snapshot_x, snapshot_z, snapshot_objective = x_now.numpy(), z_var.numpy(), objective_now.numpy()
        if not bar.disable:
            bar.set_postfix(loss=f"{float(np.mean(per_image)):.4g}")
    bar.close()

    history = np.stack(per_image_rows).astype(np.float32)
    final_z = z_var.numpy()
    final_x = snapshot_x if snapshot == iterations - 1 else generator(final_z).numpy()
    seconds = np.asarray(elapsed, np.float64)
    mse_row = np.asarray(mses, np.float64)
    extras = {
        "cumulative_seconds": seconds,
        "time_mse": np.stack([seconds, mse_row]),
        "objective": history.mean(axis=1),
        "feature_loss": np.asarray(features_mean, np.float32),
        "latent_loss": np.asarray(latents_mean, np.float32),
        "snapshot_iteration": snapshot,
        "initial_latents": z_start,
        "final_latents": final_z,
        "final_x_hat": np.asarray(final_x, np.float32),
    }
    if reference is not None:
        extras["mse"] = mse_row
    return InversionResult(
        x_hat=np.asarray(snapshot_x, np.float32),
        history=history,
        best_objective=np.asarray(snapshot_objective, np.float32),
        latents=snapshot_z,
        seconds=time.perf_counter() - start_time,
        extras=extras,
    )
