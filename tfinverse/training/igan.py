"""igan training: the parameter estimator against D1 (clean images) and D2 (observations).

The game of "Adversarial Training for Solving Inverse Problems" (see
:mod:`tfinverse.models.igan` for the networks)::

    Z = G(Y)      X_gen = clip(Y - Z, 0, inf)      Y_gen = X2 + Z   (random dual mapping)
    D1: real X1 vs X_gen            D2: real Y vs Y_gen
    G:  fools D1 and (with dual mapping) D2, plus optionally the paired loss
        1000 * mean|X_gen - X1|   (unmixing_mnist_mnist: the smaller of that and
                                   1000 * mean|X_gen - (Y - X1)|, as the two digits of a
                                   mixture are interchangeable; taken over the whole batch)

GAN models (the original's defaults for learning rates G / D and optimizers):

=========  ===============================================  ===========  ====================
model      D loss (per discriminator)                        LR G / D     optimizer
=========  ===============================================  ===========  ====================
vanilla    CE(D(real), 1) + CE(D(fake), 0)                  5e-5 / 5e-6  Adam (TF1 defaults)
ls         0.5 [mean (D(real) - 1)^2 + mean D(fake)^2]       5e-5 / 5e-5  Adam (TF1 defaults)
wgan       -(mean D(real) - mean D(fake)), weights clipped   5e-5 / 5e-6  RMSProp (TF1)
           to [-0.01, 0.01] after every update
=========  ===============================================  ===========  ====================

The G loss sums the D1 and D2 fake terms (CE(D(fake), 1); 0.5 mean (D(fake) - 1)^2;
-mean D(fake)). TF1 defaults: Adam epsilon 1e-8; RMSProp decay 0.9, epsilon 1e-10 and an
accumulator that starts at ONE (:class:`TF1RMSprop`; Keras starts it at zero, which makes
the first WGAN steps about three times larger).

The schedule (the original loop, counted in GENERATOR steps): a *round* is one D1 update,
one D2 update (with dual mapping) and then ``mm`` generator updates. Before a round's
generator updates ``mm`` is set from that round's discriminator losses (their values before
the update): if either is below ``d_thresh`` (0.5 / 0.1 / -5 for vanilla / LS / W) then
``mm = mm + 5`` -- it keeps growing (1, 6, 11, ...) for as long as a discriminator stays
below the threshold -- otherwise ``mm = 1``. ``mm`` starts at 1. Differences from the
original, by choice: without dual mapping only D1's loss is compared (the original compared a
stale D2 value from an untrained D2); both discriminator updates of a round share one
estimator forward pass (the weights are the same for both); and training stops exactly at
``max_generator_steps`` (the original could overshoot by up to ``mm - 1`` steps).

Batches are the tasks' dicts ``y, x, component, x2`` (:func:`tfinverse.tasks.igan_tasks.
training_batches`). Unpaired training (the default) must not let the estimator see which
clean image belongs to ``y``, so D1's real batch is ``x2`` and the dual mapping uses
``x2`` rolled by one sample (another independent clean sample per row); with the paired
loss D1's real batch is the paired ``x`` and the dual mapping uses ``x2``, as the original's
``XY_pair`` batches did. Every network runs in training mode (batch statistics) in every
update, as in the original.

:func:`train_igan` runs the loop with checkpoints (resumable: generator-step count, ``mm``
and the steps left in the current round are checkpointed), TensorBoard scalars and sample
grids, and a progress bar; :meth:`IGAN.export` writes the SavedModel ``y -> (component,
clean)``.

Batch norm (our addition): as training only ever uses batch statistics and the moving
averages have momentum 0.999, :func:`train_igan` ends by re-estimating the estimator's moving
statistics from 50 more training batches (:meth:`IGAN.recalibrate_batch_norm`), before its
final checkpoint, so the exported inference-mode estimator is the trained function. The
original exported the moving averages as they were.

Losses are the single definitions of :mod:`tfinverse.losses`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.losses.adversarial import (
    clip_weights,
    cross_entropy_discriminator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    non_saturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from tfinverse.losses.measurement import PAIRED_LOSS_WEIGHT, paired_loss
from tfinverse.models.igan import (
    IGAN_BN_RECALIBRATION_BATCHES,
    IganEstimator,
    export_igan_estimator,
    recalibrate_estimator_batch_norm,
)
from tfinverse.training.batch_norm import BatchNormRecalibration
from tfinverse.training.checkpointing import TrainingCheckpoint
from tfinverse.utils.cli import progress, summary_images, summary_scalar
from tfinverse.utils.results import save_image_grid

__all__ = [
    "GAN_MODELS",
    "IGAN_LEARNING_RATES",
    "D_THRESHOLDS",
    "WGAN_CLIP_VALUE",
    "PAIRED_LOSS_WEIGHT",
    "MM_INCREMENT",
    "canonical_gan_model",
    "TF1RMSprop",
    "igan_optimizers",
    "discriminator_loss",
    "generator_loss_term",
    "paired_loss",
    "next_generator_steps",
    "IGAN_BN_RECALIBRATION_BATCHES",
    "IGAN",
    "IganTrainingSummary",
    "display_images",
    "train_igan",
]

GAN_MODELS = ("vanilla", "ls", "wgan")
_GAN_MODEL_ALIASES = {
    "vanilla": "vanilla",
    "vanilla_gan": "vanilla",
    "ls": "ls",
    "ls_gan": "ls",
    "lsgan": "ls",
    "wgan": "wgan",
    "w_gan": "wgan",
    "w": "wgan",
}

#: The original's learning rates ``(generator, discriminators)`` per GAN model.
IGAN_LEARNING_RATES = {"vanilla": (5e-5, 5e-6), "ls": (5e-5, 5e-5), "wgan": (5e-5, 5e-6)}

#: A discriminator loss below this adds 5 generator updates to the next round.
D_THRESHOLDS = {"vanilla": 0.5, "ls": 0.1, "wgan": -5.0}

WGAN_CLIP_VALUE = 0.01
MM_INCREMENT = 5


def canonical_gan_model(name: str) -> str:
    """``"vanilla"``, ``"ls"`` or ``"wgan"`` for a GAN model name (the original's
    ``Vanilla_GAN``, ``LS_GAN``, ``W_GAN`` are accepted, in any case).

    Raises:
      ValueError: for an unknown name, listing the accepted ones.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in _GAN_MODEL_ALIASES:
        raise ValueError(f"unknown GAN model {name!r}; expected one of {', '.join(GAN_MODELS)}")
    return _GAN_MODEL_ALIASES[key]


