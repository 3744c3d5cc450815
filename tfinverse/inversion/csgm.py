"""CSGM: compressed sensing with a generative model (Bora et al. 2017), with random restarts.

The estimate is ``x_hat = G(z_hat)`` where ``z_hat`` minimises

    f(z) = ||y - A G(z)||^2 + z_prior_weight * ||z||^2

by Adam on ``z`` alone (the generator is fixed). ``K`` random restarts per image are
optimised together, as one batch of ``N K`` latents (as the csgm reference code did); the
restarts never interact because the objective is a sum of per-latent terms and Adam acts
elementwise. For every image the latent with the lowest data fit ``||y - A G(z)||^2``
over all restarts AND all iterations is kept (the IAGAN paper chooses ``z_hat`` "with
minimal objective value along the iterations"), tracked inside the compiled step.

Presets (:data:`CSGM_PRESETS`) give the published settings: the IAGAN paper's Adam with
learning rate 0.1 for 1600 (BEGAN) or 1800 (PGGAN) iterations, and the csgm reference
grids for MNIST and CelebA::

    from tfinverse.inversion.csgm import CSGM_PRESETS, csgm
    result = csgm(generator, operator, y, **CSGM_PRESETS["began"], seed=0)
    result.x_hat, result.latents, result.extras["restart"]

The module also holds the pieces shared with IAGAN: the Adam update used by both
(:func:`adam_update`, PyTorch's form, as the IAGAN original is PyTorch code) and the check
that a prior fits an operator (:func:`check_generator_operator`).
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Sequence

import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import (
    InversionResult,
    check_generator_operator,
    check_measurement,
    check_operator_batch,
    is_per_example_operator,
)
from tfinverse.utils.cli import progress as progress_bar
from tfinverse.utils.precision import warn_if_xla_on_cpu

__all__ = [
    "ADAM_BETA1",
    "ADAM_BETA2",
    "ADAM_EPSILON",
    "CSGM_PRESETS",
    "AdamSlots",
    "adam_update",
    "check_generator_operator",
    "check_operator_batch",
    "compile_step",
    "check_positive_int",
    "is_per_example_operator",
    "measurement_fit",
    "csgm",
]

#: Adam's defaults in PyTorch and TensorFlow (the IAGAN and csgm originals used them).
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8

#: Published CSGM settings. ``began``/``pggan``: the IAGAN paper (Adam, lr 0.1, 1600 / 1800
#: iterations); the paper does not give the number of restarts, the IAGAN original code used
#: 5 random initialisations, which both presets adopt. ``csgm_mnist``/``csgm_celeba``: the
#: csgm reference grids (1000 steps at lr 0.01 with 10 restarts; 500 steps at lr 0.1 with 2).
CSGM_PRESETS: Dict[str, Dict[str, float]] = {
    "began": {"iterations": 1600, "learning_rate": 0.1, "restarts": 5},
    "pggan": {"iterations": 1800, "learning_rate": 0.1, "restarts": 5},
    "csgm_mnist": {"iterations": 1000, "learning_rate": 0.01, "restarts": 10},
    "csgm_celeba": {"iterations": 500, "learning_rate": 0.1, "restarts": 2},
}


# ----------------------------------------------------------------------------- shared helpers
def check_positive_int(value, name: str) -> int:
    """Returns ``value`` as an int, or raises ValueError unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def measurement_fit(operator, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """The data fit ``||y_i - A x_i||^2`` of every example, in float32.

    Args:
      operator: the forward operator.
      x: ``[b, *in_shape]`` images (cast to the operator's dtype).
      y: ``[b, *out_shape]`` measurements of the operator's dtype.

    Returns:
      float32 ``[b]``.
    """
    residual = y - operator(tf.cast(x, operator.dtype))
    axes = list(range(1, len(operator.out_shape) + 1))
    return tf.cast(tf.reduce_sum(tf.square(residual), axis=axes), tf.float32)


def adam_update(
    variable,
    gradient,
    first_moment,
    second_moment,
    step,
    learning_rate,
    beta1: float = ADAM_BETA1,
    beta2: float = ADAM_BETA2,
    epsilon: float = ADAM_EPSILON,
):
    """One Adam step on a variable, in PyTorch's form (``torch.optim.Adam``), fused.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2`` and
    ``var <- var - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``. TensorFlow's fused
    kernel puts ``eps`` outside the bias correction ("epsilon hat"); passing it
    ``eps sqrt(1 - b2^t)`` makes the two forms identical. One kernel reads and writes the
    variable and both moments, which is markedly faster than separate ops for generator
    weights. Works eagerly, in ``tf.function`` and under XLA.

    Args:
      variable: a ``tf.Variable`` or Keras variable (updated in place).
      gradient: its gradient (same shape).
      first_moment: variable ``m`` (same shape, updated in place).
      second_moment: variable ``v`` (same shape, updated in place).
      step: the 1-based step count ``t`` (a number or scalar tensor).
      learning_rate: ``lr``.
      beta1: decay of ``m``.
      beta2: decay of ``v``.
      epsilon: PyTorch's ``eps``.

    Returns:
      The update op (None when executing eagerly).
    """
    dtype = variable.dtype
    dtype = dtype if isinstance(dtype, tf.DType) else tf.as_dtype(dtype)
    step = tf.cast(step, dtype)
    # A Python float must become a tensor of the variable's dtype directly: casting would go
    # through float32 and perturb float64 learning rates.
    if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
        learning_rate = tf.cast(learning_rate, dtype)
    else:
        learning_rate = tf.constant(learning_rate, dtype)
    beta1_power = tf.pow(tf.constant(beta1, dtype), step)
    beta2_power = tf.pow(tf.constant(beta2, dtype), step)
    epsilon_hat = tf.constant(epsilon, dtype) * tf.sqrt(1.0 - beta2_power)
    if isinstance(gradient, tf.IndexedSlices):
        gradient = tf.convert_to_tensor(gradient)
    return tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=first_moment.handle,
        v=second_moment.handle,
        beta1_power=beta1_power,
        beta2_power=beta2_power,
        lr=learning_rate,
        beta1=tf.constant(beta1, dtype),
        beta2=tf.constant(beta2, dtype),
        epsilon=epsilon_hat,
        grad=tf.cast(gradient, dtype),
    )


