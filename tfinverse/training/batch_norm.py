"""Batch-norm statistics that match the trained function: re-estimating the moving averages.

A network trained in training mode normalises every batch by that batch's own statistics;
in inference mode it uses the moving averages instead. Those are exponential averages with
momentum ``m`` (Keras: ``moving = m moving + (1 - m) batch``), so after ``t`` updates the
initial values (mean 0, variance 1) still weigh ``m^t``: with igan's ``m = 0.999`` that is
0.74 after 300 updates and 0.37 after 1000. The inference-mode network is then a different
function from the one that was trained.

:func:`recalibrate_batch_norm` replaces every trainable ``keras.layers.BatchNormalization``
layer's moving mean and variance by statistics accumulated over ``N`` training-mode forward
passes, each batch weighted by its number of examples (for equal batches: equal weights, the
cumulative average with momentum schedule ``1 - 1/k``)::

    moving_mean     = sum_b w_b mu_b / sum_b w_b
    moving_variance = sum_b w_b var_b / sum_b w_b                         (variance="batch")
                      + sum_b w_b mu_b^2 / sum_b w_b - moving_mean^2      (variance="pooled")

``mu_b`` and ``var_b`` are the layer's batch mean and variance in training mode, which in
Keras 3 are ``ops.moments`` of the layer input over every axis but the channel axis: the
BIASED variance (divided by the count, no Bessel correction), the same quantity Keras
averages into ``moving_variance``. ``"pooled"`` (the default) is the biased variance of all
the recalibration inputs taken together, so for the first batch-norm layer of a network the
inference-mode output equals the training-mode output on one big batch made of all the
recalibration batches; deeper layers see inputs normalised per batch (as in training), which
differs from the big batch by the batch-to-batch noise of the statistics upstream.
``"batch"`` is the mean of the per-batch variances, the value Keras' own moving average
tends to (it lacks the spread of the batch means, about ``var / batch_elements``).

Only the moving statistics change: trainable weights, optimizers and every layer's momentum
are left as they were (momentum is restored even when a pass fails, and then the moving
statistics are restored too). Frozen layers (``trainable=False``, which Keras 3 runs in
inference mode even with ``training=True``) keep their statistics. Layers with
``renorm=True`` are not supported. A layer called more than once per forward pass is
recalibrated on its last call's inputs only.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "BATCH_NORM_VARIANCE_ESTIMATES",
    "BatchNormRecalibration",
    "batch_norm_layers",
    "recalibrate_batch_norm",
]

BATCH_NORM_VARIANCE_ESTIMATES = ("pooled", "batch")


@dataclass
class BatchNormRecalibration:
    """What :func:`recalibrate_batch_norm` did.

    Attributes:
      num_batches: forward passes made.
      num_examples: examples in them.
      layers: names of the recalibrated layers.
      skipped: names of trainable batch-norm layers the passes never reached (kept as they were).
      variance: the variance estimate (``"pooled"`` or ``"batch"``).
    """

    num_batches: int = 0
    num_examples: int = 0
    layers: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    variance: str = "pooled"


def batch_norm_layers(model) -> List[keras.layers.BatchNormalization]:
    """Every ``BatchNormalization`` layer of ``model``, nested sub-models included, once each.

    Args:
      model: a ``keras.Layer`` / ``keras.Model`` (functional, sequential or subclassed).

    Returns:
      The layers in Keras' traversal order.
    """
    found, seen = [], set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in seen:
            seen.add(id(layer))
            found.append(layer)
    return found


def _num_examples(inputs) -> int:
    first = tf.nest.flatten(inputs)[0]
    shape = first.shape
    return int(shape[0]) if shape.rank and shape[0] is not None else int(tf.shape(first)[0])


# One compiled training-mode pass per model, kept across calls: a new tf.function per call
# would retrace every time (and TensorFlow warns after five). It is always traced and run with
# every layer's momentum at 0, so the momentum it captures is the one each call sets.
_TRAINING_FORWARD = weakref.WeakKeyDictionary()


def _training_forward(model):
    forward = _TRAINING_FORWARD.get(model)
    if forward is None:
        # A weak reference, so that the cache does not keep the model alive.
        owner = weakref.ref(model)
        forward = tf.function(lambda inputs: owner()(inputs, training=True), reduce_retracing=True)
        _TRAINING_FORWARD[model] = forward
    return forward


def recalibrate_batch_norm(
    model,
    batches: Iterable,
    num_batches: Optional[int] = None,
    input_fn: Optional[Callable] = None,
    variance: str = "pooled",
) -> BatchNormRecalibration:
    """Re-estimates every trainable batch-norm layer's moving statistics from training-mode passes.

    Args:
      model: the network (a ``keras.Model`` or layer; nested sub-models are handled).
      batches: an iterable of batches (a ``tf.data.Dataset``, a list of arrays, an iterator).
        Each batch, after ``input_fn``, is what ``model`` is called with: one tensor, or a
        tuple / list / dict of tensors for a model with several inputs.
      num_batches: use the first ``num_batches`` batches (None: all of them; ``batches``
        must then be finite).
      input_fn: maps a batch to the model's inputs (e.g. ``lambda b: b["y"]``); default the
        batch itself.
      variance: ``"pooled"`` (default, the variance of all inputs together) or ``"batch"``
        (the mean of the per-batch variances); see the module docstring.

    Returns:
      A :class:`BatchNormRecalibration`. Without trainable batch-norm layers nothing is read
      from ``batches`` and ``num_batches`` is 0.

    Raises:
      ValueError: for an unknown ``variance``, ``num_batches < 1``, no batches, or a layer
        with ``renorm=True``.
    """
    if variance not in BATCH_NORM_VARIANCE_ESTIMATES:
        raise ValueError(f"variance must be one of {BATCH_NORM_VARIANCE_ESTIMATES}, got {variance!r}")
    if num_batches is not None and int(num_batches) < 1:
        raise ValueError(f"num_batches must be >= 1 (or None for all), got {num_batches}")
    layers = [layer for layer in batch_norm_layers(model) if layer.trainable]
    report = BatchNormRecalibration(variance=variance)
    if not layers:
        return report
    renorm = [layer.name for layer in layers if getattr(layer, "renorm", False)]
    if renorm:
        raise ValueError(f"batch-norm layers with renorm=True are not supported: {renorm}")

    momenta = [layer.momentum for layer in layers]
    originals = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    sums = [None] * len(layers)  # per layer: [sum w mu, sum w var, sum w mu^2] in float64
    total_weight = 0.0
    try:
        # Momentum 0 makes each training-mode pass write its batch's (mean, biased variance)
        # into the moving variables, where we read them; finite values first, since 0 * NaN
        # garbage would stay NaN.
        for layer in layers:
            layer.momentum = 0.0
            layer.moving_mean.assign(tf.zeros_like(layer.moving_mean))
            layer.moving_variance.assign(tf.ones_like(layer.moving_variance))
        forward = _training_forward(model)
        iterator = iter(batches)
        if num_batches is not None:
            iterator = itertools.islice(iterator, int(num_batches))
        for batch in iterator:
            inputs = input_fn(batch) if input_fn is not None else batch
            inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
            weight = float(_num_examples(inputs))
            forward(inputs)
            for index, layer in enumerate(layers):
                mean = layer.moving_mean.numpy().astype(np.float64)
                var = layer.moving_variance.numpy().astype(np.float64)
                update = (weight * mean, weight * var, weight * mean * mean)
                sums[index] = update if sums[index] is None else tuple(s + u for s, u in zip(sums[index], update))
            total_weight += weight
            report.num_batches += 1
            report.num_examples += int(weight)
        if report.num_batches == 0:
            raise ValueError("recalibrate_batch_norm got no batches")
        for index, layer in enumerate(layers):
            sum_mean, sum_var, sum_square = sums[index]
            mean = sum_mean / total_weight
            var = sum_var / total_weight
            if variance == "pooled":
                var = np.maximum(var + sum_square / total_weight - mean * mean, 0.0)
            if not np.any(mean) and np.all(var == 1.0):
                # Still the reset values: the passes never reached this layer.
                layer.moving_mean.assign(originals[index][0])
                layer.moving_variance.assign(originals[index][1])
                report.skipped.append(layer.name)
                continue
            layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
            layer.moving_variance.assign(tf.cast(var, layer.moving_variance.dtype))
            report.layers.append(layer.name)
    except BaseException:
        for layer, (mean, var) in zip(layers, originals):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(var)
        raise
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return report
