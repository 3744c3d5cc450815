"""Latent-vector recovery (LVR) with stochastic clipping, and the sharpness attribute (LVR-SA).

LVR ("Correction by Projection", after Lipton and Tripathi's "Precise recovery of latent
vectors from GANs") inverts a generator by plain gradient descent on a batch of latent
guesses ``z`` started from the prior, minimising

    L(z) = sum_i mean_pixels (A G(z_i) - y_i)^2

(summed over the batch, averaged over the measurement entries), with one of three rules that
keep ``z`` in the latent box ``[-1, 1]^d`` of a uniform prior after every step:

* ``"none"``: no constraint;
* ``"projected"``: clip to the box;
* ``"stochastic"``: re-draw every component at or beyond the bound uniformly from the open
  interval ``(-1, 1)`` (a random restart of that component).

The original ran the DCGAN's batch norm on the statistics of the batch of guesses
(``batch_statistics=True`` for :class:`~tfinverse.models.DCGANGenerator`), used a learning
rate of 1.0 halved every 50 000 steps, measured the loss on the tanh range ``[-1, 1]``
(see ``native_range_loss``) and, on noisy images, stopped once the summed squared latent
error fell below ``0.005 * batch``.

Recovered latents of noisy generated images carry a consistent bias per noise level; the
difference between the mean true latent and the mean recovered latent is the *sharpness
attribute* (:func:`estimate_sharpness_attribute`), and adding it to latents recovered from
other noisy images (:func:`apply_sharpness_attribute`) sharpens their projections (LVR-SA,
:func:`denoise_with_sharpness_attribute`)::

    from tfinverse.inversion.lvr import (
        denoise_by_projection, estimate_sharpness_attribute, noise_sigma_from_variance)

    sigma = noise_sigma_from_variance(0.1)                 # the original's variance 0.1
    attribute = estimate_sharpness_attribute(g, sigma, n=64, seed=0, iterations=5000)
    plain = denoise_by_projection(g, y_noisy, iterations=5000, seed=1)
    sharp = denoise_by_projection(g, y_noisy, attribute=attribute, iterations=5000, seed=1)
"""

from __future__ import annotations

import inspect
import json
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import (
    InversionResult,
    check_generator_operator,
    check_measurement,
    check_operator_batch,
)

__all__ = [
    "CLIPPING_MODES",
    "ORIGINAL_NOISE_VARIANCES",
    "ORIGINAL_PRECISIONS",
    "noise_sigma_from_variance",
    "project_to_box",
    "stochastic_clip_draws",
    "replace_at_bound",
    "stochastic_clip",
    "recover_latents",
    "latent_errors",
    "recovery_success_rate",
    "latent_conditioning",
    "estimate_sharpness_attribute",
    "apply_sharpness_attribute",
    "save_attribute",
    "load_attribute",
    "denoise_by_projection",
    "denoise_with_sharpness_attribute",
]

# The original's constants live in the index of LVR's settings.
from tfinverse.tasks.lvr import CLIPPING_MODES, ORIGINAL_NOISE_VARIANCES, ORIGINAL_PRECISIONS  # noqa: E402
from tfinverse.utils.precision import warn_if_xla_on_cpu

_SUCCESS_CRITERIA = ("mse", "max_abs")


def noise_sigma_from_variance(variance: float) -> float:
    """Converts a noise variance of the original (images in ``[-1, 1]``) to a ``[0, 1]`` sigma.

    The original added ``N(0, variance)`` to tanh images in ``[-1, 1]``; on ``[0, 1]`` images
    the same noise has standard deviation ``sqrt(variance) / 2``.

    Args:
      variance: noise variance on the ``[-1, 1]`` scale (e.g. one of
        :data:`ORIGINAL_NOISE_VARIANCES`).

    Returns:
      The standard deviation on the ``[0, 1]`` scale.

    Raises:
      ValueError: for a negative or non-finite variance.
    """
    variance = float(variance)
    if not np.isfinite(variance) or variance < 0:
        raise ValueError(f"variance must be a finite number >= 0, got {variance}")
    return float(np.sqrt(variance) / 2.0)


# --------------------------------------------------------------------------- clipping rules
def project_to_box(z, bound: float = 1.0) -> tf.Tensor:
    """Projected-gradient rule: clips every component to ``[-bound, bound]``.

    Args:
      z: latents, any shape.
      bound: half-width of the latent box.

    Returns:
      The clipped tensor.
    """
    z = tf.convert_to_tensor(z)
    bound = tf.constant(bound, z.dtype)
    return tf.clip_by_value(z, -bound, bound)


