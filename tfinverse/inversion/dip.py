"""Deep Image Prior (DIP): fit a randomly initialised network to one measurement.

Ulyanov, Vedaldi and Lempitsky (2018) reconstruct ``x = f_theta(u)`` by minimising
``||A f_theta(u) - y||^2`` over the weights ``theta`` of an untrained encoder-decoder, from
a fixed random input ``u``; the architecture itself is the prior. The IAGAN paper uses it
as a baseline with the official settings for noiseless problems and a quarter of the
iterations under noise (:func:`dip_iterations`).

The network (:func:`build_skip_network`) is DIP's "skip" encoder-decoder: ``levels`` (5)
levels of ``channels`` (128) feature maps down and up, a ``skip_channels`` (4) 1x1 skip
branch at every level, down-sampling by stride-2 3x3 convolutions, bilinear up-sampling,
batch norm + LeakyReLU(0.2) after every convolution, reflection padding, and a 1x1
convolution + sigmoid to the image. Its input is ``input_channels`` (32) channels of
uniform noise ``U[0, 1) * input_scale`` (0.1), perturbed at every iteration by Gaussian noise
of standard deviation ``noise_reg_std`` (1/30). Optimisation is Adam with learning rate 0.01
and PyTorch's defaults (betas 0.9, 0.999, eps 1e-8). Choices made here where DIP's paper
and code leave freedom or depend on PyTorch:

* convolution weights and biases are drawn from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the
  distribution of PyTorch's default initialisation, from an explicit seed (every image of
  a batch gets its own weights, input and perturbations, see :func:`image_seeds`);
* batch norm always normalises by the statistics of the current (single-image) batch, as
  DIP's networks, which stay in PyTorch training mode, do; epsilon is PyTorch's 1e-5;
* the estimate is the network output of the last iteration (with its perturbed input), as
  DIP's scripts report it, or of the best validation iteration when early stopping is on;
* the loss is the mean squared error over the measurement entries.

Optional early stopping (``validation_fraction > 0``, not in DIP) holds out a random part of
the measurement entries, fits the rest, and stops when the held-out error has not improved
for ``patience`` iterations, returning the estimate with the lowest held-out error.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import (
    InversionResult,
    check_measurement,
    check_operator_batch,
    is_per_example_operator,
)
from tfinverse.utils.precision import warn_if_xla_on_cpu

__all__ = [
    "DIP_LEARNING_RATE",
    "DIP_NOISE_REG_STD",
    "DIP_INPUT_CHANNELS",
    "DIP_INPUT_SCALE",
    "DIP_NOISY_ITERATION_FACTOR",
    "ReflectionPadding2D",
    "build_skip_network",
    "initialise_network",
    "dip_input",
    "dip_iterations",
    "split_measurements",
    "image_seeds",
    "dip",
]

DIP_LEARNING_RATE = 0.01
DIP_NOISE_REG_STD = 1.0 / 30.0
DIP_INPUT_CHANNELS = 32
DIP_INPUT_SCALE = 0.1
#: IAGAN ran DIP for a quarter of its noiseless iterations under noise.
DIP_NOISY_ITERATION_FACTOR = 4

_BN_EPSILON = 1e-5
_LEAKY_SLOPE = 0.2
_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-8


def dip_iterations(noiseless_iterations: int, noisy: bool, factor: int = DIP_NOISY_ITERATION_FACTOR) -> int:
    """Iterations for DIP as IAGAN ran it: the full count without noise, a quarter with noise.

    Args:
      noiseless_iterations: DIP's iteration count for the noiseless problem.
      noisy: whether the measurements are noisy.
      factor: the reduction under noise (4 in IAGAN, "tuned for best average performance").

    Returns:
      ``noiseless_iterations`` or ``max(1, noiseless_iterations // factor)``.

    Raises:
      ValueError: for a non-positive count or factor.
    """
    if int(noiseless_iterations) < 1 or int(factor) < 1:
        raise ValueError(
            f"noiseless_iterations and factor must be positive, got {noiseless_iterations} and {factor}"
        )
    if not noisy:
        return int(noiseless_iterations)
    return max(1, int(noiseless_iterations) // int(factor))


class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by reflection (the border pixel is not repeated).

    Args:
      padding: pixels added on every side.
    """

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def _per_level(value: Union[int, Sequence[int]], levels: int, what: str) -> Tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        values = (int(value),) * levels
    else:
        values = tuple(int(v) for v in value)
    if len(values) != levels or min(values) < 0:
        raise ValueError(f"{what} must be a non-negative int or {levels} of them, got {value!r}")
    return values


def _ceil_half(size: int) -> int:
    return (size + 1) // 2


def build_skip_network(
    image_shape: Sequence[int],
    *,
    channels: Union[int, Sequence[int]] = 128,
    skip_channels: Union[int, Sequence[int]] = 4,
    levels: int = 5,
    input_channels: int = DIP_INPUT_CHANNELS,
    kernel_size: int = 3,
    name: str = "dip_skip",
) -> keras.Model:
    """DIP's "skip" encoder-decoder for images of ``image_shape``.

    Level ``i`` (outermost first) maps its input ``h`` to
    ``conv3(concat(skip(h), up(deeper(down(h)))))`` where ``down`` is a stride-2 conv then a
    conv (``channels[i]`` each), ``skip`` a 1x1 conv to ``skip_channels[i]`` (omitted when 0),
    ``up`` bilinear x2 up-sampling (centre-cropped to ``h``'s size when it was odd), and the
    concatenation is batch-normalised and followed by a 3x3 and a 1x1 conv with
    ``channels[i]`` filters. Every conv is followed by batch norm and LeakyReLU(0.2); the
    network ends with a 1x1 conv to the image channels and a sigmoid. Convolutions use
    reflection padding.

    Args:
      image_shape: ``(H, W, C)`` of the output image.
      channels: feature maps per level (one int for all, or ``levels`` ints); 128 in DIP.
      skip_channels: skip-branch channels per level; 4 in DIP.
      levels: number of down/up levels; 5 in DIP.
      input_channels: channels of the noise input; 32 in DIP.
      kernel_size: odd kernel size of the down and up convolutions; 3 in DIP.
      name: model name.

    Returns:
      A built ``keras.Model`` ``[n, H, W, input_channels] -> [n, H, W, C]`` in ``(0, 1)``.
      Its weights still need :func:`initialise_network`.

    Raises:
      ValueError: for bad sizes, or an image too small for reflection padding at the
        deepest level (its feature maps must be at least 2 pixels wide).
    """
    height, width, out_channels = (int(s) for s in image_shape)
    levels = int(levels)
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    down_channels = _per_level(channels, levels, "channels")
    skips = _per_level(skip_channels, levels, "skip_channels")
    if min(down_channels) < 1:
        raise ValueError(f"channels must be >= 1, got {channels!r}")
    pad = int(kernel_size) // 2
    smallest = min(height, width)
    for _ in range(levels):
        smallest = _ceil_half(smallest)
    if smallest <= pad:
        raise ValueError(
            f"a {height}x{width} image is too small for {levels} levels: the deepest feature map "
            f"would be {smallest} pixel(s) wide, too small to reflection-pad by {pad}; use fewer levels"
        )

    def conv_block(h, filters, size, stride, label):
        if size > 1:
            h = ReflectionPadding2D(size // 2, name=f"{label}_pad")(h)
        h = keras.layers.Conv2D(filters, size, strides=stride, padding="valid", name=f"{label}_conv")(h)
        h = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{label}_bn")(h)
        return keras.layers.LeakyReLU(negative_slope=_LEAKY_SLOPE, name=f"{label}_act")(h)

    def level(h, index, size):
        h_height, h_width = size
        deep = conv_block(h, down_channels[index], kernel_size, 2, f"l{index}_down")
        deep = conv_block(deep, down_channels[index], kernel_size, 1, f"l{index}_down2")
        deeper_size = (_ceil_half(h_height), _ceil_half(h_width))
        if index + 1 < levels:
            deep = level(deep, index + 1, deeper_size)
        deep = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"l{index}_up")(deep)
        extra_h, extra_w = 2 * deeper_size[0] - h_height, 2 * deeper_size[1] - h_width
        if extra_h or extra_w:
            deep = keras.layers.Cropping2D(
                ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
                name=f"l{index}_crop",
            )(deep)
        if skips[index] > 0:
            skip = conv_block(h, skips[index], 1, 1, f"l{index}_skip")
            merged = keras.layers.Concatenate(name=f"l{index}_concat")([skip, deep])
        else:
            merged = deep
        merged = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"l{index}_merge_bn")(merged)
        out = conv_block(merged, down_channels[index], kernel_size, 1, f"l{index}_up_conv")
        return conv_block(out, down_channels[index], 1, 1, f"l{index}_up_1x1")

    inputs = keras.Input((height, width, int(input_channels)), name="noise")
    features = level(inputs, 0, (height, width))
    image = keras.layers.Conv2D(out_channels, 1, name="to_image")(features)
    image = keras.layers.Activation("sigmoid", name="sigmoid")(image)
    return keras.Model(inputs, image, name=name)