@keras.saving.register_keras_serializable(package="tfinverse.igan")
class TF1RMSprop(keras.optimizers.RMSprop):
    """RMSProp as ``tf.compat.v1.train.RMSPropOptimizer`` ran it: the mean-square accumulator
    starts at one, not zero (decay 0.9, no momentum; give ``epsilon=1e-10`` for TF1's default).
    The update is otherwise Keras's, which is TF1's: ``v -= lr g / sqrt(ms + eps)``."""

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        for velocity in self._velocities:
            velocity.assign(tf.ones(velocity.shape, velocity.dtype))


def igan_optimizers(
    gan_model: str = "vanilla",
    g_learning_rate: Optional[float] = None,
    d_learning_rate: Optional[float] = None,
) -> Tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    """The original's optimizers ``(g, d1, d2)`` for a GAN model.

    Adam with TF1 defaults (betas 0.9 / 0.999, epsilon 1e-8) for vanilla and LS; TF1 RMSProp
    (decay 0.9, epsilon 1e-10, accumulator starting at 1) for WGAN.

    Args:
      gan_model: ``"vanilla"``, ``"ls"`` or ``"wgan"``.
      g_learning_rate: generator step size (default from :data:`IGAN_LEARNING_RATES`).
      d_learning_rate: step size of both discriminators (default likewise).

    Returns:
      Three independent optimizers.
    """
    gan_model = canonical_gan_model(gan_model)
    default_g, default_d = IGAN_LEARNING_RATES[gan_model]
    rates = (
        default_g if g_learning_rate is None else float(g_learning_rate),
        default_d if d_learning_rate is None else float(d_learning_rate),
        default_d if d_learning_rate is None else float(d_learning_rate),
    )
    names = ("g", "d1", "d2")
    if gan_model == "wgan":
        return tuple(
            TF1RMSprop(rate, rho=0.9, momentum=0.0, epsilon=1e-10, name=f"{name}_rmsprop")
            for name, rate in zip(names, rates)
        )
    return tuple(
        keras.optimizers.Adam(rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name=f"{name}_adam")
        for name, rate in zip(names, rates)
    )


def discriminator_loss(gan_model: str, real_logits, fake_logits) -> tf.Tensor:
    """One discriminator's loss (see the module table; the losses of :mod:`tfinverse.losses`).

    Args:
      gan_model: ``"vanilla"``, ``"ls"`` or ``"wgan"``.
      real_logits: ``D(real)``, any shape.
      fake_logits: ``D(fake)``, any shape.

    Returns:
      A float32 scalar.
    """
    gan_model = canonical_gan_model(gan_model)
    if gan_model == "vanilla":
        return cross_entropy_discriminator_loss(real_logits, fake_logits)
    if gan_model == "ls":
        return least_squares_discriminator_loss(real_logits, fake_logits, real_target=1.0, fake_target=0.0)
    return wasserstein_critic_loss(real_logits, fake_logits)