def _open_interval_low(bound: float, dtype: tf.DType) -> float:
    """The float just above ``-bound``, so uniform draws avoid the closed end ``-bound``."""
    np_dtype = dtype.as_numpy_dtype
    return float(np.nextafter(np_dtype(-bound), np_dtype(0)))


def stochastic_clip_draws(shape, seed, bound: float = 1.0, dtype=tf.float32) -> tf.Tensor:
    """The candidate values of stochastic clipping: uniform on the open box ``(-bound, bound)``.

    ``tf.random.stateless_uniform(shape, seed, minval=low, maxval=bound)`` with ``low`` the
    float just above ``-bound``, so no draw lands on the bound itself. XLA draws other
    numbers for the same seed, so compiled code takes these draws as an input instead of
    drawing them itself (the results then do not depend on ``jit_compile``).

    Args:
      shape: shape of the latents.
      seed: integer tensor of shape ``[2]`` (or a pair of ints).
      bound: half-width of the latent box.
      dtype: float dtype.

    Returns:
      Tensor of ``shape``.

    Raises:
      ValueError: for a non-integer seed.
    """
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"seed must be an integer tensor of shape [2], got dtype {seed.dtype.name}")
    dtype = tf.as_dtype(dtype)
    return tf.random.stateless_uniform(
        shape, seed, minval=_open_interval_low(bound, dtype), maxval=bound, dtype=dtype
    )


def replace_at_bound(z, draws, bound: float = 1.0) -> tf.Tensor:
    """Replaces the components of ``z`` at or beyond ``+-bound`` by the matching ``draws``.

    Args:
      z: float latents.
      draws: replacement values of the same shape (see :func:`stochastic_clip_draws`).
      bound: half-width of the latent box.

    Returns:
      ``where(|z| >= bound, draws, z)``.
    """
    z = tf.convert_to_tensor(z)
    at_or_beyond = tf.abs(z) >= tf.constant(bound, z.dtype)
    return tf.where(at_or_beyond, tf.cast(draws, z.dtype), z)


def stochastic_clip(z, seed, bound: float = 1.0) -> tf.Tensor:
    """Stochastic clipping: re-draws components at or beyond ``+-bound`` from ``U(-bound, bound)``.

    The component at flat index ``k`` takes the ``k``-th value of
    :func:`stochastic_clip_draws` for ``z``'s shape and ``seed``; components strictly inside
    the box are returned unchanged. Works inside ``tf.function`` (but under XLA the draws
    differ, see :func:`stochastic_clip_draws`).

    Args:
      z: float latents, any shape.
      seed: integer tensor of shape ``[2]`` (or a pair of ints) for the stateless draw.
      bound: half-width of the latent box.

    Returns:
      Latents of the same shape, all strictly inside ``(-bound, bound)`` unless NaN.

    Raises:
      ValueError: for a non-integer seed.
    """
    z = tf.convert_to_tensor(z)
    return replace_at_bound(z, stochastic_clip_draws(tf.shape(z), seed, bound, z.dtype), bound)


# --------------------------------------------------------------------------- helpers
def _check_choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what} must be one of {tuple(choices)}, got {value!r}")
    return value


