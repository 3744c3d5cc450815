"""Feature-space losses: feature matching and a perceptual loss with a pluggable backbone.

Both compare feature maps with the mean squared difference. A list (or tuple) of maps, e.g.
the activations of several layers, gives the SUM over maps of each map's mean, optionally
weighted, so every layer counts the same whatever its size.

The perceptual loss needs a feature extractor (a "backbone", e.g. a pretrained VGG). None
ships with tfinverse and nothing is downloaded: :class:`PerceptualLoss` takes any callable
``images -> features``; without one, :attr:`PerceptualLoss.available` is False and calling
it raises :class:`BackboneMissingError` (a silent 0 would quietly drop a term from an
objective).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import tensorflow as tf

__all__ = [
    "feature_matching_loss",
    "BackboneMissingError",
    "PerceptualLoss",
    "perceptual_loss",
]


def _as_list(features):
    return list(features) if isinstance(features, (list, tuple)) else [features]


def feature_matching_loss(real_features, fake_features, weights: Optional[Sequence[float]] = None,
                          batch_mean: bool = False) -> tf.Tensor:
    """Mean squared difference of feature maps, summed over a list of maps.

    Args:
      real_features: a feature tensor ``[batch, ...]`` or a list of them (e.g. one per
        discriminator layer).
      fake_features: the same structure and shapes.
      weights: one factor per map (default 1 each).
      batch_mean: compare the maps' means over the batch instead of sample by sample
        (Salimans et al. 2016's feature matching, ``||E f(x) - E f(G(z))||^2`` averaged over
        features); then the two batches need not be paired or equally large.

    Returns:
      float32 scalar ``sum_l w_l mean((f_l(real) - f_l(fake))^2)``.

    Raises:
      ValueError: if the lists differ in length or ``weights`` has the wrong length.
    """
    real_list, fake_list = _as_list(real_features), _as_list(fake_features)
    if len(real_list) != len(fake_list) or not real_list:
        raise ValueError(f"real and fake features must be non-empty lists of the same length, got "
                         f"{len(real_list)} and {len(fake_list)}")
    if weights is None:
        weights = [1.0] * len(real_list)
    if len(weights) != len(real_list):
        raise ValueError(f"weights must have one entry per feature map ({len(real_list)}), got {len(weights)}")
    total = tf.constant(0.0, tf.float32)
    for weight, real, fake in zip(weights, real_list, fake_list):
        real = tf.cast(real, tf.float32)
        fake = tf.cast(fake, tf.float32)
        if batch_mean:
            real, fake = tf.reduce_mean(real, axis=0), tf.reduce_mean(fake, axis=0)
        total = total + float(weight) * tf.reduce_mean(tf.square(real - fake))
    return total


class BackboneMissingError(RuntimeError):
    """A perceptual loss was evaluated without a feature extractor."""


class PerceptualLoss:
    """``feature_matching_loss(backbone(preprocess(a)), backbone(preprocess(b)))``.

    Args:
      backbone: callable mapping images ``[batch, H, W, C]`` to a feature tensor or a list of
        them (a ``keras.Model`` with several outputs works). Optional: None builds a loss that
        reports ``available == False`` and raises when called.
      weights: one factor per feature map the backbone returns (default 1 each).
      preprocess: optional callable applied to both image batches first (e.g. the backbone's
        own input scaling).

    Example::

        vgg = keras.applications.VGG16(include_top=False, weights=local_file)
        features = keras.Model(vgg.input, [vgg.get_layer(n).output for n in ("block2_conv2", "block3_conv3")])
        loss = PerceptualLoss(features, preprocess=lambda x: keras.applications.vgg16.preprocess_input(255 * x))
    """

    def __init__(self, backbone: Optional[Callable] = None, weights: Optional[Sequence[float]] = None,
                 preprocess: Optional[Callable] = None):
        if backbone is not None and not callable(backbone):
            raise TypeError(f"backbone must be callable (images -> features), got {type(backbone).__name__}")
        self.backbone = backbone
        self.weights = None if weights is None else [float(w) for w in weights]
        self.preprocess = preprocess

    @property
    def available(self) -> bool:
        """Whether a backbone was given (else calling the loss raises)."""
        return self.backbone is not None

    def features(self, images):
        """The backbone's features of ``images`` (after ``preprocess``).

        Raises:
          BackboneMissingError: without a backbone.
        """
        if self.backbone is None:
            raise BackboneMissingError(
                "PerceptualLoss has no backbone: pass a callable images -> features (e.g. a Keras "
                "VGG feature model built from local weights); none ships with tfinverse"
            )
        images = tf.cast(images, tf.float32)
        if self.preprocess is not None:
            images = self.preprocess(images)
        return self.backbone(images)

    def __call__(self, images, references) -> tf.Tensor:
        """The perceptual distance of two image batches.

        Args:
          images: ``[batch, H, W, C]`` (e.g. reconstructions).
          references: same shape (e.g. targets).

        Returns:
          float32 scalar.

        Raises:
          BackboneMissingError: without a backbone.
        """
        return feature_matching_loss(self.features(references), self.features(images), weights=self.weights)


def perceptual_loss(images, references, backbone: Optional[Callable] = None,
                    weights: Optional[Sequence[float]] = None) -> tf.Tensor:
    """Functional form of :class:`PerceptualLoss` (raises :class:`BackboneMissingError` without a backbone).

    Args:
      images: ``[batch, H, W, C]``.
      references: same shape.
      backbone: callable ``images -> features`` (or a list of feature maps).
      weights: one factor per feature map.

    Returns:
      float32 scalar.
    """
    return PerceptualLoss(backbone, weights)(images, references)
