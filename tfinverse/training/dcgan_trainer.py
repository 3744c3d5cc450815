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

Beyond the original, ``path_length_weight > 0`` adds StyleGAN2's path-length regulariser to
every generator update (off by default, as LVR trained without it): with ``y ~ N(0, I / P)``
in image space (``P`` pixels) and the Jacobian ``J = dG/dz``, it penalises
``(||J^T y|| - a)^2``, where ``a`` is a running mean of ``||J^T y||`` (decay
``path_length_decay``). For a fixed ``tr(J^T J)`` the spread of ``||J^T y||`` is smallest
when all singular values of ``J`` are equal, so the term pushes the generator toward a
well-conditioned Jacobian: latents that can be recovered from images, which LVR's latent
recovery needs. It costs a second backward pass through the generator per update.
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

from tfinverse.losses.adversarial import sigmoid_cross_entropy
from tfinverse.models.generator import Generator
from tfinverse.tasks.lvr import PATH_LENGTH_DECAY
from tfinverse.training.gan_trainer import GANTrainer
from tfinverse.training.trainer import SEED_PURPOSES, UpdateSchedule, step_seed

__all__ = [
    "DCGAN_LEARNING_RATE",
    "DCGAN_BETA_1",
    "DCGAN_GENERATOR_STEPS",
    "PATH_LENGTH_DECAY",
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
      path_length_weight: weight of the path-length regulariser (0: off, the original).
        When on, the metrics gain ``path_length`` (mean ``||J^T y||`` of the batch) and
        ``path_length_penalty``.
      path_length_decay: decay of the running mean ``a`` of the path length.
      name: model name.

    Raises:
      ValueError: if ``generator_steps < 1``, ``path_length_weight < 0``,
        ``path_length_decay`` is not in ``(0, 1]``, or the discriminator's input shape
        differs from the generator's output shape.
    """

    metric_names = ("d_loss", "g_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake")

    def __init__(
        self,
        generator: Generator,
        discriminator: keras.Model,
        seed: int = 0,
        generator_steps: int = DCGAN_GENERATOR_STEPS,
        path_length_weight: float = 0.0,
        path_length_decay: float = PATH_LENGTH_DECAY,
        name: str = "dcgan_trainer",
    ):
        super().__init__(generator, discriminator, seed=seed, name=name)
        if int(generator_steps) < 1:
            raise ValueError(f"generator_steps must be >= 1, got {generator_steps}")
        if not float(path_length_weight) >= 0.0:
            raise ValueError(f"path_length_weight must be >= 0, got {path_length_weight}")
        if not 0.0 < float(path_length_decay) <= 1.0:
            raise ValueError(f"path_length_decay must be in (0, 1], got {path_length_decay}")
        self.generator_steps = int(generator_steps)
        self.path_length_weight = float(path_length_weight)
        self.path_length_decay = float(path_length_decay)
        # The running mean `a` of the path length: state that a resumed run must restore.
        self.path_length_mean = tf.Variable(
            0.0,
            dtype=tf.float32,
            trainable=False,
            name="path_length_mean",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        if self.path_length_weight > 0:
            self.metric_names = self.metric_names + ("path_length", "path_length_penalty")
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
          ``{"g_loss"}`` of this update (the adversarial term), and with the path-length
          regulariser on, ``path_length`` and ``path_length_penalty``.
        """
        latents = state["latents"]
        regularise = self.path_length_weight > 0
        with tf.GradientTape() as tape:
            if regularise:
                fake, lengths = self._generate_with_path_lengths(latents)
            else:
                fake = self.generator.native(latents, training=True)
            g_loss = _cross_entropy(self.discriminator(fake, training=True), 1.0)
            total = g_loss
            if regularise:
                mean = self.path_length_mean + self.path_length_decay * (
                    tf.stop_gradient(tf.reduce_mean(lengths)) - self.path_length_mean
                )
                penalty = tf.reduce_mean(tf.square(lengths - mean))
                total = g_loss + self.path_length_weight * penalty
            target = self.gradient_target(self.g_optimizer, total)
        self.apply_gradients(self.g_optimizer, tape, target, self.generator.trainable_variables)
        if not regularise:
            return {"g_loss": g_loss}
        self.path_length_mean.assign(mean)
        return {"g_loss": g_loss, "path_length": tf.reduce_mean(lengths), "path_length_penalty": penalty}

    def _generate_with_path_lengths(self, latents):
        """``(G(z), ||J^T y||)`` per sample; called under the update's tape, which records the
        inner gradient too, so the penalty's gradient reaches the weights."""
        with tf.GradientTape(watch_accessed_variables=False) as latent_tape:
            latent_tape.watch(latents)
            fake = self.generator.native(latents, training=True)
            projection = self._path_length_projection(fake)
        lengths = tf.norm(tf.cast(latent_tape.gradient(projection, latents), tf.float32), axis=1)
        return fake, lengths

    def _path_length_projection(self, fake) -> tf.Tensor:
        """``sum(G(z) * y)`` with ``y ~ N(0, I / P)``: its gradient in z is ``J^T y`` per sample."""
        fake = tf.cast(fake, tf.float32)
        shape = tf.shape(fake)
        seed = step_seed(self.seed, self.step, SEED_PURPOSES["path_length_noise"])
        noise = tf.random.stateless_normal(shape, seed, alg="philox")
        pixels = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
        return tf.reduce_sum(fake * noise) / tf.sqrt(pixels)

    def checkpoint_items(self):
        items = super().checkpoint_items()
        if self.path_length_weight > 0:  # runs without it keep their checkpoint layout
            items["path_length_mean"] = self.path_length_mean
        return items
