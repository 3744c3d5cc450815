"""BEGAN training: an auto-encoder discriminator held in equilibrium by the control variable ``k_t``.

One ``train_step`` is one iteration of the paper's algorithm: from one forward pass, ::

    L_real = |x - D(x)|,  L_fake = |G(z) - D(G(z))|
    theta_D <- Adam(L_D = L_real - k_t L_fake),   theta_G <- Adam(L_G = L_fake)   (simultaneously)
    k_{t+1} = clip(k_t + lambda_k (gamma L_real - L_fake), 0, 1)
    M_global = L_real + |gamma L_real - L_fake|

with the pure functions of :mod:`tfinverse.models.began`. Real images arrive in ``[0, 1]`` and
are mapped to ``[-1, 1]``, the range BEGAN is trained on. Under a distribution strategy
``L_real`` and ``L_fake`` are averaged over replicas before ``k`` moves, so ``k`` follows the
global batch; ``k`` lives in a variable every replica may update (``ONLY_FIRST_REPLICA``).

Published settings (paper): Adam with learning rate ``1e-4``, ``gamma = 0.5``,
``lambda_k = 1e-3``, ``k_0 = 0``, batch 16, the rate halved "when the measure of convergence
stalls". Not published: Adam's betas and what a stall is. :func:`began_optimizers` uses
``beta_1 = 0.5`` and a step schedule that halves the rate every ``halve_every`` steps (a
parameter; ``0`` keeps it constant).
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

from tfinverse.models.began import BEGAN_GAMMA, BEGAN_LAMBDA_K, began_losses, convergence_measure, update_k
from tfinverse.models.generator import Generator
from tfinverse.training.gan_trainer import GANTrainer
from tfinverse.training.trainer import Update, UpdateSchedule

__all__ = [
    "BEGAN_LEARNING_RATE",
    "began_learning_rate",
    "began_optimizers",
    "BEGANTrainer",
]

from tfinverse.tasks.iagan import BEGAN_LEARNING_RATE  # noqa: E402  (the index of IAGAN settings)


def began_learning_rate(learning_rate: float = BEGAN_LEARNING_RATE, halve_every: int = 0):
    """The learning rate: constant, or halved every ``halve_every`` optimizer steps.

    Args:
      learning_rate: initial rate (``1e-4`` in the paper).
      halve_every: period of the halving in steps; ``0`` keeps the rate constant.

    Returns:
      A float or a ``keras.optimizers.schedules.ExponentialDecay`` (staircase, factor 0.5),
      which follows the optimizer's step counter and so resumes with it.

    Raises:
      ValueError: for a non-positive rate or a negative period.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if int(halve_every) < 0:
        raise ValueError(f"halve_every must be >= 0 (0: constant rate), got {halve_every}")
    if int(halve_every) == 0:
        return float(learning_rate)
    return keras.optimizers.schedules.ExponentialDecay(
        float(learning_rate), decay_steps=int(halve_every), decay_rate=0.5, staircase=True
    )


def began_optimizers(
    learning_rate: float = BEGAN_LEARNING_RATE,
    beta_1: float = 0.5,
    beta_2: float = 0.999,
    halve_every: int = 0,
) -> Tuple[keras.optimizers.Adam, keras.optimizers.Adam]:
    """Adam optimizers ``(d_optimizer, g_optimizer)`` for BEGAN.

    Args:
      learning_rate: initial rate of both (``1e-4``, the paper).
      beta_1: first-moment decay (not published; 0.5).
      beta_2: second-moment decay (not published; 0.999).
      halve_every: halve the rate every this many steps (0: never); see
        :func:`began_learning_rate`.

    Returns:
      Two independent Adam optimizers (discriminator, generator).
    """
    return tuple(
        keras.optimizers.Adam(
            began_learning_rate(learning_rate, halve_every), beta_1=beta_1, beta_2=beta_2, name=name
        )
        for name in ("d_adam", "g_adam")
    )


