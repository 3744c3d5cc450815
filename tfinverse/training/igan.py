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
stale D2 value from an untrained D2); and training stops exactly at
``max_generator_steps`` (the original could overshoot by up to ``mm - 1`` steps).

Batches are the tasks' dicts ``y, x, component, x2`` (:func:`tfinverse.tasks.igan_tasks.
training_batches`). Unpaired training (the default) must not let the estimator see which
clean image belongs to ``y``, so D1's real batch is ``x2`` and the dual mapping uses ``x3``,
a third independent clean sample, as the original drew the two independently (a batch without
``x3``, e.g. from a user's own pipeline, falls back to ``x2`` rolled by one sample, which pairs
each row with another image but reuses D1's batch); with the paired loss D1's real batch is
the paired ``x`` and the dual mapping uses ``x2``, as the original's ``XY_pair`` batches did. Every network runs in training mode (batch statistics) in every
update, as in the original.

On the trainer protocol (:mod:`tfinverse.training.trainer`): :class:`IGAN` is a
:class:`~tfinverse.training.trainer.Trainer` trained by the one loop
(:func:`tfinverse.training.loop.train`) and runner (``scripts/train_igan.py``). Its schedule
is an :class:`~tfinverse.training.trainer.AdaptiveSchedule`: one loop step is one GENERATOR
step (checkpoints are numbered by generator steps); when a round is due the loop hands the
step two fresh batches, the first for the round (phases ``d1``, ``d2``, then ``end_round``,
which applies the ``mm`` rule), the second for the generator update, otherwise one fresh
batch for the generator update. So every discriminator round and every generator step sees
its own batch, as in the original. The ``mm`` state (``mm``, the steps left in the round,
the round count and the round's losses) is checkpointed. Under ``tf.distribute`` the round's
losses are averaged over replicas before the rule, so every replica takes the same decision.
:meth:`IGAN.export` writes the SavedModel ``y -> (component, clean)``.

Batch norm (our addition): as training only ever uses batch statistics and the moving
averages have momentum 0.999, training ends (:meth:`IGAN.finish_training`, called by the
loop before its final checkpoint) by re-estimating the estimator's moving statistics from
50 more batches of a separate stream (:meth:`IGAN.recalibrate_batch_norm`), so the exported
inference-mode estimator is the trained function. The original exported the moving
averages as they were. Sample grids show the estimator as trained (batch statistics) on a
fixed batch of held-out samples, leaving the moving statistics untouched.

Losses are the single definitions of :mod:`tfinverse.losses`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

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
from tfinverse.training.batch_norm import BatchNormRecalibration, batch_norm_layers
from tfinverse.training.trainer import AdaptiveSchedule, Trainer, Update
from tfinverse.training.optimizers import TF1RMSprop
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
    "display_images",
    "GRID_ROLES",
    "task_display",
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


def _state_variable(value, dtype, name):
    # Every replica assigns the same value; ONLY_FIRST_REPLICA lets them (tf.distribute).
    return tf.Variable(value, dtype=dtype, trainable=False, name=name,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class IGAN(Trainer):
    """The igan game as a trainer (keras-io idiom): estimator G, D1 on x, D2 on y.

    Optimizers ``g`` (estimator), ``d1`` and ``d2`` (``self.g_optimizer`` ...). One step is one
    GENERATOR update; its schedule (an :class:`~tfinverse.training.trainer.AdaptiveSchedule`)
    puts a discriminator round before it when the previous round's ``mm`` generator updates
    are used up. Run by :func:`tfinverse.training.loop.train`, a round and its generator
    update each get a fresh batch (see the module docstring); under ``keras.Model.fit``
    (one batch per call) a due round shares the batch of its first generator step.

    State variables (checkpointed): the step counter ``step`` (= ``generator_steps``),
    ``discriminator_rounds``, ``mm``, ``remaining_generator_steps`` and the last round's
    ``d1_loss`` / ``d2_loss``.

    Args:
      estimator: an :class:`~tfinverse.models.igan.IganEstimator`.
      d1: discriminator of clean samples (logits).
      d2: discriminator of observations (logits); may be None without dual mapping.
      dual_mapping: use the random dual mapping and D2 (on in the original).
      paired: add the paired loss (off in the original).
      paired_loss_min_over_permutations: the MNIST + MNIST variant of the paired loss.
      paired_loss_weight: its weight (1000).
      mm_increment: generator updates added while a discriminator wins (5).
      recalibration_batches: batch-norm recalibration passes at the end of training
        (:meth:`finish_training`; 50; 0: keep the moving averages of training).
      seed: the run seed (igan draws no random numbers inside a step; kept for the protocol).
      name: model name.

    Raises:
      TypeError: if ``estimator`` is not an ``IganEstimator``.
      ValueError: if ``dual_mapping`` is on but ``d2`` is None, or the discriminators'
        input shapes do not match the estimator's.
    """

    metric_names = ("d1_loss", "d2_loss", "g_loss", "g_adversarial", "paired_loss", "clean_mae", "mm")
    optimizer_labels = {"g": "estimator", "d1": "d1", "d2": "d2"}

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
        recalibration_batches: int = IGAN_BN_RECALIBRATION_BATCHES,
        seed: int = 0,
        name: str = "igan",
    ):
        super().__init__(seed=seed, name=name)
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
        if int(recalibration_batches) < 0:
            raise ValueError(f"recalibration_batches must be >= 0, got {recalibration_batches}")
        self.estimator = estimator
        self.estimator_network = estimator.network
        self.d1 = d1
        self.d2 = d2
        self.dual_mapping = bool(dual_mapping)
        self.paired = bool(paired)
        self.paired_loss_min_over_permutations = bool(paired_loss_min_over_permutations)
        self.paired_loss_weight = float(paired_loss_weight)
        self.mm_increment = int(mm_increment)
        self.recalibration_batches = int(recalibration_batches)
        self.discriminator_rounds = _state_variable(0, tf.int64, "discriminator_rounds")
        self.mm = _state_variable(1, tf.int64, "mm")
        self.remaining_generator_steps = _state_variable(0, tf.int64, "remaining")
        self.last_d1_loss = _state_variable(0.0, tf.float32, "d1_loss")
        self.last_d2_loss = _state_variable(0.0, tf.float32, "d2_loss")
        self.gan_model = None
        self.d_threshold = None
        self.g_optimizer = self.d1_optimizer = self.d2_optimizer = None
        self.batch_norm_recalibration: Optional[BatchNormRecalibration] = None
        self.built = True  # the sub-networks are built functional models

    # ------------------------------------------------------------------ set-up
    @property
    def generator_steps(self) -> tf.Variable:
        """The generator-step count (the step counter: one step is one generator update)."""
        return self.step

    def compile(
        self,
        g_optimizer=None,
        d1_optimizer=None,
        d2_optimizer=None,
        gan_model: str = "vanilla",
        d_threshold: Optional[float] = None,
        jit_compile: bool = False,
        loss_scaling: Optional[bool] = None,
        **kwargs,
    ):
        """Attaches the optimizers, the GAN model and the declared schedule.

        Args:
          g_optimizer: estimator optimizer (default: the original's for ``gan_model``).
          d1_optimizer: D1 optimizer (default likewise).
          d2_optimizer: D2 optimizer (default likewise; unused without dual mapping).
          gan_model: ``"vanilla"``, ``"ls"`` or ``"wgan"`` (original names accepted).
          d_threshold: the ``mm`` threshold (default :data:`D_THRESHOLDS`).
          jit_compile: XLA for ``train_step`` under ``fit`` (the loop has its own flag).
          loss_scaling: wrap the optimizers in ``LossScaleOptimizer`` (default: under
            ``mixed_float16``).
          **kwargs: forwarded to ``keras.Model.compile``.
        """
        self.gan_model = canonical_gan_model(gan_model)
        defaults = igan_optimizers(self.gan_model)
        self.d_threshold = float(D_THRESHOLDS[self.gan_model] if d_threshold is None else d_threshold)
        round_updates = [Update("d1", optimizers=("d1",))]
        if self.dual_mapping:
            round_updates.append(Update("d2", optimizers=("d2",)))
        # The original's loop: a round of D updates, then mm generator steps, mm adapted per round.
        self.update_schedule = AdaptiveSchedule(
            round_updates=tuple(round_updates),
            step_updates=(Update("generator", optimizers=("g",)),),
            rule="mm <- mm + increment if a round's discriminator loss < threshold else 1",
            threshold=self.d_threshold,
            increment=self.mm_increment,
            extra={"gan_model": self.gan_model},
        )
        optimizers = {"g": g_optimizer or defaults[0], "d1": d1_optimizer or defaults[1]}
        if self.d2 is not None:
            optimizers["d2"] = d2_optimizer or defaults[2]
        keras.Model.compile(self, jit_compile=bool(jit_compile), **kwargs)
        self.attach_optimizers(optimizers, loss_scaling)

    def optimizer_variables(self, name: str) -> List[tf.Variable]:
        """Trainable variables of the estimator (``g``), D1 (``d1``) or D2 (``d2``)."""
        network = {"g": self.estimator_network, "d1": self.d1, "d2": self.d2}[name]
        return list(network.trainable_variables)

    def networks(self) -> Dict[str, keras.Model]:
        """``estimator``, ``d1`` and (with it) ``d2``."""
        nets = {"estimator": self.estimator_network, "d1": self.d1}
        if self.d2 is not None:
            nets["d2"] = self.d2
        return nets

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
        # x3 is only used (and checked) by unpaired training.
        keys = ("x", "x2", "x3") if not self.paired and "x3" in batch else ("x", "x2")
        clean = {key: tf.cast(batch[key], tf.float32) for key in keys}
        for key, value in clean.items():
            if value.shape.rank != y.shape.rank or value.shape[1:] != y.shape[1:]:
                raise ValueError(f"batch[{key!r}] must have the observation's shape {y.shape}, got {value.shape}")
        x, x2 = clean["x"], clean["x2"]
        if self.paired:
            return y, x, x2, x
        x_dual = clean["x3"] if "x3" in clean else tf.roll(x2, shift=1, axis=0)
        return y, x2, x_dual, x

    def split_batches(self, data, plan):
        if plan.num_batches == 1 and isinstance(data, (tuple, list)):
            data = data[0]  # keras fit: (batch,) or (batch, target)
        return super().split_batches(data, plan)

    # ------------------------------------------------------------------ phases
    def _clip(self, discriminator: keras.Model) -> None:
        if self.gan_model == "wgan":
            clip_weights(discriminator.trainable_variables, WGAN_CLIP_VALUE)

    def _round_component(self, batch):
        # Each discriminator update runs the estimator forward itself, as each solver run of the
        # original did: the estimator's moving batch-norm statistics are updated once per
        # discriminator update and once per generator update (3 times a round at mm = 1).
        y = self._batch_parts(batch)[0]
        return tf.stop_gradient(self.estimator_network(y, training=True))

    def phase_d1(self, batch, state):
        """D1's update: real ``x1`` against ``X_gen = clip(y - G(y), 0, inf)``.

        Returns:
          ``{"d1_loss"}`` (the loss before the update).
        """
        y, x1, _, _ = self._batch_parts(batch)
        z = self._round_component(batch)
        x_gen = tf.stop_gradient(self.estimator.clean_from(y, z))
        with tf.GradientTape() as tape:
            d1_loss = discriminator_loss(self.gan_model, self.d1(x1, training=True), self.d1(x_gen, training=True))
            target = self.gradient_target(self.d1_optimizer, d1_loss)
        self.apply_gradients(self.d1_optimizer, tape, target, self.d1.trainable_variables)
        self._clip(self.d1)
        return {"d1_loss": tf.cast(d1_loss, tf.float32)}

    def phase_d2(self, batch, state):
        """D2's update (random dual mapping): real ``y`` against ``Y_gen = x_dual + G(y)``.

        Returns:
          ``{"d2_loss"}`` (before the update).
        """
        y, _, x_dual, _ = self._batch_parts(batch)
        z = self._round_component(batch)
        y_gen = tf.stop_gradient(self.estimator.observation_from(x_dual, z))
        with tf.GradientTape() as tape:
            d2_loss = discriminator_loss(self.gan_model, self.d2(y, training=True), self.d2(y_gen, training=True))
            target = self.gradient_target(self.d2_optimizer, d2_loss)
        self.apply_gradients(self.d2_optimizer, tape, target, self.d2.trainable_variables)
        self._clip(self.d2)
        return {"d2_loss": tf.cast(d2_loss, tf.float32)}

    def phase_end_round(self, batch, state):
        """The ``mm`` rule on the round's losses (averaged over replicas); starts the round's
        ``mm`` generator steps."""
        d1_loss = state["d1_loss"]
        d2_loss = state.get("d2_loss", tf.constant(0.0))
        d1_loss, d2_loss = self.cross_replica_mean([d1_loss, d2_loss])
        losses = [d1_loss, d2_loss] if self.dual_mapping else [d1_loss]
        mm = next_generator_steps(self.mm, losses, self.d_threshold, self.mm_increment)
        self.mm.assign(mm)
        self.remaining_generator_steps.assign(mm)
        self.discriminator_rounds.assign_add(1)
        self.last_d1_loss.assign(d1_loss)
        self.last_d2_loss.assign(d2_loss)
        return {}

    def phase_round_if_due(self, batch, state):
        """Under ``fit``: the round (D1, D2, the rule) on this batch when it is due."""

        def run_round():
            round_state: Dict[str, Any] = {}
            round_state.update(self.phase_d1(batch, round_state))
            if self.dual_mapping:
                round_state.update(self.phase_d2(batch, round_state))
            self.phase_end_round(batch, round_state)
            return tf.constant(True)

        tf.cond(self.remaining_generator_steps <= 0, run_round, lambda: tf.constant(False))
        return {}

    def phase_generator(self, batch, state):
        """One estimator update; uses up one of the round's generator steps.

        Returns:
          ``g_loss`` (total), ``g_adversarial``, ``paired_loss`` (0 when off),
          ``d1_fake``/``d2_fake`` (mean logits on the fakes), ``clean_mae`` (mean |X_gen - x|
          against the paired clean image: monitoring only, never a gradient), and tensors
          ``y``, ``z``, ``x_gen``, ``x`` of the batch.
        """
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
                supervised = paired_loss(x_gen, x1, y, self.paired_loss_weight, self.paired_loss_min_over_permutations)
            g_loss = adversarial + supervised
            target = self.gradient_target(self.g_optimizer, g_loss)
        self.apply_gradients(self.g_optimizer, tape, target, self.estimator_network.trainable_variables)
        self.remaining_generator_steps.assign_sub(1)
        return {
            "g_loss": g_loss,
            "g_adversarial": adversarial,
            "paired_loss": supervised,
            "d1_fake": tf.reduce_mean(tf.cast(d1_fake, tf.float32)),
            "d2_fake": tf.reduce_mean(tf.cast(d2_fake, tf.float32)),
            "clean_mae": tf.reduce_mean(tf.abs(tf.cast(x_gen, tf.float32) - x)),
            "y": y,
            "z": z,
            "x_gen": x_gen,
            "x": x,
        }

    def step_metrics(self, state):
        return {
            "d1_loss": self.last_d1_loss.value(),
            "d2_loss": self.last_d2_loss.value(),
            "g_loss": state["g_loss"],
            "g_adversarial": state["g_adversarial"],
            "paired_loss": state["paired_loss"],
            "clean_mae": state["clean_mae"],
            "mm": tf.cast(self.mm.value(), tf.float32),
        }

    # ------------------------------------------------------------------ schedule
    def round_due(self) -> bool:
        """True when the current round's generator updates are used up."""
        return int(self.remaining_generator_steps.numpy()) <= 0

    needs_discriminator_round = round_due

    def discriminator_round(self, batch) -> Dict[str, tf.Tensor]:
        """D1 update, D2 update (with dual mapping), then the ``mm`` rule (outside the loop).

        Args:
          batch: a task batch dict (``y``, ``x``, ``x2``).

        Returns:
          ``{"d1_loss", "d2_loss", "mm"}`` (losses before the update; ``d2_loss`` is 0
          without dual mapping).
        """
        self.require_compiled()
        state: Dict[str, Any] = {}
        state.update(self.phase_d1(batch, state))
        if self.dual_mapping:
            state.update(self.phase_d2(batch, state))
        self.phase_end_round(batch, state)
        return {"d1_loss": state["d1_loss"], "d2_loss": state.get("d2_loss", tf.constant(0.0)), "mm": self.mm.value()}

    def generator_step(self, batch) -> Dict[str, tf.Tensor]:
        """One estimator update counted as a step (outside the loop).

        Args:
          batch: a task batch dict (``y``, ``x``, ``x2``).

        Returns:
          The values of :meth:`phase_generator`, ``generator_steps`` and ``mm``.
        """
        self.require_compiled()
        logs = self.phase_generator(batch, {})
        self.step.assign_add(1)
        return {**logs, "generator_steps": self.step.value(), "mm": self.mm.value()}

    def schedule_state(self) -> Dict[str, int]:
        """The counters as Python ints (generator steps, rounds, mm, steps left)."""
        return {
            "generator_steps": int(self.step.numpy()),
            "discriminator_rounds": int(self.discriminator_rounds.numpy()),
            "mm": int(self.mm.numpy()),
            "remaining_generator_steps": int(self.remaining_generator_steps.numpy()),
        }

    # ------------------------------------------------------------------ inference, state
    def call(self, y, training: bool = False):
        """The estimated component ``Z`` of observations ``y``."""
        return self.estimator(y, training=training)

    def separate(self, y) -> Tuple[np.ndarray, np.ndarray]:
        """``(component, clean)`` estimates in inference mode, as numpy."""
        z, x = self.estimator.separate(y, training=False)
        return z.numpy(), x.numpy()

    def checkpoint_items(self) -> Dict[str, object]:
        """Everything a checkpoint holds to resume exactly (networks, optimizers, schedule).

        The networks are checkpointed as objects (not by variable path):
        ``scripts/deploy_igan.py`` restores ``tf.train.Checkpoint(estimator=network)``.
        """
        self.require_compiled()
        items = {
            "estimator": self.estimator_network,
            "d1": self.d1,
            "g_optimizer": self.g_optimizer,
            "d1_optimizer": self.d1_optimizer,
            "step": self.step,
            "discriminator_rounds": self.discriminator_rounds,
            "mm": self.mm,
            "remaining_generator_steps": self.remaining_generator_steps,
            "last_d1_loss": self.last_d1_loss,
            "last_d2_loss": self.last_d2_loss,
        }
        if self.d2 is not None:
            items.update(d2=self.d2, d2_optimizer=self.d2_optimizer)
        return items

    def log_scalars(self) -> Dict[str, float]:
        """Learning rates, ``schedule/mm`` and ``schedule/discriminator_rounds``."""
        return {
            **super().log_scalars(),
            "schedule/mm": float(self.mm.numpy()),
            "schedule/discriminator_rounds": float(self.discriminator_rounds.numpy()),
        }

    def finish_training(self, batches=None) -> Optional[Dict[str, Any]]:
        """Re-estimates the estimator's batch-norm statistics from ``self.recalibration_batches``
        batches of ``batches`` (a stream other than the training one); the loop then writes
        the final checkpoint, so checkpoint and export agree.

        Training never reads the moving statistics, so this changes no training numerics.

        Args:
          batches: an iterator of task batch dicts, or None (no recalibration).

        Returns:
          ``{"batch_norm_recalibration_batches", "batch_norm_layers"}``, or None when nothing
          was recalibrated.
        """
        if batches is None or self.recalibration_batches == 0:
            self.batch_norm_recalibration = None  # an earlier recalibration is out of date
            return None
        try:
            report = self.recalibrate_batch_norm(batches, self.recalibration_batches)
        except ValueError as error:  # a finite stream that is used up
            warnings.warn(f"batch-norm statistics not recalibrated: {error}", stacklevel=2)
            self.batch_norm_recalibration = None
            return None
        if report.num_batches == 0:  # no batch norm (the toy estimator)
            return None
        return {"batch_norm_recalibration_batches": int(report.num_batches), "batch_norm_layers": len(report.layers)}

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
        first (:meth:`recalibrate_batch_norm`); the training loop has already done so at the
        end of training (:meth:`finish_training`). ``igan.json`` records
        ``batch_norm_recalibration_batches`` (0 when the moving averages are exported as
        training left them).

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
            "generator_steps": int(self.step.numpy()),
            "batch_norm_recalibration_batches": 0 if report is None else int(report.num_batches),
        }
        metadata.update(extra_metadata)
        return export_igan_estimator(self.estimator, path, extra_metadata=metadata, overwrite=overwrite)

    # ------------------------------------------------------------------ samples
    def fixed_sample_inputs(self, count: int, seed: int):
        """The fixed held-out batch of the sample grids (``self.fixed_samples``: a task dict
        with ``y`` and ``x``, e.g. from :func:`tfinverse.tasks.igan_tasks.evaluation_batches`).

        Raises:
          ValueError: if none was set.
        """
        if self.fixed_samples is None:
            raise ValueError("IGAN needs fixed sample inputs: set trainer.fixed_samples = {'y': ..., 'x': ...}")
        return {key: np.asarray(value)[: int(count)] for key, value in self.fixed_samples.items() if key in ("y", "x")}

    def sample(self, inputs) -> Dict[str, np.ndarray]:
        """The estimator as trained (batch statistics) on a fixed batch, without moving the
        batch-norm averages (igan's are far from converged during training).

        Args:
          inputs: ``{"y", "x"}`` numpy arrays.

        Returns:
          numpy ``{"y", "z", "x_gen", "x"}``.
        """
        y = tf.convert_to_tensor(np.asarray(inputs["y"], np.float32))
        moving = [v for layer in batch_norm_layers(self.estimator_network) for v in (layer.moving_mean, layer.moving_variance)]
        saved = [np.array(v.numpy()) for v in moving]
        try:
            z = self.estimator_network(y, training=True)
        finally:
            for variable, value in zip(moving, saved):
                variable.assign(value)
        x_gen = self.estimator.clean_from(y, z)
        return {"y": y.numpy(), "z": np.asarray(z), "x_gen": np.asarray(x_gen), "x": np.asarray(inputs["x"])}

    def sample_grid(self, inputs):
        """Rows ``input y | component z | estimate x | true x``, shown as the task shows them
        (:func:`task_display`; the task is the estimator's ``metadata["name"]``)."""
        s = self.sample(inputs)
        task_name = self.estimator.metadata.get("name")
        columns = [task_display(task_name, s[key], role)
                   for key, role in (("y", "observation"), ("z", "component"), ("x_gen", "clean"), ("x", "clean"))]
        rows = [[column[i] for column in columns] for i in range(len(s["y"]))]
        return rows, ["input y", "component z", "estimate x", "true x"]

    def write_sample_grid(self, path, inputs):
        """The image grid of :meth:`sample_grid`, or a scatter plot for the toy 2-D task."""
        if self.estimator.kind == "points":
            s = self.sample(inputs)
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            _save_point_plot(path, s["y"], s["x"], s["x_gen"])
            return path
        rows, labels = self.sample_grid(inputs)
        return save_image_grid(path, rows, col_labels=labels, min_cell_size=64, padding=2, overwrite=True)

    def sample_mosaic(self, inputs):
        if self.estimator.kind == "points" or self.estimator.input_shape[-1] not in (1, 3):
            return None
        return super().sample_mosaic(inputs)


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


#: What a column of an igan image grid holds.
GRID_ROLES = ("observation", "component", "clean")


def task_display(task_name: Optional[str], images, role: str) -> np.ndarray:
    """One column of an igan image grid as its task is best looked at.

    Training's sample grids (and TensorBoard's) and ``deploy_igan.py``'s grids both show
    their columns through this, so they look alike. Observations and components go through
    :func:`display_images`; clean images (true or estimated) are clipped to ``[0, 1]``.
    captcha: observations and clean images are inverted, dark characters on white, as the
    original saved them. audio_captcha: spectrograms are flipped upside down, so low
    frequencies are at the bottom, and each is divided by its own maximum and shown through a
    square root (the compressed magnitudes mostly lie below a tenth of the maximum, so they
    would look black), as spectrogram plots scale to their peak.

    Args:
      task_name: the task's name (None or an unknown name: no task-specific display).
      images: ``[n, H, W, C]``.
      role: one of :data:`GRID_ROLES`.

    Returns:
      float32 ``[n, H, W, C]`` in ``[0, 1]``.

    Raises:
      ValueError: an unknown role.
    """
    if role not in GRID_ROLES:
        raise ValueError(f"role must be one of {GRID_ROLES}, got {role!r}")
    images = np.asarray(images, np.float32)
    if task_name == "audio_captcha":
        magnitudes = np.maximum(images, 0.0)
        peaks = magnitudes.max(axis=tuple(range(1, images.ndim)), keepdims=True)
        shown = np.sqrt(magnitudes / np.where(peaks > 0, peaks, 1.0))
        return np.ascontiguousarray(shown[:, ::-1])
    if role == "clean" or (task_name == "captcha" and role == "observation"):
        shown = np.clip(images, 0.0, 1.0)
        if task_name == "captcha":
            shown = 1.0 - shown
    else:
        shown = display_images(images)
    return np.ascontiguousarray(shown)


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