class AdamSlots:
    """Zero-initialised Adam moments ``m`` and ``v`` for a list of variables.

    Args:
      variables: the variables to optimise (their shapes and dtypes are copied).
    """

    def __init__(self, variables: Sequence):
        self.first = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
        self.second = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]

    def reset(self) -> None:
        """Sets every moment back to zero (a fresh optimiser)."""
        for slot in self.first + self.second:
            slot.assign(tf.zeros_like(slot))

    def apply(self, variables: Sequence, gradients: Sequence, step, learning_rate) -> None:
        """Adam step on every variable with a gradient (None gradients are skipped).

        Args:
          variables: the variables, in the order given at construction.
          gradients: their gradients.
          step: the 1-based step count.
          learning_rate: the learning rate.
        """
        for variable, gradient, m, v in zip(variables, gradients, self.first, self.second):
            if gradient is not None:
                adam_update(variable, gradient, m, v, step, learning_rate)


def compile_step(function: Callable, run_eagerly: bool, jit_compile: bool, noinline: bool = False) -> Callable:
    """``function`` as a ``tf.function`` (XLA with ``jit_compile``), or as it is when ``run_eagerly``.

    ``noinline`` keeps calls of the compiled function out of line in the graphs that call it
    (ignored under XLA, which clusters the function itself).
    """
    if run_eagerly:
        return function
    warn_if_xla_on_cpu(jit_compile)
    attributes = {"_noinline": True} if noinline and not jit_compile else None
    return tf.function(function, jit_compile=bool(jit_compile), autograph=False, experimental_attributes=attributes)