def _check_positive_int(value, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an explicit Python int, got {seed!r}")
    return int(seed)


def _supports_batch_statistics(generator) -> bool:
    try:
        return "batch_statistics" in inspect.signature(generator.__call__).parameters
    except (TypeError, ValueError):
        return False


def _generator_call_kwargs(generator, batch_statistics: Optional[bool]) -> Dict[str, Any]:
    """Keyword arguments that select the batch-norm mode of a generator call."""
    if batch_statistics is None:
        return {}
    if _supports_batch_statistics(generator):
        return {"batch_statistics": bool(batch_statistics)}
    if batch_statistics:
        raise ValueError(
            f"{type(generator).__name__} has no batch-statistics mode; pass batch_statistics=None "
            "or False, or use a DCGANGenerator"
        )
    return {}


def _default_bound(generator, bound: Optional[float]) -> float:
    if bound is not None:
        bound = float(bound)
        if not np.isfinite(bound) or bound <= 0:
            raise ValueError(f"bound must be a finite number > 0, got {bound}")
        return bound
    # The box is the support of a uniform prior; for a normal prior +-3 keeps 99.7 % of it.
    return 1.0 if generator.latent_distribution == "uniform" else 3.0


def _check_latents(z, n: int, latent_dim: int, what: str) -> np.ndarray:
    array = np.asarray(z, dtype=np.float32)
    if array.shape != (n, latent_dim):
        raise ValueError(f"{what} must have shape [{n}, {latent_dim}], got {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or Inf values")
    return array


def _progress_bar(total: int, enabled: bool, desc: str):
    from tfinverse.utils.cli import progress as progress_bar

    kwargs = {"total": total, "desc": desc, "leave": False}
    if not enabled:
        kwargs["disable"] = True
    return progress_bar(None, **kwargs)


def _identity_operator(image_shape):
    from tfinverse.operators.identity import Identity

    return Identity(image_shape=tuple(image_shape))


# --------------------------------------------------------------------------- recovery
def recover_latents(
    generator,
    operator,
    y,
    *,
    clipping: str = "stochastic",
    iterations: int = 1000,
    learning_rate: float = 1.0,
    lr_halving_steps: int = 50000,
    batch_statistics: Optional[bool] = None,
    early_stop_threshold: Optional[float] = None,
    z_true=None,
    initial_latents=None,
    bound: Optional[float] = None,
    native_range_loss: bool = True,
    seed: int = 0,
    progress: bool = True,
    jit_compile: bool = False,
) -> InversionResult:
    """Recovers latents ``z`` with ``A G(z) ~ y`` by plain gradient descent (LVR).

    One guess per measurement, all updated together: ``z <- z - lr_t * grad L(z)`` with
    ``L(z) = sum_i mean_m (A G(z_i) - y_i)_m^2`` (summed over the batch, averaged over the
    measurement entries, as the original), then the ``clipping`` rule. The step runs as a
    compiled ``tf.function``.

    Args:
      generator: a :class:`~tfinverse.models.generator.Generator` whose images fit the
        operator's input.
      operator: a :class:`~tfinverse.operators.LinearOperator` (``identity`` for denoising).
      y: measurements ``[N, *operator.out_shape]`` of ``[0, 1]`` images.
      clipping: ``"stochastic"`` (re-draw components at or beyond ``+-bound`` uniformly,
        seeded), ``"projected"`` (clip to the box) or ``"none"``.
      iterations: maximum number of gradient steps.
      learning_rate: initial step size (1.0 in the original).
      lr_halving_steps: the step size halves after every this many steps (50 000 in the
        original).
      batch_statistics: batch-norm mode of the generator during the descent: True normalises
        with the statistics of the batch of guesses, as the original did (needs a generator
        with that mode, e.g. :class:`~tfinverse.models.DCGANGenerator`; then every estimate
        depends on the whole batch, and so should the target images); False uses the
        moving averages; None keeps the generator's own default.
      early_stop_threshold: if given, stop once the summed error falls below
        ``early_stop_threshold * N`` (the original used 0.005 on noisy images). The error is
        the summed per-vector mean squared latent error when ``z_true`` is given (as the
        original), else the summed objective. None runs all ``iterations``.
      z_true: optional ground-truth latents ``[N, latent_dim]`` (experiments on generated
        images): enables the latent early-stopping criterion and the per-iteration latent
        error in ``extras["latent_error_history"]``.
      initial_latents: optional starting guesses ``[N, latent_dim]``; default: drawn from the
        generator's prior with ``seed``.
      bound: half-width of the latent box; default 1.0 for a uniform prior (its support)
        and 3.0 for a normal prior (the original only used uniform latents; for a normal
        prior the box is a truncation chosen here).
      native_range_loss: measure the squared error on the generator's native output range
        (``[-1, 1]`` for tanh networks, i.e. 4x the ``[0, 1]`` error), so that the original's
        learning rate 1.0 and threshold 0.005 keep their meaning. False measures it on
        ``[0, 1]``.
      seed: seed of the initial guesses and of the stochastic-clipping draws.
      progress: show a progress bar (on a terminal).
      jit_compile: compile the step with XLA.

    Returns:
      An :class:`InversionResult`: ``x_hat = G(z_hat)`` (``[0, 1]`` images), ``history``
      ``[steps, N]`` (per-image objective before each step; one more row than updates
      when stopped early), ``best_objective`` (the objective of ``z_hat``), ``latents``
      ``z_hat`` (the last iterate, as the original; no best-iterate selection), and
      ``extras`` with ``early_stop_iteration`` (number of updates before stopping, or None),
      ``learning_rate_final``, ``clipping``, ``bound``, ``redrawn`` (components re-drawn by
      stochastic clipping over the run, per vector), ``initial_latents``, ``clip_seed``
      (step ``t`` re-draws from :func:`stochastic_clip_draws` with seed ``[clip_seed, t]``,
      drawn outside the compiled step so that ``jit_compile`` does not change them) and,
      with ``z_true``, ``latent_error_history`` ``[steps, N]`` and ``latent_error``.

    Raises:
      ValueError: for a measurement of the wrong shape or with NaN/Inf (before anything is
        built), an unknown clipping mode, bad counts, a generator that does not fit the
        operator, a per-example operator holding another number of draws than ``N``, latents
        of the wrong shape, or ``batch_statistics=True`` for a generator without that mode.
    """
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    clipping = _check_choice(clipping, CLIPPING_MODES, "clipping")
    iterations = _check_positive_int(iterations, "iterations")
    lr_halving_steps = _check_positive_int(lr_halving_steps, "lr_halving_steps")
    learning_rate = float(learning_rate)
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate}")
    if early_stop_threshold is not None:
        early_stop_threshold = float(early_stop_threshold)
        if not np.isfinite(early_stop_threshold) or early_stop_threshold < 0:
            raise ValueError(f"early_stop_threshold must be a finite number >= 0, got {early_stop_threshold}")
    seed = _check_seed(seed)
    check_generator_operator(generator, operator)
    call_kwargs = _generator_call_kwargs(generator, batch_statistics)
    bound = _default_bound(generator, bound)

    n = int(y.shape[0])
    check_operator_batch(operator, n)
    latent_dim = generator.latent_dim
    rng = np.random.default_rng(seed)
    if initial_latents is None:
        z0 = np.asarray(generator.sample_latent(n, rng), dtype=np.float32)
    else:
        z0 = _check_latents(initial_latents, n, latent_dim, "initial_latents")
    clip_seed = int(rng.integers(0, 2**31 - 1))
    has_truth = z_true is not None
    z_true_t = tf.constant(_check_latents(z_true, n, latent_dim, "z_true") if has_truth else z0)

    low, high = generator.output_range
    scale = tf.constant((high - low) ** 2 if native_range_loss else 1.0, operator.dtype)
    z_var = tf.Variable(z0, dtype=tf.float32, trainable=False, name="lvr_latents")

    def per_image_objective(z):
        x = tf.cast(generator(z, **call_kwargs), operator.dtype)
        residual = operator(x) - y
        axes = list(range(1, residual.shape.rank))
        return tf.cast(scale * tf.reduce_mean(tf.square(residual), axis=axes), tf.float32)

    def step(lr, draws):
        z_t = z_var.read_value()
        with tf.GradientTape() as tape:
            tape.watch(z_t)
            objective = per_image_objective(z_t)
            total = tf.reduce_sum(objective)
        gradient = tape.gradient(total, z_t)
        z_next = z_t - lr * gradient
        if clipping == "stochastic":
            redrawn = tf.reduce_sum(tf.cast(tf.abs(z_next) >= bound, tf.int32), axis=1)
            z_next = replace_at_bound(z_next, draws, bound)
        else:
            redrawn = tf.zeros([n], tf.int32)
            if clipping == "projected":
                z_next = project_to_box(z_next, bound)
        z_var.assign(z_next)
        latent_error = tf.reduce_mean(tf.square(z_t - z_true_t), axis=1)
        return objective, latent_error, redrawn

    warn_if_xla_on_cpu(jit_compile)
    compiled_step = tf.function(step, jit_compile=jit_compile, autograph=False)
    # Drawn outside the (possibly XLA-compiled) step, so the numbers do not depend on jit_compile.
    draw = tf.function(
        lambda seed: stochastic_clip_draws([n, latent_dim], seed, bound, tf.float32), autograph=False
    )
    no_draws = tf.zeros([n, latent_dim], tf.float32)
    compiled_objective = tf.function(per_image_objective, jit_compile=jit_compile, autograph=False)

    history, latent_history = [], []
    redrawn_total = np.zeros(n, np.int64)
    early_stop_iteration = None
    z_before = None
    lr_value = learning_rate
    bar = _progress_bar(iterations, progress, f"LVR ({clipping} clipping)")
    try:
        for t in range(iterations):
            lr_value = learning_rate * 0.5 ** (t // lr_halving_steps)
            if early_stop_threshold is not None:
                z_before = z_var.numpy()
            if clipping == "stochastic":
                draws = draw(tf.constant([clip_seed, t], tf.int64))
            else:
                draws = no_draws
            objective, latent_error, redrawn = compiled_step(tf.constant(lr_value, tf.float32), draws)
            objective = objective.numpy()
            history.append(objective)
            if has_truth:
                latent_history.append(latent_error.numpy())
            if early_stop_threshold is not None:
                error = latent_history[-1] if has_truth else objective
                if float(np.sum(error)) < early_stop_threshold * n:
                    # z_t met the criterion: return it, not the update made from it.
                    early_stop_iteration = t
                    z_var.assign(z_before)
                    break
            redrawn_total += redrawn.numpy()
            bar.update(1)
            if t % 50 == 0:
                bar.set_postfix(loss=f"{float(np.sum(objective)):.3e}")
    finally:
        bar.close()

    z_hat = z_var.numpy()
    if early_stop_iteration is None:
        best_objective = compiled_objective(tf.constant(z_hat)).numpy()
    else:
        best_objective = history[-1]
    x_hat = generator(tf.constant(z_hat), **call_kwargs).numpy()
    extras: Dict[str, Any] = {
        "early_stop_iteration": early_stop_iteration,
        "learning_rate_final": lr_value,
        "clipping": clipping,
        "bound": bound,
        "redrawn": redrawn_total,
        "initial_latents": z0,
        "clip_seed": clip_seed,
    }
    if has_truth:
        extras["latent_error_history"] = np.stack(latent_history).astype(np.float32)
        extras["latent_error"] = latent_errors(z_true, z_hat)
    return InversionResult(
        x_hat=x_hat.astype(np.float32),
        history=np.stack(history).astype(np.float32),
        best_objective=np.asarray(best_objective, np.float32),
        latents=z_hat,
        seconds=time.perf_counter() - start_time,
        extras=extras,
    )


# --------------------------------------------------------------------------- accuracy
def latent_errors(z_true, z_hat, criterion: str = "mse") -> np.ndarray:
    """Per-vector distance between true and recovered latents.

    Args:
      z_true: ``[N, d]`` true latents.
      z_hat: ``[N, d]`` recovered latents.
      criterion: ``"mse"``: mean over components of the squared error (the original's
        measure); ``"max_abs"``: largest absolute component error.

    Returns:
      float64 ``[N]``.

    Raises:
      ValueError: for mismatched or non-2-D shapes, or an unknown criterion.
    """
    _check_choice(criterion, _SUCCESS_CRITERIA, "criterion")
    z_true = np.asarray(z_true, np.float64)
    z_hat = np.asarray(z_hat, np.float64)
    if z_true.ndim != 2 or z_true.shape != z_hat.shape:
        raise ValueError(
            f"z_true and z_hat must both have shape [N, latent_dim], got {list(z_true.shape)} "
            f"and {list(z_hat.shape)}"
        )
    difference = z_hat - z_true
    if criterion == "mse":
        return np.mean(difference**2, axis=1)
    return np.max(np.abs(difference), axis=1)


def recovery_success_rate(
    z_true,
    z_hat,
    precisions: Sequence[float] = ORIGINAL_PRECISIONS,
    criterion: str = "mse",
) -> Dict[float, float]:
    """Fraction of latents recovered to each precision.

    The original counts a recovery as successful at precision ``p`` when the mean squared
    component error ``mean_j (z_hat_j - z_j)^2`` is strictly below ``p``, for
    ``p in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)`` (it checked every iteration and counted a vector
    once it had reached ``p``; to reproduce that, pass the iterate with the smallest error,
    e.g. from ``extras["latent_error_history"]``). ``criterion="max_abs"`` asks instead for
    every component to be within ``p``.

    Args:
      z_true: ``[N, d]`` true latents.
      z_hat: ``[N, d]`` recovered latents.
      precisions: the thresholds ``p``.
      criterion: ``"mse"`` (the original's) or ``"max_abs"``.

    Returns:
      ``{p: fraction in [0, 1]}`` in the order of ``precisions``.

    Raises:
      ValueError: for mismatched shapes, an unknown criterion or a non-positive precision.
    """
    errors = latent_errors(z_true, z_hat, criterion)
    rates: Dict[float, float] = {}
    for precision in precisions:
        precision = float(precision)
        if not precision > 0:
            raise ValueError(f"precisions must be > 0, got {precision}")
        rates[precision] = float(np.mean(errors < precision)) if errors.size else 0.0
    return rates


# --------------------------------------------------------------------------- sharpness attribute
def _as_noise_model(noise):
    from tfinverse.operators.noise import GaussianNoise, NoiseModel

    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, (int, float, np.floating, np.integer)) and not isinstance(noise, bool):
        # The original clipped noisy images to the valid range.
        return GaussianNoise(sigma=float(noise), clip=True)
    raise ValueError(
        f"noise must be a sigma on the [0, 1] scale or a tfinverse NoiseModel, got {type(noise).__name__}"
    )