def initialise_network(network: keras.Model, seed: int) -> None:
    """Draws fresh weights: PyTorch's default conv initialisation, batch norm reset.

    Convolution kernels and biases get ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``fan_in =
    k * k * in_channels``); batch-norm scales 1, offsets 0, moving statistics 0 and 1.

    Args:
      network: a network from :func:`build_skip_network` (any Keras model with Conv2D and
        BatchNormalization layers works).
      seed: numpy seed of the draw.
    """
    rng = np.random.default_rng(int(seed))
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_shape = tuple(layer.kernel.shape)
            limit = 1.0 / np.sqrt(np.prod(kernel_shape[:-1]))
            layer.kernel.assign(rng.uniform(-limit, limit, kernel_shape).astype(np.float32))
            if layer.bias is not None:
                layer.bias.assign(rng.uniform(-limit, limit, tuple(layer.bias.shape)).astype(np.float32))
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(np.ones(layer.gamma.shape, np.float32))
            layer.beta.assign(np.zeros(layer.beta.shape, np.float32))
            layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
            layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))


def dip_input(image_shape: Sequence[int], seed: int, input_channels: int = DIP_INPUT_CHANNELS,
              scale: float = DIP_INPUT_SCALE) -> np.ndarray:
    """DIP's fixed network input: uniform noise ``U[0, 1) * scale``.

    Args:
      image_shape: ``(H, W, C)`` of the image (only ``H`` and ``W`` are used).
      seed: numpy seed.
      input_channels: noise channels (32).
      scale: multiplier (1/10 in DIP).

    Returns:
      float32 ``[1, H, W, input_channels]``.
    """
    rng = np.random.default_rng(int(seed))
    height, width = int(image_shape[0]), int(image_shape[1])
    return (rng.random((1, height, width, int(input_channels))) * float(scale)).astype(np.float32)