def _initial_latents(generator, z_init, batch: int, restarts: int, seed) -> np.ndarray:
    """Start latents ``[N, K, d]``: ``z_init`` after validation, else draws from the prior."""
    latent_dim = generator.latent_dim
    if z_init is None:
        draw = generator.sample_latent(batch * restarts, seed)
        return np.asarray(draw, np.float32).reshape(batch, restarts, latent_dim)
    z = np.asarray(z_init.numpy() if isinstance(z_init, (tf.Tensor, tf.Variable)) else z_init)
    if z.dtype.kind != "f":
        raise ValueError(f"z_init must be floating point, got dtype {z.dtype}")
    if z.ndim == 2 and restarts == 1:
        z = z[:, None, :]
    expected = f"[{batch}, {restarts}, {latent_dim}]" + (f" or [{batch}, {latent_dim}]" if restarts == 1 else "")
    if z.shape != (batch, restarts, latent_dim):
        raise ValueError(
            f"z_init must have shape {expected} (images, restarts, latent_dim), got {list(np.shape(z_init))}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("z_init contains NaN or Inf values")
    return z.astype(np.float32)


# ----------------------------------------------------------------------------- CSGM
def csgm(
    generator,
    operator,
    y,
    *,
    iterations: int = 1600,
    learning_rate: float = 0.1,
    restarts: int = 5,
    z_prior_weight: float = 0.0,
    seed=0,
    jit_compile: bool = False,
    progress: bool = True,
    z_init=None,
    run_eagerly: bool = False,
) -> InversionResult:
    """Recovers images as ``G(z_hat)`` by Adam on the latent, with ``K`` restarts batched together.

    Every iteration evaluates ``||y - A G(z)||^2`` for all ``N K`` latents in one compiled
    step, records for each (image, restart) the latent with the lowest value so far, then
    takes one Adam step on ``f(z) = ||y - A G(z)||^2 + z_prior_weight ||z||^2``. The latents
    reached after the last step are evaluated too. Per image, the best latent over restarts
    and iterations is returned. The generator is called in inference mode; priors whose
    inference pass couples the examples of a batch (a DCGAN with ``batch_statistics=True``)
    make the restarts depend on each other.

    Args:
      generator: a :class:`tfinverse.models.Generator` whose ``output_shape`` is the
        operator's ``in_shape``.
      operator: any :class:`tfinverse.operators.LinearOperator` (per-example operators must
        hold exactly ``N`` draws; restart ``k`` of image ``i`` uses draw ``i``).
      y: ``[N, *operator.out_shape]`` measurements.
      iterations: Adam steps (1600 BEGAN, 1800 PGGAN in the IAGAN paper).
      learning_rate: Adam learning rate (0.1 in the paper).
      restarts: random initialisations ``K`` per image.
      z_prior_weight: weight of ``||z||^2`` in the optimised objective (0 in the IAGAN
        paper; the csgm reference exposes it). Selection always uses the data fit alone.
      seed: seed of the initial latents (a Python int or ``numpy.random.Generator``; drawn
        from ``generator.sample_latent`` as ``[N, K, d]`` in that order).
      jit_compile: compile the step with XLA.
      progress: show a progress bar (only on a terminal, see :func:`tfinverse.utils.cli.progress`).
      z_init: optional start latents ``[N, K, latent_dim]`` (or ``[N, latent_dim]`` when
        ``restarts == 1``) instead of draws from ``seed``.
      run_eagerly: run the step without ``tf.function`` (debugging, benchmarks).

    Returns:
      :class:`~tfinverse.inversion.base.InversionResult` with ``x_hat = G(latents)``
      (``[N, H, W, C]`` in [0, 1]), ``latents`` ``[N, latent_dim]``, ``best_objective``
      ``[N]`` (the data fit of the returned latent), and ``history`` ``[iterations, N]``:
      row ``t`` is the data fit after ``t + 1`` Adam steps, the minimum over the restarts of
      each image. ``extras``:

      * ``restart`` ``[N]``: index of the chosen restart;
      * ``best_iteration`` ``[N]``: Adam steps taken by the chosen latent (0 = its start);
      * ``restart_history`` ``[iterations, N, K]``: the data fit of every restart;
      * ``restart_best_objective`` ``[N, K]``: each restart's best data fit;
      * ``initial_latents`` ``[N, K, latent_dim]`` and ``initial_objective`` ``[N, K]``;
      * ``final_latents`` ``[N, K, latent_dim]``: where every restart ended.

    Raises:
      ValueError: for a measurement of the wrong shape or with NaN/Inf (checked first),
        a generator that does not fit the operator, non-positive ``iterations``,
        ``restarts`` or ``learning_rate``, a negative ``z_prior_weight`` or a bad ``z_init``.
    """
    start_time = time.perf_counter()
    y = check_measurement(operator, y)
    check_generator_operator(generator, operator)
    iterations = check_positive_int(iterations, "iterations")
    restarts = check_positive_int(restarts, "restarts")
    if not float(learning_rate) > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if not float(z_prior_weight) >= 0:
        raise ValueError(f"z_prior_weight must be non-negative, got {z_prior_weight}")
    batch = int(y.shape[0])
    if batch < 1:
        raise ValueError("y holds no measurements (batch size 0)")
    check_operator_batch(operator, batch)
    z_start = _initial_latents(generator, z_init, batch, restarts, seed)
    latent_dim = generator.latent_dim
    total = batch * restarts

    # Restart-major layout: row k * N + i is restart k of image i, so every restart is a
    # contiguous [N] block that per-example operators can take as it is.
    z_var = tf.Variable(np.transpose(z_start, (1, 0, 2)).reshape(total, latent_dim), trainable=False)
    slots = AdamSlots([z_var])
    steps_taken = tf.Variable(0, dtype=tf.int64, trainable=False)
    best_fit = tf.Variable(tf.fill([total], np.float32(np.inf)), trainable=False)
    best_z = tf.Variable(tf.zeros([total, latent_dim]), trainable=False)
    best_step = tf.Variable(tf.zeros([total], tf.int64), trainable=False)
    prior_weight = float(z_prior_weight)
    per_example = is_per_example_operator(operator)
    y_tiled = y if per_example else tf.tile(y, [restarts] + [1] * len(operator.out_shape))

    def fit_of(z):
        x = generator(z)
        if not per_example:
            return measurement_fit(operator, x, y_tiled)
        return tf.concat(
            [measurement_fit(operator, x[k * batch:(k + 1) * batch], y) for k in range(restarts)], axis=0
        )

    def track(fit, z):
        improved = fit < best_fit
        best_fit.assign(tf.where(improved, fit, best_fit))
        best_z.assign(tf.where(improved[:, None], z, best_z))
        best_step.assign(tf.where(improved, steps_taken, best_step))

    def step():
        with tf.GradientTape() as tape:
            z = tf.convert_to_tensor(z_var)
            tape.watch(z)
            fit = fit_of(z)
            loss = tf.reduce_sum(fit)
            if prior_weight:
                loss = loss + prior_weight * tf.reduce_sum(tf.square(z))
        gradient = tape.gradient(loss, z)
        track(fit, z)
        steps_taken.assign_add(1)
        slots.apply([z_var], [gradient], steps_taken, learning_rate)
        return fit

    def evaluate():
        z = tf.convert_to_tensor(z_var)
        fit = fit_of(z)
        track(fit, z)
        return fit

    step_fn = compile_step(step, run_eagerly, jit_compile)
    # The final evaluation runs once: tracing it would cost more than running it eagerly.
    evaluate_fn = evaluate

    fits: List[tf.Tensor] = []
    bar = progress_bar(range(iterations), desc="CSGM", **({} if progress else {"disable": True}))
    refresh = max(1, iterations // 50)
    for index in bar:
        fits.append(step_fn())
        if not bar.disable and (index % refresh == 0 or index == iterations - 1):
            per_image = tf.reduce_min(tf.reshape(best_fit, [restarts, batch]), axis=0)
            bar.set_postfix(best=f"{float(tf.reduce_mean(per_image)):.4g}")
    fits.append(evaluate_fn())
    bar.close()

    all_fits = tf.stack(fits).numpy().reshape(iterations + 1, restarts, batch)
    restart_history = np.transpose(all_fits[1:], (0, 2, 1))  # [T, N, K]
    restart_best = best_fit.numpy().reshape(restarts, batch).T  # [N, K]
    chosen = np.argmin(restart_best, axis=1)
    rows = chosen * batch + np.arange(batch)
    latents = best_z.numpy()[rows]
    x_hat = generator(latents).numpy()
    return InversionResult(
        x_hat=x_hat,
        history=restart_history.min(axis=2).astype(np.float32),
        best_objective=restart_best[np.arange(batch), chosen].astype(np.float32),
        latents=latents,
        seconds=time.perf_counter() - start_time,
        extras={
            "restart": chosen,
            "best_iteration": best_step.numpy()[rows],
            "restart_history": restart_history.astype(np.float32),
            "restart_best_objective": restart_best.astype(np.float32),
            "initial_latents": z_start,
            "initial_objective": all_fits[0].T.astype(np.float32),
            "final_latents": np.transpose(z_var.numpy().reshape(restarts, batch, latent_dim), (1, 0, 2)),
        },
    )