def generator_loss_term(gan_model: str, fake_logits) -> tf.Tensor:
    """The generator's adversarial term against one discriminator; G sums D1's and D2's.

    Args:
      gan_model: ``"vanilla"``, ``"ls"`` or ``"wgan"``.
      fake_logits: ``D(fake)``.

    Returns:
      A float32 scalar: ``CE(D(fake), 1)``, ``0.5 mean (D(fake) - 1)^2`` or ``-mean D(fake)``.
    """
    gan_model = canonical_gan_model(gan_model)
    if gan_model == "vanilla":
        return non_saturating_generator_loss(fake_logits)
    if gan_model == "ls":
        return least_squares_generator_loss(fake_logits, target=1.0)
    return wasserstein_generator_loss(fake_logits)


def next_generator_steps(mm, discriminator_losses: Sequence, threshold: float, increment: int = MM_INCREMENT):
    """The number of generator updates of the next round (the original's ``mm`` rule).

    Args:
      mm: the current value (1 at the start).
      discriminator_losses: this round's discriminator losses (D1, and D2 with dual mapping).
      threshold: ``d_thresh`` of the GAN model.
      increment: added while a discriminator is winning (5).

    Returns:
      ``mm + increment`` if any loss is below ``threshold``, else 1 (a Python int for
      Python inputs, an int64 tensor for tensors).
    """
    if all(isinstance(v, (int, float, np.floating, np.integer)) for v in [mm, *discriminator_losses]):
        return int(mm) + int(increment) if any(float(v) < threshold for v in discriminator_losses) else 1
    below = tf.reduce_any(tf.stack([tf.cast(v, tf.float32) < threshold for v in discriminator_losses]))
    mm = tf.cast(mm, tf.int64)
    return tf.where(below, mm + int(increment), tf.constant(1, tf.int64))