class BEGANTrainer(GANTrainer):
    """Trains a BEGAN generator against a BEGAN auto-encoder discriminator.

    Metrics: ``d_loss`` (``L_real - k_t L_fake``), ``g_loss`` (``L_fake``), ``loss_real``,
    ``loss_fake``, ``k_t`` (after the update) and ``m_global``.

    Args:
      generator: a :class:`~tfinverse.models.began.BEGANGenerator`.
      discriminator: the auto-encoder from
        :func:`~tfinverse.models.began.build_began_discriminator` (``x -> D(x)``).
      seed: run seed of the latent draws.
      gamma: diversity ratio (0.5).
      lambda_k: proportional gain of ``k`` (1e-3).
      k_initial: ``k_0`` (0).
      name: model name.

    Raises:
      ValueError: for ``gamma`` outside ``(0, 1]``, negative ``lambda_k``, ``k_initial``
        outside ``[0, 1]``, or a discriminator whose input shape is not the generator's
        output shape.
    """

    metric_names = ("d_loss", "g_loss", "loss_real", "loss_fake", "k_t", "m_global")

    def __init__(
        self,
        generator: Generator,
        discriminator: keras.Model,
        seed: int = 0,
        gamma: float = BEGAN_GAMMA,
        lambda_k: float = BEGAN_LAMBDA_K,
        k_initial: float = 0.0,
        name: str = "began_trainer",
    ):
        super().__init__(generator, discriminator, seed=seed, name=name)
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        if float(lambda_k) < 0:
            raise ValueError(f"lambda_k must be non-negative, got {lambda_k}")
        if not 0.0 <= float(k_initial) <= 1.0:
            raise ValueError(f"k_initial must be in [0, 1], got {k_initial}")
        d_shape = tuple(discriminator.input_shape[1:])
        if d_shape != tuple(generator.output_shape):
            raise ValueError(
                f"the discriminator takes images of shape {d_shape} but the generator makes "
                f"{tuple(generator.output_shape)}"
            )
        self.gamma = float(gamma)
        self.lambda_k = float(lambda_k)
        self.k = tf.Variable(
            float(k_initial),
            dtype=tf.float32,
            trainable=False,
            name="began_k",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        # Both networks step on gradients of one forward pass, so one joint update per step.
        self.update_schedule = UpdateSchedule((Update("simultaneous", optimizers=("d", "g")),))

    def phase_simultaneous(self, data, state):
        """One BEGAN iteration (simultaneous D and G updates, then the ``k`` update).

        Args:
          data: real images ``[batch, H, W, C]`` in ``[0, 1]`` (or a tuple starting with it).
          state: the step's shared values (unused).

        Returns:
          The tracked values of the step.
        """
        real = self.generator.from_unit_range(self.real_images(data))
        latents = self.draw_latents("generator_latents", tf.shape(real)[0])
        d_variables = self.discriminator.trainable_variables
        g_variables = self.generator.trainable_variables
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator.native(latents, training=True)
            real_reconstruction = tf.cast(self.discriminator(real, training=True), tf.float32)
            fake_reconstruction = tf.cast(self.discriminator(fake, training=True), tf.float32)
            losses = began_losses(real, real_reconstruction, fake, fake_reconstruction, self.k)
            d_target = self.gradient_target(self.d_optimizer, losses["discriminator_loss"])
            g_target = self.gradient_target(self.g_optimizer, losses["generator_loss"])
        # Both gradients come from the same forward pass, before either network moves.
        d_gradients = d_tape.gradient(d_target, d_variables)
        g_gradients = g_tape.gradient(g_target, g_variables)
        self.d_optimizer.apply(d_gradients, d_variables)
        self.g_optimizer.apply(g_gradients, g_variables)

        loss_real, loss_fake = self.cross_replica_mean([losses["loss_real"], losses["loss_fake"]])
        self.k.assign(update_k(self.k, loss_real, loss_fake, self.gamma, self.lambda_k))
        m_global = convergence_measure(loss_real, loss_fake, self.gamma)
        return {
            "d_loss": losses["discriminator_loss"],
            "g_loss": losses["generator_loss"],
            "loss_real": losses["loss_real"],
            "loss_fake": losses["loss_fake"],
            "k_t": tf.identity(self.k),
            "m_global": m_global,
        }

    def checkpoint_items(self):
        return {**super().checkpoint_items(), "began_k": self.k}
