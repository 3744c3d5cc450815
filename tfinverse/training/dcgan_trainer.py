"""DCGAN training as in LVR ("Correction by Projection"): the non-saturating GAN game.

One ``train_step`` is one iteration of the original loop: a discriminator update on a real
batch and a generated batch, then ``generator_steps`` generator updates (two in the LVR
original, which keeps the discriminator from winning too early). The latent batch of the
discriminator update is reused for the generator updates, as in the TensorFlow DCGAN the
original builds on. Losses (sigmoid cross-entropy on logits, means over the batch)::

    L_D = CE(D(x), 1) + CE(D(G(z)), 0)        L_G = CE(D(G(z)), 1)

Real images arrive in ``[0, 1]`` and are mapped to the generator's tanh range ``[-1, 1]``
before the discriminator sees them. Real and generated batches pass through the
discriminator separately (batch norm normalises each by its own statistics), and every
generator forward runs in training mode, as in the original. Optimizer defaults of the
original: Adam, learning rate ``2e-4``, ``beta_1 = 0.5`` (see :func:`dcgan_optimizers`).
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

from tfinverse.losses.adversarial import sigmoid_cross_entropy
from tfinverse.models.generator import Generator
from tfinverse.training.gan_trainer import GANTrainer
from tfinverse.training.trainer import UpdateSchedule

__all__ = [
    "DCGAN_LEARNING_RATE",
    "DCGAN_BETA_1",
    "DCGAN_GENERATOR_STEPS",
    "dcgan_optimizers",
    "DCGANTrainer",
]

DCGAN_LEARNING_RATE = 2e-4
DCGAN_BETA_1 = 0.5
DCGAN_GENERATOR_STEPS = 2


def dcgan_optimizers(
    learning_rate: float = DCGAN_LEARNING_RATE, beta_1: float = DCGAN_BETA_1, beta_2: float = 0.999
) -> Tuple[keras.optimizers.Adam, keras.optimizers.Adam]:
    """The original's optimizers ``(d_optimizer, g_optimizer)``: Adam ``2e-4``, betas ``(0.5, 0.999)``.

    Args:
      learning_rate: Adam step size of both networks.
      beta_1: first-moment decay.
      beta_2: second-moment decay (TF's default, which the original kept).

    Returns:
      Two independent Adam optimizers (discriminator, generator).
    """
    return tuple(
        keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8, name=name)
        for name in ("d_adam", "g_adam")
    )


# Mean sigmoid cross-entropy against a constant label, defined in tfinverse.losses.
_cross_entropy = sigmoid_cross_entropy


class DCGANTrainer(GANTrainer):
    """Trains a DCGAN generator against a DCGAN discriminator.

    Metrics: ``d_loss``, ``g_loss`` (of the last generator update), ``d_loss_real``,
    ``d_loss_fake``, ``d_real`` and ``d_fake`` (mean ``sigmoid(D)`` on real and generated
    images, before the update).

    Args:
      generator: a :class:`~tfinverse.models.dcgan.DCGANGenerator` (any generator with a tanh
        ``[-1, 1]`` native range works).
      discriminator: e.g. :func:`~tfinverse.models.dcgan.build_dcgan_discriminator` (logits).
      seed: run seed of the latent draws.
      generator_steps: generator updates per discriminator update (2 in LVR).
      name: model name.

    Raises:
      ValueError: if ``generator_steps < 1`` or the discriminator's input shape differs from
        the generator's output shape.
    """

    metric_names = ("d_loss", "g_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")

    def __init__(
        self,
        generator: Generator,
        discriminator: keras.Model,
        seed: int = 0,
        generator_steps: int = DCGAN_GENERATOR_STEPS,
        name: str = "dcgan_trainer",
    ):
        super().__init__(generator, discriminator, seed=seed, name=name)
        if int(generator_steps) < 1:
            raise ValueError(f"generator_steps must be >= 1, got {generator_steps}")
        self.generator_steps = int(generator_steps)
        # One step: a discriminator update, then `generator_steps` generator updates.
        self.update_schedule = UpdateSchedule.alternating(1, self.generator_steps)
        d_shape = tuple(discriminator.input_shape[1:]) if hasattr(discriminator, "input_shape") else None
        if d_shape is not None and d_shape != tuple(generator.output_shape):
            raise ValueError(
                f"the discriminator takes images of shape {d_shape} but the generator makes "
                f"{tuple(generator.output_shape)}"
            )

    def phase_discriminator(self, data, state):
        """The discriminator update on a real batch and a generated batch.

        Args:
          data: real images ``[batch, H, W, C]`` in ``[0, 1]`` (or a tuple whose first entry
            is that batch).
          state: the step's shared values (receives the latents, reused by the generator).

        Returns:
          The D losses and mean ``sigmoid(D)`` values, and ``latents``.
        """
        real = self.generator.from_unit_range(self.real_images(data))
        batch = tf.shape(real)[0]
        latents = self.draw_latents("discriminator_latents", batch)

        fake = self.generator.native(latents, training=True)
        d_variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss_real = _cross_entropy(real_logits, 1.0)
            d_loss_fake = _cross_entropy(fake_logits, 0.0)
            d_loss = d_loss_real + d_loss_fake
            target = self.gradient_target(self.d_optimizer, d_loss)
        self.apply_gradients(self.d_optimizer, tape, target, d_variables)
        return {
            "latents": latents,
            "d_loss": d_loss,
            "d_loss_real": d_loss_real,
            "d_loss_fake": d_loss_fake,
            "d_real": tf.reduce_mean(tf.sigmoid(tf.cast(real_logits, tf.float32))),
            "d_fake": tf.reduce_mean(tf.sigmoid(tf.cast(fake_logits, tf.float32))),
        }

    def phase_generator(self, data, state):
        """One generator update on the latents of the step's discriminator update.

        Returns:
          ``{"g_loss"}`` of this update.
        """
        with tf.GradientTape() as tape:
            fake = self.generator.native(state["latents"], training=True)
            g_loss = _cross_entropy(self.discriminator(fake, training=True), 1.0)
            target = self.gradient_target(self.g_optimizer, g_loss)
        self.apply_gradients(self.g_optimizer, tape, target, self.generator.trainable_variables)
        return {"g_loss": g_loss}