def split_measurements(
    shape: Sequence[int], validation_fraction: float, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Random split of measurement entries into a fitting and a held-out (validation) part.

    Exactly ``round(validation_fraction * size)`` entries (at least 1, at most ``size - 1``)
    are held out, chosen uniformly without replacement.

    Args:
      shape: shape of one measurement (``operator.out_shape``).
      validation_fraction: fraction held out, in ``(0, 1)``.
      seed: numpy seed.

    Returns:
      ``(fit_mask, validation_mask)``: float32 arrays of ``shape`` with 0/1 entries that sum
      to one everywhere.

    Raises:
      ValueError: for a fraction outside ``(0, 1)`` or a measurement with fewer than 2 entries.
    """
    fraction = float(validation_fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    size = int(np.prod(shape))
    if size < 2:
        raise ValueError(f"a measurement with {size} entries cannot be split")
    count = int(min(max(round(fraction * size), 1), size - 1))
    held_out = np.zeros(size, np.float32)
    held_out[np.random.default_rng(int(seed)).permutation(size)[:count]] = 1.0
    held_out = held_out.reshape(tuple(shape))
    return 1.0 - held_out, held_out


def image_seeds(seed: int, index: int) -> Tuple[int, int, int]:
    """Independent seeds of image ``index`` of a batch: weights, input noise, perturbations.

    Args:
      seed: the call's seed.
      index: position of the image in the batch.

    Returns:
      ``(weight_seed, input_seed, perturbation_seed)``, drawn from
      ``numpy.random.default_rng([seed, index])``. The perturbation at step ``t`` is
      ``tf.random.stateless_normal(shape, [perturbation_seed, t])``.
    """
    draws = np.random.default_rng([int(seed), int(index)]).integers(0, 2**31 - 1, size=3)
    return int(draws[0]), int(draws[1]), int(draws[2])


class _PatienceTracker:
    """Tracks the best held-out error and says when ``patience`` steps brought no gain."""

    def __init__(self, patience: int, min_delta: float):
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best = np.inf
        self.best_step = -1

    def update(self, step: int, value: float) -> Tuple[bool, bool]:
        """Returns ``(improved, stop)`` after seeing ``value`` at ``step``."""
        if value < self.best - self.min_delta:
            self.best, self.best_step = value, step
            return True, False
        return False, step - self.best_step >= self.patience


def dip(
    operator,
    y,
    *,
    iterations: int = 2000,
    learning_rate: float = DIP_LEARNING_RATE,
    noise_reg_std: float = DIP_NOISE_REG_STD,
    validation_fraction: float = 0.0,
    patience: int = 100,
    min_delta: float = 0.0,
    channels: Union[int, Sequence[int]] = 128,
    skip_channels: Union[int, Sequence[int]] = 4,
    levels: int = 5,
    input_channels: int = DIP_INPUT_CHANNELS,
    input_scale: float = DIP_INPUT_SCALE,
    seed: int = 0,
    progress: bool = True,
    jit_compile: bool = False,
) -> InversionResult:
    """Deep Image Prior reconstruction of every measurement in a batch.

    Each image gets its own network (same architecture, own weights) and its own input
    noise (seeds from :func:`image_seeds`), optimised by Adam on
    ``mean (A f(u + noise_t) - y)^2`` over the fitted measurement entries. The step is a
    compiled ``tf.function`` traced once for the whole batch.

    Args:
      operator: any :class:`~tfinverse.operators.LinearOperator`; the network outputs images
        of ``operator.in_shape``. Operators holding one draw per example (``batch_size``)
        apply draw ``i`` to image ``i``.
      y: measurements ``[N, *operator.out_shape]``.
      iterations: Adam steps per image (2000 is DIP's super-resolution setting; see
        :func:`dip_iterations` for noisy problems).
      learning_rate: Adam step size (0.01 in DIP).
      noise_reg_std: standard deviation of the Gaussian perturbation of the input at every
        step (1/30 in DIP; 0 disables it).
      validation_fraction: fraction of measurement entries held out for early stopping (one
        split, :func:`split_measurements` with ``seed``, for every image); 0 (DIP's
        behaviour) fits all entries for all iterations.
      patience: with validation, stop after this many steps without a lower held-out error.
      min_delta: improvement below this does not count.
      channels, skip_channels, levels, input_channels: network size (see
        :func:`build_skip_network`); small values make fast tests.
      input_scale: scale of the uniform input noise (0.1).
      seed: seed of the weights, the input, the perturbations and the validation split.
      progress: show a progress bar (on a terminal).
      jit_compile: compile the step with XLA.

    Returns:
      An :class:`InversionResult` with ``x_hat`` ``[N, *in_shape]`` in ``(0, 1)``,
      ``history`` ``[iterations, N]`` of the fitted objective (NaN after an image's early
      stop), ``best_objective`` the fitted objective of the returned estimate, no latents,
      and ``extras``: ``validation_history`` (``[iterations, N]``, NaN without validation),
      ``stopped_at`` (iterations run per image), ``best_iteration`` (iteration of the
      returned estimate), ``validation_mask``.

    Raises:
      ValueError: for a measurement of the wrong shape or with NaN/Inf (checked first), bad
        counts or rates, a per-example operator holding another number of draws than ``N``,
        or an image too small for the network.
    """
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    iterations = int(iterations)
    learning_rate = float(learning_rate)
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate}")
    noise_reg_std = float(noise_reg_std)
    if not np.isfinite(noise_reg_std) or noise_reg_std < 0:
        raise ValueError(f"noise_reg_std must be a finite number >= 0, got {noise_reg_std}")
    if int(patience) < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an explicit Python int, got {seed!r}")
    seed = int(seed)
    use_validation = float(validation_fraction) > 0.0
    if use_validation:
        fit_mask, validation_mask = split_measurements(operator.out_shape, validation_fraction, seed)
    else:
        if float(validation_fraction) != 0.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        fit_mask = np.ones(operator.out_shape, np.float32)
        validation_mask = np.zeros(operator.out_shape, np.float32)

    n = int(y.shape[0])
    check_operator_batch(operator, n)
    per_example = is_per_example_operator(operator)
    image_shape = tuple(operator.in_shape)
    network = build_skip_network(
        image_shape,
        channels=channels,
        skip_channels=skip_channels,
        levels=levels,
        input_channels=input_channels,
    )
    weights = network.trainable_variables
    first_moments = [tf.Variable(tf.zeros_like(w), trainable=False) for w in weights]
    second_moments = [tf.Variable(tf.zeros_like(w), trainable=False) for w in weights]

    dtype = operator.dtype
    fit_weight = tf.constant(fit_mask / fit_mask.sum(), dtype)
    validation_weight = tf.constant(validation_mask / max(validation_mask.sum(), 1.0), dtype)
    input_shape = (1,) + image_shape[:2] + (int(input_channels),)
    net_input = tf.Variable(tf.zeros(input_shape), trainable=False)
    target = tf.Variable(tf.zeros((1,) + tuple(operator.out_shape), dtype), trainable=False)
    # One-hot position of the current image, for operators holding one draw per example.
    selector = tf.Variable(tf.zeros([n], dtype), trainable=False)

    def measure(output):
        output = tf.cast(output, dtype)
        if not per_example:
            return operator(output)
        # Place the image at its row of an otherwise zero batch and read that row back.
        row_shape = [n] + [1] * len(image_shape)
        measured = operator(tf.reshape(selector, row_shape) * output)
        out_row_shape = [n] + [1] * len(operator.out_shape)
        return tf.reduce_sum(tf.reshape(selector, out_row_shape) * measured, axis=0, keepdims=True)

    def step(t, perturbation):
        perturbed = net_input + noise_reg_std * perturbation
        with tf.GradientTape() as tape:
            output = network(perturbed, training=True)
            squared = tf.square(measure(output) - target)
            fit_loss = tf.reduce_sum(fit_weight * squared)
        validation_loss = tf.reduce_sum(validation_weight * squared)
        gradients = tape.gradient(fit_loss, weights)
        # Adam with bias correction, PyTorch's defaults; t counts from 1.
        t_float = tf.cast(t, tf.float32)
        correction1 = 1.0 - tf.pow(_ADAM_BETA1, t_float)
        correction2 = 1.0 - tf.pow(_ADAM_BETA2, t_float)
        for weight, gradient, m, v in zip(weights, gradients, first_moments, second_moments):
            m.assign(_ADAM_BETA1 * m + (1.0 - _ADAM_BETA1) * gradient)
            v.assign(_ADAM_BETA2 * v + (1.0 - _ADAM_BETA2) * tf.square(gradient))
            denominator = tf.sqrt(v / correction2) + _ADAM_EPSILON
            weight.assign_sub(learning_rate * (m / correction1) / denominator)
        return tf.cast(fit_loss, tf.float32), tf.cast(validation_loss, tf.float32), output

    warn_if_xla_on_cpu(jit_compile)
    compiled_step = tf.function(step, jit_compile=jit_compile, autograph=False)
    # Drawn outside the (possibly XLA-compiled) step: XLA draws other numbers for a seed.
    draw = tf.function(lambda s: tf.random.stateless_normal(input_shape, s), autograph=False)
    no_perturbation = tf.zeros(input_shape, tf.float32)

    history = np.full((iterations, n), np.nan, np.float32)
    validation_history = np.full((iterations, n), np.nan, np.float32)
    estimates = np.zeros((n,) + image_shape, np.float32)
    best_objective = np.zeros(n, np.float32)
    stopped_at = np.full(n, iterations, np.int64)
    best_iteration = np.full(n, iterations - 1, np.int64)

    from tfinverse.utils.cli import progress as progress_bar

    bar_kwargs: Dict[str, Any] = {"total": iterations * n, "desc": "DIP", "leave": False}
    if not progress:
        bar_kwargs["disable"] = True
    bar = progress_bar(None, **bar_kwargs)
    try:
        for i in range(n):
            weight_seed, input_seed, noise_stream = image_seeds(seed, i)
            initialise_network(network, weight_seed)
            for variable in first_moments + second_moments:
                variable.assign(tf.zeros_like(variable))
            net_input.assign(dip_input(image_shape, input_seed, input_channels, input_scale))
            target.assign(y[i : i + 1])
            selector.assign(tf.one_hot(i, n, dtype=dtype))
            tracker = _PatienceTracker(patience, min_delta)
            for t in range(iterations):
                if noise_reg_std > 0:
                    perturbation = draw(tf.constant([noise_stream, t], tf.int64))
                else:
                    perturbation = no_perturbation
                fit_loss, validation_loss, output = compiled_step(tf.constant(t + 1, tf.int64), perturbation)
                history[t, i] = float(fit_loss)
                bar.update(1)
                if not use_validation:
                    if t == iterations - 1:
                        estimates[i] = output.numpy()[0]
                        best_objective[i] = history[t, i]
                    continue
                validation_history[t, i] = float(validation_loss)
                improved, stop = tracker.update(t, validation_history[t, i])
                if improved:
                    estimates[i] = output.numpy()[0]
                    best_objective[i] = history[t, i]
                    best_iteration[i] = t
                if stop:
                    stopped_at[i] = t + 1
                    bar.update(iterations - t - 1)
                    break
            if t % 100 == 0 or t == iterations - 1:
                bar.set_postfix(image=i, loss=f"{history[t, i]:.3e}")
    finally:
        bar.close()

    extras = {
        "validation_history": validation_history,
        "stopped_at": stopped_at,
        "best_iteration": best_iteration,
        "validation_mask": validation_mask if use_validation else None,
    }
    return InversionResult(
        x_hat=estimates,
        history=history,
        best_objective=best_objective,
        latents=None,
        seconds=time.perf_counter() - start_time,
        extras=extras,
    )