def estimate_sharpness_attribute(
    generator,
    noise,
    n: int = 64,
    seed: int = 0,
    *,
    iterations: int = 1000,
    learning_rate: float = 1.0,
    lr_halving_steps: int = 50000,
    clipping: str = "stochastic",
    batch_statistics: Optional[bool] = None,
    early_stop_threshold: Optional[float] = None,
    native_range_loss: bool = True,
    return_details: bool = False,
    progress: bool = True,
    jit_compile: bool = False,
):
    """Estimates the sharpness attribute of a noise level (LVR-SA).

    Draws ``n`` latents ``z`` from the prior, generates ``G(z)``, adds noise, recovers
    ``z_hat`` by :func:`recover_latents` (identity operator) and returns
    ``mean_i z_i - mean_i z_hat_i``. ``early_stop_threshold`` uses the latent error, as the
    original's noisy runs did.

    Args:
      generator: the prior.
      noise: a sigma on the ``[0, 1]`` scale (Gaussian noise, clipped to ``[0, 1]`` as the
        original clipped; see :func:`noise_sigma_from_variance`) or a
        :class:`~tfinverse.operators.noise.NoiseModel`.
      n: number of generated images (the original used its whole batch).
      seed: seed of the latents, the noise and the recovery.
      iterations, learning_rate, lr_halving_steps, clipping, batch_statistics,
        early_stop_threshold, native_range_loss, progress, jit_compile: see
        :func:`recover_latents`; the images are generated in the same batch-norm mode.
      return_details: also return a dict with ``z_true``, ``clean`` and ``noisy`` images and
        the recovery ``result``.

    Returns:
      The attribute, float32 ``[latent_dim]``; with ``return_details`` a pair
      ``(attribute, details)``.

    Raises:
      ValueError: for a bad noise argument, ``n < 1`` or the errors of
        :func:`recover_latents`.
    """
    n = _check_positive_int(n, "n")
    seed = _check_seed(seed)
    noise_model = _as_noise_model(noise)
    call_kwargs = _generator_call_kwargs(generator, batch_statistics)
    rng = np.random.default_rng(seed)
    z_true = np.asarray(generator.sample_latent(n, rng), np.float32)
    noise_seed, recovery_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    clean = generator(tf.constant(z_true), **call_kwargs)
    noisy = noise_model(clean, noise_seed)
    result = recover_latents(
        generator,
        _identity_operator(generator.output_shape),
        noisy,
        clipping=clipping,
        iterations=iterations,
        learning_rate=learning_rate,
        lr_halving_steps=lr_halving_steps,
        batch_statistics=batch_statistics,
        early_stop_threshold=early_stop_threshold,
        z_true=z_true,
        native_range_loss=native_range_loss,
        seed=recovery_seed,
        progress=progress,
        jit_compile=jit_compile,
    )
    attribute = (z_true.mean(axis=0) - result.latents.mean(axis=0)).astype(np.float32)
    if not return_details:
        return attribute
    details = {
        "z_true": z_true,
        "clean": clean.numpy(),
        "noisy": noisy.numpy(),
        "result": result,
        "noise": repr(noise_model),
    }
    return attribute, details


