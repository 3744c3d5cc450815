"""PGGAN training: WGAN-GP with a drift term, grown progressively with fade-in.

One ``train_step`` is one critic update followed by one generator update (each with its own
latent batch), at the networks' current ``level``::

    L_D = E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2] + eps_drift E[D(x)^2]
    L_G = -E[D(G(z))]

with ``x_hat = x + u (G(z) - x)``, one ``u ~ U[0, 1]`` per sample, ``lambda = 10`` and
``eps_drift = 1e-3``. Real images arrive at the top resolution in ``[0, 1]``; they are mapped
to ``[-1, 1]``, average-pooled to the current resolution and, during a fade-in, blended with
their own 2x-pooled-then-upsampled version by ``alpha``, exactly as the generator blends its
two top outputs, so the critic compares like with like (the official code does the same).

Growing: :meth:`PGGANTrainer.prepare_step` reads the :class:`ProgressiveSchedule` before
every step and sets ``level`` and ``alpha`` on both networks. ``level`` is read when a step
is traced, so the training loop compiles one step function per level
(:meth:`PGGANTrainer.trace_key`); ``alpha`` is a variable and changes between steps of the
same compiled function. As in the official code the optimizers' moments are reset when a new
level starts (``reset_optimizers_on_growth``).

Optimizer of the original: Adam, learning rate ``1e-3``, betas ``(0, 0.99)``, epsilon
``1e-8`` (:func:`pggan_optimizers`).
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

from tfinverse.models.pggan import (
    PGGANDiscriminatorNetwork,
    PGGANGenerator,
    downsample_average,
    gradient_penalty,
    upsample_nearest,
    wgan_discriminator_loss,
    wgan_generator_loss,
    wgan_gp_discriminator_loss,
    drift_penalty,
)
from tfinverse.training.gan_trainer import GANTrainer
from tfinverse.training.progressive_schedule import ProgressiveSchedule

__all__ = [
    "PGGAN_LEARNING_RATE",
    "PGGAN_BETAS",
    "PGGAN_GP_WEIGHT",
    "PGGAN_DRIFT_WEIGHT",
    "pggan_optimizers",
    "reset_optimizer_state",
    "PGGANTrainer",
]

from tfinverse.tasks.iagan import (  # noqa: E402  (the index of IAGAN settings)
    PGGAN_BETAS,
    PGGAN_DRIFT_WEIGHT,
    PGGAN_GP_WEIGHT,
    PGGAN_LEARNING_RATE,
)


def pggan_optimizers(
    learning_rate: float = PGGAN_LEARNING_RATE, beta_1: float = PGGAN_BETAS[0], beta_2: float = PGGAN_BETAS[1]
) -> Tuple[keras.optimizers.Adam, keras.optimizers.Adam]:
    """The original's optimizers ``(d_optimizer, g_optimizer)``: Adam ``1e-3``, betas ``(0, 0.99)``.

    Args:
      learning_rate: step size of both networks.
      beta_1: first-moment decay (0).
      beta_2: second-moment decay (0.99).

    Returns:
      Two independent Adam optimizers (critic, generator).
    """
    return tuple(
        keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8, name=name)
        for name in ("d_adam", "g_adam")
    )


def reset_optimizer_state(optimizer) -> None:
    """Zeroes an optimizer's moments and step counter (not its learning rate).

    A ``LossScaleOptimizer`` keeps its loss scale; its inner optimizer is reset.

    Args:
      optimizer: a built Keras optimizer.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    for variable in inner.variables:
        if variable.name == "learning_rate":
            continue
        variable.assign(tf.zeros(variable.shape, variable.dtype))