class IGAN(keras.Model):
    """The igan game as a ``keras.Model`` (keras-io idiom): estimator G, D1 on x, D2 on y.

    One call of :meth:`train_step` is one GENERATOR update, preceded by a discriminator round
    when the previous round's ``mm`` generator updates are used up (so ``fit`` with
    ``steps_per_epoch=n`` makes ``n`` generator steps; there the round shares the batch of
    its first generator step). :func:`train_igan` instead draws a fresh batch for each
    discriminator round, as the original did.

    State variables (checkpointed): ``generator_steps``, ``discriminator_rounds``, ``mm``,
    ``remaining_generator_steps`` and the last round's ``d1_loss`` / ``d2_loss``.

    Args:
      estimator: an :class:`~tfinverse.models.igan.IganEstimator`.
      d1: discriminator of clean samples (logits).
      d2: discriminator of observations (logits); may be None without dual mapping.
      dual_mapping: use the random dual mapping and D2 (on in the original).
      paired: add the paired loss (off in the original).
      paired_loss_min_over_permutations: the MNIST + MNIST variant of the paired loss.
      paired_loss_weight: its weight (1000).
      mm_increment: generator updates added while a discriminator wins (5).
      name: model name.

    Raises:
      TypeError: if ``estimator`` is not an ``IganEstimator``.
      ValueError: if ``dual_mapping`` is on but ``d2`` is None, or the discriminators'
        input shapes do not match the estimator's.
    """

    def __init__(
        self,
        estimator: IganEstimator,
        d1: keras.Model,
        d2: Optional[keras.Model] = None,
        dual_mapping: bool = True,
        paired: bool = False,
        paired_loss_min_over_permutations: bool = False,
        paired_loss_weight: float = PAIRED_LOSS_WEIGHT,
        mm_increment: int = MM_INCREMENT,
        name: str = "igan",
    ):
        super().__init__(name=name)
        if not isinstance(estimator, IganEstimator):
            raise TypeError(f"estimator must be a tfinverse.models.igan.IganEstimator, got {type(estimator).__name__}")
        if dual_mapping and d2 is None:
            raise ValueError("dual_mapping=True needs the observation discriminator d2")
        for label, disc in (("d1", d1), ("d2", d2)):
            if disc is None:
                continue
            shape = tuple(int(s) for s in disc.input_shape[1:])
            if shape != estimator.input_shape:
                raise ValueError(
                    f"{label} takes inputs of shape {shape} but the estimator works on {estimator.input_shape}"
                )
        self.estimator = estimator
        self.estimator_network = estimator.network
        self.d1 = d1
        self.d2 = d2
        self.dual_mapping = bool(dual_mapping)
        self.paired = bool(paired)
        self.paired_loss_min_over_permutations = bool(paired_loss_min_over_permutations)
        self.paired_loss_weight = float(paired_loss_weight)
        self.mm_increment = int(mm_increment)
        self.generator_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="generator_steps")
        self.discriminator_rounds = tf.Variable(0, dtype=tf.int64, trainable=False, name="discriminator_rounds")
        self.mm = tf.Variable(1, dtype=tf.int64, trainable=False, name="mm")
        self.remaining_generator_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="remaining")
        self.last_d1_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="d1_loss")
        self.last_d2_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="d2_loss")
        self.gan_model = None
        self.d_threshold = None
        self.g_optimizer = self.d1_optimizer = self.d2_optimizer = None
        self._compiled_steps = None
        self.batch_norm_recalibration: Optional[BatchNormRecalibration] = None
        self.built = True  # the sub-networks are built functional models

    # ------------------------------------------------------------------ set-up
    def compile(
        self,
        g_optimizer=None,
        d1_optimizer=None,
        d2_optimizer=None,
        gan_model: str = "vanilla",
        d_threshold: Optional[float] = None,
        jit_compile: bool = False,
        **kwargs,
    ):
        """Attaches the optimizers and the GAN model.

        Args:
          g_optimizer: estimator optimizer (default: the original's for ``gan_model``).
          d1_optimizer: D1 optimizer (default likewise).
          d2_optimizer: D2 optimizer (default likewise).
          gan_model: ``"vanilla"``, ``"ls"`` or ``"wgan"`` (original names accepted).
          d_threshold: the ``mm`` threshold (default :data:`D_THRESHOLDS`).
          jit_compile: compile the steps with XLA (``train_step`` under ``fit`` and the
            functions of :meth:`compiled_steps`).
          **kwargs: forwarded to ``keras.Model.compile``.
        """
        self.gan_model = canonical_gan_model(gan_model)
        defaults = igan_optimizers(self.gan_model)
        self.g_optimizer = g_optimizer or defaults[0]
        self.d1_optimizer = d1_optimizer or defaults[1]
        self.d2_optimizer = d2_optimizer or defaults[2]
        for optimizer in (self.g_optimizer, self.d1_optimizer, self.d2_optimizer):
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise TypeError(f"optimizers must be keras.optimizers.Optimizer, got {type(optimizer).__name__}")
        self.d_threshold = float(D_THRESHOLDS[self.gan_model] if d_threshold is None else d_threshold)
        # Build the slots now so a checkpoint restores into existing variables.
        self.g_optimizer.build(self.estimator_network.trainable_variables)
        self.d1_optimizer.build(self.d1.trainable_variables)
        if self.d2 is not None:
            self.d2_optimizer.build(self.d2.trainable_variables)
        self.jit_compile_steps = bool(jit_compile)
        self._compiled_steps = None
        super().compile(optimizer=self.g_optimizer, jit_compile=bool(jit_compile), **kwargs)

    def require_compiled(self) -> None:
        if self.gan_model is None:
            raise RuntimeError("IGAN.compile(...) must be called before training")

    # ------------------------------------------------------------------ data
    def _batch_parts(self, batch) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(y, x1, x_dual, x)``: observation, D1's real sample, the dual-mapping sample and
        the clean image paired with ``y``."""
        if not isinstance(batch, Mapping):
            raise ValueError(f"igan batches are dicts with keys y, x, x2 (and component), got {type(batch).__name__}")
        missing = [key for key in ("y", "x", "x2") if key not in batch]
        if missing:
            raise ValueError(f"igan batch is missing {missing}; expected keys y, x, x2 (and component)")
        y = self.estimator.check_observation(batch["y"])
        x = tf.cast(batch["x"], tf.float32)
        x2 = tf.cast(batch["x2"], tf.float32)
        for key, value in (("x", x), ("x2", x2)):
            if value.shape.rank != y.shape.rank or value.shape[1:] != y.shape[1:]:
                raise ValueError(f"batch[{key!r}] must have the observation's shape {y.shape}, got {value.shape}")
        if self.paired:
            return y, x, x2, x
        return y, x2, tf.roll(x2, shift=1, axis=0), x

    # ------------------------------------------------------------------ updates
    def _apply(self, optimizer, tape, loss, variables) -> None:
        variables = list(variables)
        gradients = tape.gradient(loss, variables)
        optimizer.apply(gradients, variables)

    def _clip(self, discriminator: keras.Model) -> None:
        if self.gan_model == "wgan":
            clip_weights(discriminator.trainable_variables, WGAN_CLIP_VALUE)

    def _discriminator_updates(self, batch) -> Tuple[tf.Tensor, tf.Tensor]:
        y, x1, x_dual, _ = self._batch_parts(batch)
        z = self.estimator_network(y, training=True)
        x_gen = tf.stop_gradient(self.estimator.clean_from(y, z))
        with tf.GradientTape() as tape:
            d1_loss = discriminator_loss(
                self.gan_model, self.d1(x1, training=True), self.d1(x_gen, training=True)
            )
        self._apply(self.d1_optimizer, tape, d1_loss, self.d1.trainable_variables)
        self._clip(self.d1)
        d2_loss = tf.constant(0.0)
        if self.dual_mapping:
            y_gen = tf.stop_gradient(self.estimator.observation_from(x_dual, z))
            with tf.GradientTape() as tape:
                d2_loss = discriminator_loss(
                    self.gan_model, self.d2(y, training=True), self.d2(y_gen, training=True)
                )
            self._apply(self.d2_optimizer, tape, d2_loss, self.d2.trainable_variables)
            self._clip(self.d2)
        losses = [d1_loss, d2_loss] if self.dual_mapping else [d1_loss]
        mm = next_generator_steps(self.mm, losses, self.d_threshold, self.mm_increment)
        self.mm.assign(mm)
        self.remaining_generator_steps.assign(mm)
        self.discriminator_rounds.assign_add(1)
        self.last_d1_loss.assign(d1_loss)
        self.last_d2_loss.assign(d2_loss)
        return d1_loss, d2_loss

    def discriminator_round(self, batch) -> Dict[str, tf.Tensor]:
        """D1 update, D2 update (with dual mapping), then the ``mm`` rule.

        Args:
          batch: a task batch dict (``y``, ``x``, ``x2``).

        Returns:
          ``{"d1_loss", "d2_loss", "mm"}`` (losses before the update; ``d2_loss`` is 0
          without dual mapping).
        """
        self.require_compiled()
        d1_loss, d2_loss = self._discriminator_updates(batch)
        return {"d1_loss": d1_loss, "d2_loss": d2_loss, "mm": self.mm.value()}

    def generator_step(self, batch) -> Dict[str, tf.Tensor]:
        """One estimator update; counts a generator step and uses up one of the round's.

        Args:
          batch: a task batch dict (``y``, ``x``, ``x2``).

        Returns:
          Scalars ``g_loss`` (total), ``g_adversarial``, ``paired_loss`` (0 when off),
          ``d1_fake``/``d2_fake`` (mean logits on the fakes), ``clean_mae`` (mean
          |X_gen - x| against the paired clean image: monitoring only, never a gradient),
          ``generator_steps`` and ``mm``; and tensors ``y``, ``z``, ``x_gen``, ``x`` of the
          batch for sample grids.
        """
        self.require_compiled()
        y, x1, x_dual, x = self._batch_parts(batch)
        with tf.GradientTape() as tape:
            z = self.estimator_network(y, training=True)
            x_gen = self.estimator.clean_from(y, z)
            d1_fake = self.d1(x_gen, training=True)
            adversarial = generator_loss_term(self.gan_model, d1_fake)
            d2_fake = tf.zeros([1])
            if self.dual_mapping:
                d2_fake = self.d2(self.estimator.observation_from(x_dual, z), training=True)
                adversarial = adversarial + generator_loss_term(self.gan_model, d2_fake)
            supervised = tf.constant(0.0)
            if self.paired:
                supervised = paired_loss(
                    x_gen, x1, y, self.paired_loss_weight, self.paired_loss_min_over_permutations
                )
            g_loss = adversarial + supervised
        self._apply(self.g_optimizer, tape, g_loss, self.estimator_network.trainable_variables)
        self.generator_steps.assign_add(1)
        self.remaining_generator_steps.assign_sub(1)
        return {
            "g_loss": g_loss,
            "g_adversarial": adversarial,
            "paired_loss": supervised,
            "d1_fake": tf.reduce_mean(tf.cast(d1_fake, tf.float32)),
            "d2_fake": tf.reduce_mean(tf.cast(d2_fake, tf.float32)),
            "clean_mae": tf.reduce_mean(tf.abs(x_gen - x)),
            "generator_steps": self.generator_steps.value(),
            "mm": self.mm.value(),
            "y": y,
            "z": z,
            "x_gen": x_gen,
            "x": x,
        }

    def needs_discriminator_round(self) -> bool:
        """True when the current round's generator updates are used up."""
        return int(self.remaining_generator_steps.numpy()) <= 0

    def train_step(self, data):
        """One generator step, preceded by a discriminator round when one is due.

        Args:
          data: a task batch dict (or a tuple whose first entry is one).

        Returns:
          Scalar logs: ``d1_loss``, ``d2_loss`` (of the latest round), ``g_loss``,
          ``paired_loss``, ``clean_mae``, ``mm``, ``generator_steps``.
        """
        self.require_compiled()
        if isinstance(data, (tuple, list)):
            data = data[0]

        def run_round():
            return self._discriminator_updates(data)

        def keep():
            return self.last_d1_loss.value(), self.last_d2_loss.value()

        d1_loss, d2_loss = tf.cond(self.remaining_generator_steps <= 0, run_round, keep)
        logs = self.generator_step(data)
        return {
            "d1_loss": d1_loss,
            "d2_loss": d2_loss,
            "g_loss": logs["g_loss"],
            "paired_loss": logs["paired_loss"],
            "clean_mae": logs["clean_mae"],
            "mm": tf.cast(logs["mm"], tf.float32),
            "generator_steps": tf.cast(logs["generator_steps"], tf.float32),
        }

    def compiled_steps(self):
        """``(discriminator_round, generator_step)`` as ``tf.function`` s (XLA when compiled
        with ``jit_compile=True``); traced once per batch signature and cached."""
        self.require_compiled()
        if self._compiled_steps is None:
            jit = bool(getattr(self, "jit_compile_steps", False))
            self._compiled_steps = (
                tf.function(self.discriminator_round, jit_compile=jit),
                tf.function(self.generator_step, jit_compile=jit),
            )
        return self._compiled_steps

    # ------------------------------------------------------------------ inference, state
    def call(self, y, training: bool = False):
        """The estimated component ``Z`` of observations ``y``."""
        return self.estimator(y, training=training)

    def separate(self, y) -> Tuple[np.ndarray, np.ndarray]:
        """``(component, clean)`` estimates in inference mode, as numpy."""
        z, x = self.estimator.separate(y, training=False)
        return z.numpy(), x.numpy()

    def checkpoint_items(self) -> Dict[str, object]:
        """Everything a checkpoint holds to resume exactly (networks, optimizers, schedule)."""
        self.require_compiled()
        items = {
            "estimator": self.estimator_network,
            "d1": self.d1,
            "g_optimizer": self.g_optimizer,
            "d1_optimizer": self.d1_optimizer,
            "generator_steps": self.generator_steps,
            "discriminator_rounds": self.discriminator_rounds,
            "mm": self.mm,
            "remaining_generator_steps": self.remaining_generator_steps,
            "last_d1_loss": self.last_d1_loss,
            "last_d2_loss": self.last_d2_loss,
        }
        if self.d2 is not None:
            items.update(d2=self.d2, d2_optimizer=self.d2_optimizer)
        return items

    def schedule_state(self) -> Dict[str, int]:
        """The counters as Python ints (generator steps, rounds, mm, steps left)."""
        return {
            "generator_steps": int(self.generator_steps.numpy()),
            "discriminator_rounds": int(self.discriminator_rounds.numpy()),
            "mm": int(self.mm.numpy()),
            "remaining_generator_steps": int(self.remaining_generator_steps.numpy()),
        }

    def recalibrate_batch_norm(
        self, batches, num_batches: Optional[int] = IGAN_BN_RECALIBRATION_BATCHES, variance: str = "pooled"
    ) -> BatchNormRecalibration:
        """Re-estimates the estimator's batch-norm moving statistics from training batches.

        The networks are trained in training mode only, and with momentum 0.999 the moving
        averages stay close to their initial values for thousands of updates, so without
        this the inference-mode estimator (the export, :meth:`separate`) is not the function
        that was trained. The original igan code never re-estimated them. Only the
        estimator's moving statistics change (not D1 / D2, not trainable weights).

        Args:
          batches: task batch dicts (their ``"y"``) or observation tensors.
          num_batches: training-mode passes (50 by default).
          variance: ``"pooled"`` or ``"batch"``; see :mod:`tfinverse.training.batch_norm`.

        Returns:
          The :class:`~tfinverse.training.batch_norm.BatchNormRecalibration` (also kept in
          ``self.batch_norm_recalibration`` and reported in the export's metadata).
        """
        report = recalibrate_estimator_batch_norm(self.estimator, batches, num_batches, variance)
        self.batch_norm_recalibration = report
        return report

    def export(
        self,
        path,
        overwrite: bool = False,
        recalibration_batches=None,
        num_recalibration_batches: Optional[int] = IGAN_BN_RECALIBRATION_BATCHES,
        **extra_metadata,
    ) -> str:
        """Writes the estimator as a SavedModel ``y -> {"component", "clean"}`` (inference
        mode); see :func:`tfinverse.models.igan.export_igan_estimator`.

        Batch norm: with ``recalibration_batches`` the moving statistics are re-estimated
        first (:meth:`recalibrate_batch_norm`); :func:`train_igan` has already done so at the
        end of training. ``igan.json`` records ``batch_norm_recalibration_batches`` (0 when
        the moving averages are exported as training left them).

        Args:
          path: the SavedModel folder.
          overwrite: replace an existing folder.
          recalibration_batches: training batches for a recalibration now (None: none).
          num_recalibration_batches: how many of them to use (50).
          **extra_metadata: more JSON-able entries for ``igan.json``.

        Returns:
          ``path`` as a string.
        """
        if recalibration_batches is not None:
            self.recalibrate_batch_norm(recalibration_batches, num_recalibration_batches)
        report = self.batch_norm_recalibration
        metadata = {
            "gan_model": self.gan_model,
            "generator_steps": int(self.generator_steps.numpy()),
            "batch_norm_recalibration_batches": 0 if report is None else int(report.num_batches),
        }
        metadata.update(extra_metadata)
        return export_igan_estimator(self.estimator, path, extra_metadata=metadata, overwrite=overwrite)