def apply_sharpness_attribute(z, attribute, bound: Optional[float] = 1.0) -> np.ndarray:
    """Adds a sharpness attribute to recovered latents: ``z + attribute``.

    Args:
      z: ``[N, d]`` (or ``[d]``) latents.
      attribute: ``[d]`` attribute vector.
      bound: clip the sum to ``[-bound, bound]`` (the generator was trained only inside its
        latent box; the paper does not say whether it clipped here); None leaves it unclipped.

    Returns:
      float32 array of the shape of ``z``.

    Raises:
      ValueError: if the attribute's length differs from the latent dimension or either
        holds NaN/Inf.
    """
    z = np.asarray(z, np.float32)
    attribute = np.asarray(attribute, np.float32)
    if attribute.ndim != 1 or z.ndim not in (1, 2) or z.shape[-1] != attribute.shape[0]:
        raise ValueError(
            f"attribute must have shape [latent_dim] matching z's last axis, got attribute "
            f"{list(attribute.shape)} and z {list(z.shape)}"
        )
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(attribute))):
        raise ValueError("z and attribute must be finite")
    shifted = z + attribute
    if bound is not None:
        shifted = np.clip(shifted, -float(bound), float(bound))
    return shifted.astype(np.float32)


def _json_safe(value):
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_attribute(path, vector, metadata: Optional[Mapping[str, Any]] = None) -> str:
    """Saves an attribute vector with its metadata (noise level, generator, ...).

    ``.json`` files hold ``{"vector": [...], "metadata": {...}}``; any other suffix writes a
    numpy ``.npz`` with the vector and the metadata as a JSON string (``.npz`` is appended if
    missing, as numpy does). Existing files are not replaced.

    Args:
      path: target file.
      vector: ``[d]`` attribute.
      metadata: JSON-serialisable mapping (numpy scalars and arrays are converted).

    Returns:
      The path written.

    Raises:
      ValueError: for a vector that is not 1-D and finite.
      FileExistsError: if the file already exists.
    """
    vector = np.asarray(vector, np.float32)
    if vector.ndim != 1 or not np.all(np.isfinite(vector)):
        raise ValueError(f"vector must be a finite 1-D array [latent_dim], got shape {list(vector.shape)}")
    path = os.fspath(path)
    is_json = path.lower().endswith(".json")
    if not is_json and not path.lower().endswith(".npz"):
        path = path + ".npz"
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; remove it or choose another name")
    meta_text = json.dumps(_json_safe(dict(metadata or {})), sort_keys=True)
    if is_json:
        with open(path, "w", encoding="utf-8") as handle:
            content = {"vector": [float(v) for v in vector], "metadata": json.loads(meta_text)}
            json.dump(content, handle, indent=2)
    else:
        np.savez(path, vector=vector, metadata=np.array(meta_text))
    return path