class PGGANTrainer(GANTrainer):
    """Trains a progressive PGGAN generator and critic with WGAN-GP.

    Metrics: ``d_loss`` (with penalties), ``g_loss``, ``wasserstein``
    (``E[D(x)] - E[D(G(z))]``), ``gradient_penalty`` and ``drift`` (``E[D(x)^2]``).

    Args:
      generator: a progressive :class:`~tfinverse.models.pggan.PGGANGenerator` (not the
        original IAGAN layout, which has no per-level outputs).
      discriminator: a :class:`~tfinverse.models.pggan.PGGANDiscriminatorNetwork` of the same
        resolution and channels.
      schedule: the growing schedule; its ``num_levels`` must match the networks'.
      seed: run seed of the latent and interpolation draws.
      gp_weight: ``lambda`` of the gradient penalty (10).
      drift_weight: ``eps_drift`` (1e-3).
      reset_optimizers_on_growth: zero both optimizers' moments when a new level starts.
      name: model name.

    Raises:
      ValueError: for a non-progressive generator, networks of different resolutions or
        channels, or a schedule with another number of levels.
    """

    metric_names = ("d_loss", "g_loss", "wasserstein", "gradient_penalty", "drift")

    def __init__(
        self,
        generator: PGGANGenerator,
        discriminator: PGGANDiscriminatorNetwork,
        schedule: ProgressiveSchedule,
        seed: int = 0,
        gp_weight: float = PGGAN_GP_WEIGHT,
        drift_weight: float = PGGAN_DRIFT_WEIGHT,
        reset_optimizers_on_growth: bool = True,
        name: str = "pggan_trainer",
    ):
        super().__init__(generator, discriminator, seed=seed, name=name)
        g_network = generator.network
        if not isinstance(generator, PGGANGenerator) or not g_network.progressive:
            raise ValueError("PGGAN training needs a progressive PGGANGenerator (original_layout=False)")
        if not isinstance(discriminator, PGGANDiscriminatorNetwork):
            raise ValueError(
                f"the critic must be a PGGANDiscriminatorNetwork, got {type(discriminator).__name__}"
            )
        if (g_network.resolution, g_network.channels) != (discriminator.resolution, discriminator.channels):
            raise ValueError(
                f"generator ({g_network.resolution}px, {g_network.channels} channels) and critic "
                f"({discriminator.resolution}px, {discriminator.channels} channels) differ"
            )
        if schedule.num_levels != g_network.num_levels:
            raise ValueError(
                f"the schedule has {schedule.num_levels} levels, the networks {g_network.num_levels}"
            )
        self.schedule = schedule
        self.gp_weight = float(gp_weight)
        self.drift_weight = float(drift_weight)
        self.reset_optimizers_on_growth = bool(reset_optimizers_on_growth)
        self.level_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="pggan_level")
        start_level, start_alpha = schedule(0)
        self._set_level(start_level)
        self._set_alpha(start_alpha)

    # ----------------------------------------------------------------- growing
    @property
    def level(self) -> int:
        """The current level (0 = 4x4), shared by both networks."""
        return self.generator_network.level

    @property
    def current_resolution(self) -> int:
        """Side of the images at the current level."""
        return self.generator_network.current_resolution

    @property
    def alpha(self) -> float:
        """The current fade-in weight."""
        return float(self.generator_network.alpha.numpy())

    @property
    def image_shape(self):
        network = self.generator_network
        return (network.resolution, network.resolution, network.channels)

    def _set_level(self, level: int) -> None:
        self.generator_network.level = level
        self.discriminator.level = level
        self.level_variable.assign(level)

    def _set_alpha(self, alpha: float) -> None:
        self.generator_network.set_alpha(float(alpha))
        self.discriminator.set_alpha(float(alpha))

    def prepare_step(self, step: int, images_seen: int) -> None:
        """Applies the schedule: grows (resetting the optimizers' moments when asked) and sets
        ``alpha`` on both networks.

        Args:
          step: the step about to run.
          images_seen: images shown before it.
        """
        level, alpha = self.schedule(images_seen)
        if level != self.level:
            self._set_level(level)
            if self.reset_optimizers_on_growth and self.d_optimizer is not None:
                reset_optimizer_state(self.d_optimizer)
                reset_optimizer_state(self.g_optimizer)
        if alpha != self.alpha:
            self._set_alpha(alpha)

    def trace_key(self):
        return ("level", self.level)

    def after_restore(self) -> None:
        self._set_level(int(self.level_variable.numpy()))

    # ----------------------------------------------------------------- step
    def current_reals(self, real: tf.Tensor) -> tf.Tensor:
        """Real images as the critic sees them at the current level.

        Args:
          real: ``[n, R, R, C]`` top-resolution images in ``[-1, 1]``.

        Returns:
          ``[n, r, r, C]`` at the current resolution ``r`` (average-pooled), crossfaded during a
          fade-in with their 2x-pooled, nearest-upsampled version by ``alpha``.
        """
        factor = self.generator_network.resolution // self.current_resolution
        if factor > 1:
            real = downsample_average(real, factor)
        if self.level > 0:
            low = upsample_nearest(downsample_average(real, 2))
            alpha = tf.cast(self.generator_network.alpha, real.dtype)
            real = low + alpha * (real - low)
        return real

    def _critic(self, images):
        return tf.cast(self.discriminator(images, training=True), tf.float32)

    def phase_discriminator(self, data, state):
        """One critic update (WGAN-GP with drift) at the current level.

        Args:
          data: real images ``[batch, R, R, C]`` in ``[0, 1]`` at the top resolution ``R``.
          state: the step's shared values (receives the batch size).

        Returns:
          The critic's tracked values.
        """
        real = self.current_reals(self.generator.from_unit_range(self.real_images(data)))
        batch = tf.shape(real)[0]
        fake = self.generator.native(self.draw_latents("discriminator_latents", batch), training=True)
        weights = self.draw_uniform("interpolation", batch)
        with tf.GradientTape() as tape:
            real_scores = self._critic(real)
            fake_scores = self._critic(fake)
            penalty = gradient_penalty(self._critic, real, fake, interpolation_weights=weights)
            d_loss = wgan_gp_discriminator_loss(
                real_scores, fake_scores, penalty, self.gp_weight, self.drift_weight
            )
            target = self.gradient_target(self.d_optimizer, d_loss)
        self.apply_gradients(self.d_optimizer, tape, target, self.discriminator.trainable_variables)
        return {
            "batch": batch,
            "d_loss": d_loss,
            "wasserstein": -wgan_discriminator_loss(real_scores, fake_scores),
            "gradient_penalty": penalty,
            "drift": drift_penalty(real_scores),
        }

    def phase_generator(self, data, state):
        """One generator update at the current level, on latents of its own stream.

        Returns:
          ``{"g_loss"}``.
        """
        latents = self.draw_latents("generator_latents", state["batch"])
        with tf.GradientTape() as tape:
            g_loss = wgan_generator_loss(self._critic(self.generator.native(latents, training=True)))
            target = self.gradient_target(self.g_optimizer, g_loss)
        self.apply_gradients(self.g_optimizer, tape, target, self.generator_network.trainable_variables)
        return {"g_loss": g_loss}

    # ----------------------------------------------------------------- bookkeeping
    def checkpoint_items(self):
        return {**super().checkpoint_items(), "pggan_level": self.level_variable}

    def log_scalars(self):
        return {
            **super().log_scalars(),
            "pggan/alpha": self.alpha,
            "pggan/level": float(self.level),
            "pggan/resolution": float(self.current_resolution),
        }