# ---------------------------------------------------------------------------- the loop
@dataclass
class IganTrainingSummary:
    """What :func:`train_igan` did.

    Attributes:
      start_step: generator steps at the start (non-zero when resumed).
      final_step: generator steps at the end.
      discriminator_rounds: rounds run in this call.
      wall_time_seconds: time in the loop.
      ms_per_generator_step: mean time of a generator step (its share of discriminator
        rounds included), excluding the first round and step (tracing).
      final_logs: the last generator step's scalars and the last round's losses.
      checkpoints: checkpoint prefixes written.
      sample_files: sample PNGs written.
      batch_norm_recalibration: the final batch-norm recalibration (None when none was made).
    """

    start_step: int
    final_step: int
    discriminator_rounds: int = 0
    wall_time_seconds: float = 0.0
    ms_per_generator_step: Optional[float] = None
    final_logs: Dict[str, float] = field(default_factory=dict)
    checkpoints: List[str] = field(default_factory=list)
    sample_files: List[str] = field(default_factory=list)
    batch_norm_recalibration: Optional[BatchNormRecalibration] = None


def display_images(images) -> np.ndarray:
    """Images shown as they are when inside ``[0, 1]``, else stretched per image to ``[0, 1]``.

    The observation of a sum exceeds 1 and a noise component is signed, so those are shown
    by their own range (the original divided a mixture by its maximum).

    Args:
      images: ``[n, H, W, C]``.

    Returns:
      float32 ``[n, H, W, C]`` in ``[0, 1]``.
    """
    images = np.asarray(images, np.float32)
    shown = np.empty_like(images)
    for i, image in enumerate(images):
        low, high = float(image.min()), float(image.max())
        if low >= 0.0 and high <= 1.0:
            shown[i] = image
        else:
            shown[i] = (image - low) / max(high - low, 1e-12)
    return shown