def load_attribute(path) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Loads an attribute written by :func:`save_attribute`.

    Args:
      path: a ``.json`` or ``.npz`` file.

    Returns:
      ``(vector, metadata)``: float32 ``[d]`` and a dict.

    Raises:
      ValueError: if the file does not hold an attribute.
    """
    path = os.fspath(path)
    if path.lower().endswith(".json"):
        with open(path, "r", encoding="utf-8") as handle:
            content = json.load(handle)
        if not isinstance(content, dict) or "vector" not in content:
            raise ValueError(f"{path} holds no attribute vector")
        return np.asarray(content["vector"], np.float32), dict(content.get("metadata") or {})
    with np.load(path, allow_pickle=False) as archive:
        if "vector" not in archive.files:
            raise ValueError(f"{path} holds no attribute vector")
        vector = np.asarray(archive["vector"], np.float32)
        metadata = json.loads(str(archive["metadata"])) if "metadata" in archive.files else {}
    return vector, metadata


# --------------------------------------------------------------------------- denoising
def denoise_by_projection(
    generator,
    y,
    *,
    attribute=None,
    attribute_bound: Optional[float] = 1.0,
    clipping: str = "stochastic",
    iterations: int = 1000,
    learning_rate: float = 1.0,
    lr_halving_steps: int = 50000,
    batch_statistics: Optional[bool] = None,
    early_stop_threshold: Optional[float] = None,
    native_range_loss: bool = True,
    seed: int = 0,
    progress: bool = True,
    jit_compile: bool = False,
) -> InversionResult:
    """Denoises by projecting onto the generator's range: recover ``z``, return ``G(z)`` (LVR).

    With ``attribute`` it is LVR-SA: the estimate is ``G(z_hat + attribute)``.

    Args:
      generator: the prior; ``y`` must have its output shape.
      y: noisy images ``[N, *generator.output_shape]`` in ``[0, 1]`` (LVR needs no noise level).
      attribute: optional sharpness attribute ``[latent_dim]`` (see
        :func:`estimate_sharpness_attribute`).
      attribute_bound: box the shifted latents are clipped to (see
        :func:`apply_sharpness_attribute`).
      clipping, iterations, learning_rate, lr_halving_steps, batch_statistics,
        early_stop_threshold, native_range_loss, seed, progress, jit_compile: see
        :func:`recover_latents` (early stopping here can only use the objective).

    Returns:
      An :class:`InversionResult` with ``x_hat`` the projection, ``latents`` the latents
      behind it (shifted by the attribute if given), the descent's ``history``, and
      ``best_objective`` the objective of the returned estimate. ``extras`` adds
      ``recovered_latents`` (before any attribute) and ``attribute``.

    Raises:
      ValueError: for images of the wrong shape or with NaN/Inf, and the errors of
        :func:`recover_latents` and :func:`apply_sharpness_attribute`.
    """
    operator = _identity_operator(generator.output_shape)
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    if attribute is not None:
        attribute = np.asarray(attribute, np.float32)
        if attribute.shape != (generator.latent_dim,):
            raise ValueError(
                f"attribute must have shape [{generator.latent_dim}], got {list(attribute.shape)}"
            )
    result = recover_latents(
        generator,
        operator,
        y,
        clipping=clipping,
        iterations=iterations,
        learning_rate=learning_rate,
        lr_halving_steps=lr_halving_steps,
        batch_statistics=batch_statistics,
        early_stop_threshold=early_stop_threshold,
        native_range_loss=native_range_loss,
        seed=seed,
        progress=progress,
        jit_compile=jit_compile,
    )
    extras = dict(result.extras)
    extras["recovered_latents"] = result.latents
    extras["attribute"] = attribute
    if attribute is None:
        return InversionResult(
            x_hat=result.x_hat,
            history=result.history,
            best_objective=result.best_objective,
            latents=result.latents,
            seconds=time.perf_counter() - start_time,
            extras=extras,
        )
    call_kwargs = _generator_call_kwargs(generator, batch_statistics)
    shifted = apply_sharpness_attribute(result.latents, attribute, attribute_bound)
    x_hat = generator(tf.constant(shifted), **call_kwargs)
    low, high = generator.output_range
    scale = (high - low) ** 2 if native_range_loss else 1.0
    residual = tf.cast(x_hat, y.dtype) - y
    objective = scale * tf.reduce_mean(tf.square(residual), axis=[1, 2, 3])
    return InversionResult(
        x_hat=x_hat.numpy().astype(np.float32),
        history=result.history,
        best_objective=objective.numpy().astype(np.float32),
        latents=shifted,
        seconds=time.perf_counter() - start_time,
        extras=extras,
    )


def denoise_with_sharpness_attribute(generator, y, attribute, **kwargs) -> InversionResult:
    """LVR-SA denoising: :func:`denoise_by_projection` with a sharpness attribute.

    Args:
      generator: the prior.
      y: noisy images ``[N, *generator.output_shape]``.
      attribute: ``[latent_dim]`` attribute for the noise level of ``y``.
      **kwargs: the keyword arguments of :func:`denoise_by_projection`.

    Returns:
      The :class:`InversionResult` of :func:`denoise_by_projection`.
    """
    if attribute is None:
        raise ValueError("attribute is required for LVR-SA; use denoise_by_projection for plain LVR")
    return denoise_by_projection(generator, y, attribute=attribute, **kwargs)


def latent_conditioning(generator, z, call_kwargs=None, small_fraction: float = 0.1) -> dict:
    """How well the images determine the latents: the spectrum of the generator's Jacobian at z.

    Gradient descent on ``||G(z) - x||^2`` converges to the true latent only as fast as the
    smallest singular value of ``dG/dz`` allows; many tiny singular values mean directions
    of z that barely change the image, so a latent can fit the image closely while being far
    from the true one. The condition number is the largest over the smallest singular value.

    Args:
      generator: a :class:`tfinverse.models.Generator` (images in [0, 1]; the scale does not
        change the condition number).
      z: latents ``[N, latent_dim]``.
      call_kwargs: keyword arguments of the generator call (e.g. ``batch_statistics``).
      small_fraction: singular values below this fraction of the largest count as small.

    Returns:
      ``{"singular_values": [N, d], "condition_number": [N], "small_singular_fraction": [N]}``
      as numpy arrays (float64).
    """
    z = tf.convert_to_tensor(np.asarray(z, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(z)
        images = tf.cast(generator(z, **(call_kwargs or {})), tf.float32)
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
    jacobian = tape.batch_jacobian(flat, z).numpy().astype(np.float64)  # [N, pixels, d]
    singular = np.linalg.svd(jacobian, compute_uv=False)  # [N, min(pixels, d)], descending
    largest = singular[:, :1]
    return {
        "singular_values": singular,
        "condition_number": singular[:, 0] / np.maximum(singular[:, -1], np.finfo(np.float64).tiny),
        "small_singular_fraction": np.mean(singular < small_fraction * largest, axis=1),
    }