def _save_point_plot(path: Path, y, x, x_gen) -> None:
    # Object-oriented matplotlib: no pyplot state, no global backend change.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.scatter(y[:, 0], y[:, 1], s=6, c="tab:green", label="y (source)")
    axes.scatter(x[:, 0], x[:, 1], s=6, c="tab:red", label="x (target)")
    axes.scatter(x_gen[:, 0], x_gen[:, 1], s=6, c="tab:blue", marker="x", label="M y + b")
    axes.legend(loc="best", fontsize=7)
    axes.set_aspect("equal", "datalim")
    figure.tight_layout()
    figure.savefig(path)


def _save_samples(model: IGAN, logs, sample_dir: Path, step: int, writer=None, max_images: int = 4) -> Path:
    path = sample_dir / f"{step:06d}.png"
    y = np.asarray(logs["y"])[:max_images]
    z = np.asarray(logs["z"])[:max_images]
    x_gen = np.asarray(logs["x_gen"])[:max_images]
    x = np.asarray(logs["x"])[:max_images]
    if model.estimator.kind == "points":
        _save_point_plot(path, np.asarray(logs["y"]), np.asarray(logs["x"]), np.asarray(logs["x_gen"]))
        return path
    columns = [display_images(y), display_images(z), np.clip(x_gen, 0.0, 1.0), np.clip(x, 0.0, 1.0)]
    rows = [[column[i] for column in columns] for i in range(len(y))]
    save_image_grid(
        path,
        rows,
        col_labels=["input y", "component z", "estimate x", "true x"],
        min_cell_size=64,
        padding=2,
        overwrite=True,
    )
    if writer is not None and y.shape[-1] in (1, 3):
        grid = np.concatenate([np.concatenate(list(column), axis=0) for column in columns], axis=1)
        with writer.as_default():
            summary_images("samples", grid[None], step=step, max_outputs=1)
    return path


def train_igan(
    model: IGAN,
    batches,
    max_generator_steps: int,
    checkpoint_dir=None,
    checkpoint_every: int = 500,
    max_checkpoints: int = 3,
    sample_dir=None,
    sample_every: int = 20,
    log_dir=None,
    resume: bool = False,
    show_progress: bool = True,
    batch_norm_recalibration_batches: int = IGAN_BN_RECALIBRATION_BATCHES,
) -> IganTrainingSummary:
    """Runs the igan loop until ``max_generator_steps`` generator steps in total.

    Each iteration: a discriminator round on a fresh batch when one is due, then one
    generator step on another fresh batch. Checkpoints are numbered by generator steps and
    written every ``checkpoint_every`` steps and at the end; a resumed run restores the
    networks, optimizers, step count and the ``mm`` state and carries on where it stopped
    (the data stream is the caller's: pass one seeded for the resume point).

    Args:
      model: a compiled :class:`IGAN`.
      batches: an iterable of batch dicts (an infinite ``tf.data.Dataset``).
      max_generator_steps: the budget, counted in generator steps (including steps made
        before a resume).
      checkpoint_dir: folder of checkpoints (None: none are written).
      checkpoint_every: generator steps between checkpoints (0: only at the end).
      max_checkpoints: checkpoints kept.
      sample_dir: folder of sample grids (None: none).
      sample_every: generator steps between sample grids (20 in the original; 0: none).
      log_dir: TensorBoard folder for scalars (losses, ``mm``) and sample images (None:
        no logging).
      resume: restore the newest checkpoint of ``checkpoint_dir`` first.
      show_progress: a progress bar (only on a terminal).
      batch_norm_recalibration_batches: at the end, re-estimate the estimator's batch-norm
        moving statistics from this many further batches of the stream
        (:meth:`IGAN.recalibrate_batch_norm`; not in the original, whose exported moving
        averages were mostly their initial values), before the final checkpoint so that
        checkpoint and export agree. 0: keep the moving averages of training.

    Returns:
      An :class:`IganTrainingSummary`.

    Raises:
      ValueError: if ``max_generator_steps < 0``, or ``resume`` without a checkpoint.
    """
    model.require_compiled()
    if int(max_generator_steps) < 0:
        raise ValueError(f"max_generator_steps must be >= 0, got {max_generator_steps}")
    manager = None
    if checkpoint_dir is not None:
        manager = TrainingCheckpoint(checkpoint_dir, model.checkpoint_items(), max_to_keep=max_checkpoints)
        if resume:
            try:
                restored = manager.restore_latest()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                raise ValueError(
                    f"the checkpoint in {checkpoint_dir} does not match this model (task or settings "
                    f"differ): {error}"
                ) from None
            if restored is None:
                raise ValueError(f"resume: there is no checkpoint in {checkpoint_dir}")
    elif resume:
        raise ValueError("resume needs a checkpoint_dir")
    if sample_dir is not None:
        sample_dir = Path(sample_dir)
        sample_dir.mkdir(parents=True, exist_ok=True)

    writer = None
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        writer = tf.summary.create_file_writer(str(log_dir))

    discriminator_fn, generator_fn = model.compiled_steps()
    start = int(model.generator_steps.numpy())
    summary = IganTrainingSummary(start_step=start, final_step=start)
    iterator = iter(batches)
    bar_options = {} if show_progress else {"disable": True}
    bar = progress(total=int(max_generator_steps), initial=min(start, int(max_generator_steps)), desc="igan", **bar_options)
    timed_steps, timed_seconds = 0, 0.0
    round_logs = {"d1_loss": model.last_d1_loss.numpy(), "d2_loss": model.last_d2_loss.numpy()}
    wall_start = time.perf_counter()
    step = start
    try:
        while step < int(max_generator_steps):
            tick = time.perf_counter()
            if model.needs_discriminator_round():
                round_logs = discriminator_fn(next(iterator))
                summary.discriminator_rounds += 1
            logs = generator_fn(next(iterator))
            step = int(logs["generator_steps"].numpy())
            elapsed = time.perf_counter() - tick
            if step > start + 1:  # the first step traces both functions
                timed_steps += 1
                timed_seconds += elapsed
            scalars = {
                "loss/g": float(logs["g_loss"]),
                "loss/g_adversarial": float(logs["g_adversarial"]),
                "loss/paired": float(logs["paired_loss"]),
                "loss/d1": float(np.asarray(round_logs["d1_loss"])),
                "schedule/mm": float(logs["mm"]),
                "monitor/clean_mae": float(logs["clean_mae"]),
            }
            if model.dual_mapping:
                scalars["loss/d2"] = float(np.asarray(round_logs["d2_loss"]))
            if writer is not None:
                with writer.as_default():
                    for name, value in scalars.items():
                        summary_scalar(name, value, step=step)
            bar.update(1)
            bar.set_postfix(d1=f"{scalars['loss/d1']:.3g}", g=f"{scalars['loss/g']:.3g}", mm=int(scalars["schedule/mm"]))
            if sample_dir is not None and sample_every and step % int(sample_every) == 0:
                summary.sample_files.append(str(_save_samples(model, logs, sample_dir, step, writer)))
            if manager is not None and checkpoint_every and step % int(checkpoint_every) == 0:
                summary.checkpoints.append(manager.save(step))
            summary.final_logs = scalars
    finally:
        bar.close()
        if writer is not None:
            writer.flush()
    recalibrated = False
    if int(batch_norm_recalibration_batches) > 0 and step > 0:
        # Training never reads the moving statistics, so this changes no training numerics.
        try:
            report = model.recalibrate_batch_norm(iterator, int(batch_norm_recalibration_batches))
        except ValueError as error:  # a finite stream that is used up
            warnings.warn(f"batch-norm statistics not recalibrated: {error}", stacklevel=2)
        else:
            summary.batch_norm_recalibration = report
            recalibrated = report.num_batches > 0
    if step > start and not recalibrated:
        model.batch_norm_recalibration = None  # an earlier recalibration is out of date
    last_saved = bool(summary.checkpoints) and summary.checkpoints[-1].endswith(f"-{step}")
    if manager is not None and (step > start or recalibrated) and step > 0 and (recalibrated or not last_saved):
        path = manager.save(step)  # rewrites ckpt-<step> after a recalibration
        if not last_saved:
            summary.checkpoints.append(path)
    summary.final_step = step
    summary.wall_time_seconds = time.perf_counter() - wall_start
    if timed_steps:
        summary.ms_per_generator_step = 1000.0 * timed_seconds / timed_steps
    return summary
