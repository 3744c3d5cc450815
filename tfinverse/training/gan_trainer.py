"""The GAN trainers' base: a :class:`~tfinverse.training.trainer.Trainer` holding a generator,
a discriminator, their two optimizers (``d`` and ``g``), the step counter and the run's random
streams.

Each GAN (DCGAN, BEGAN, PGGAN) subclasses :class:`GANTrainer` in the keras-io idiom:
``trainer.compile(d_optimizer=..., g_optimizer=...)``, one ``train_step(real_images)`` that
runs a full iteration (the phases of its declared schedule: discriminator and generator
updates), ``keras.metrics.Mean`` trackers in ``trainer.metrics``. ``train_step`` is written
for a *replica context*: it may run on one device, or on every replica of a
``tf.distribute`` strategy through ``strategy.run`` (see :mod:`tfinverse.training.loop`),
where each replica sees its share of the global batch.

Randomness is stateless and keyed by the run seed and the step counter:
``tf.random.stateless_*`` with seed ``fold_in(fold_in([seed, 0], step), purpose)``. A step's
latents therefore depend only on ``(seed, step)``, so a resumed run draws exactly what an
uninterrupted run would. Latents are drawn for the *global* batch and each replica takes its
own slice, so a step on two replicas sees the same latents as the same step on one device.
The Philox algorithm is named explicitly rather than auto-selected per device. XLA
implements the stateless random ops with its own bit generator, so a ``jit_compile`` run
draws other numbers than a plain run (equally reproducible and resumable).

Distribution: a replica's loss is its local mean divided by the number of replicas, and the
Keras optimizers sum gradients over replicas, which gives the gradient of the global mean.

Mixed precision: under the ``mixed_float16`` global policy :meth:`GANTrainer.compile` wraps
both optimizers in ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling); losses are
always computed in float32.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from tfinverse.models.generator import Generator
from tfinverse.training.samples import save_sample_grid, tile_images
from tfinverse.training.trainer import SEED_PURPOSES, Trainer, UpdateSchedule, replica_info, step_seed

__all__ = [
    "SEED_PURPOSES",
    "GANTrainer",
    "step_seed",
    "replica_info",
]


class GANTrainer(Trainer):
    """Base class of the GAN trainers (not used on its own).

    Networks ``generator`` (the generator's Keras network) and ``discriminator``; optimizers
    ``d`` and ``g`` (``self.d_optimizer``, ``self.g_optimizer``). The default schedule is one
    discriminator update then one generator update per step (phases ``discriminator`` and
    ``generator``); subclasses declare their own.

    Args:
      generator: the :class:`~tfinverse.models.generator.Generator` being trained (its
        ``network`` holds the weights).
      discriminator: the discriminator / critic ``keras.Model``.
      seed: the run seed of every random draw inside ``train_step``.
      **kwargs: forwarded to ``keras.Model`` (e.g. ``name``).

    Raises:
      TypeError: if ``generator`` is not a ``Generator`` with a Keras ``network``.
      ValueError: if ``seed`` is not in ``[0, 2**32 - 1]``.
    """

    optimizer_labels = {"d": "discriminator", "g": "generator"}

    def __init__(self, generator: Generator, discriminator: keras.Model, seed: int = 0, **kwargs):
        if not isinstance(generator, Generator) or not isinstance(getattr(generator, "network", None), keras.Model):
            raise TypeError(
                "generator must be a tfinverse Generator wrapping a keras network (DCGANGenerator, "
                f"BEGANGenerator, PGGANGenerator), got {type(generator).__name__}"
            )
        if not isinstance(discriminator, keras.Model):
            raise TypeError(f"discriminator must be a keras.Model, got {type(discriminator).__name__}")
        super().__init__(seed=seed, **kwargs)
        self.generator = generator
        self.generator_network = generator.network
        self.discriminator = discriminator
        self.d_optimizer = None
        self.g_optimizer = None
        self.update_schedule = UpdateSchedule.alternating(1, 1)

    # ----------------------------------------------------------------- set-up
    def compile(self, d_optimizer, g_optimizer, loss_scaling: Optional[bool] = None, **kwargs):
        """Attaches the two optimizers and creates the metric trackers.

        Both optimizers are built on all their variables at once, so that their slots exist
        before a checkpoint is restored and a checkpoint always holds the full state.

        Args:
          d_optimizer: optimizer of the discriminator.
          g_optimizer: optimizer of the generator.
          loss_scaling: wrap both in ``keras.optimizers.LossScaleOptimizer``; default: when
            the global dtype policy is ``mixed_float16``.
          **kwargs: forwarded to ``keras.Model.compile``.
        """
        super().compile(**kwargs)
        self.attach_optimizers({"d": d_optimizer, "g": g_optimizer}, loss_scaling)

    def optimizer_variables(self, name: str) -> List[tf.Variable]:
        """Variables optimizer ``"d"`` or ``"g"`` is built on."""
        return self.discriminator_optimizer_variables() if name == "d" else self.generator_optimizer_variables()

    def discriminator_optimizer_variables(self) -> List[tf.Variable]:
        """Variables the discriminator optimizer is built on (all trainable D weights)."""
        return list(self.discriminator.trainable_variables)

    def generator_optimizer_variables(self) -> List[tf.Variable]:
        """Variables the generator optimizer is built on (all trainable G weights)."""
        return list(self.generator_network.trainable_variables)

    def networks(self) -> Dict[str, keras.Model]:
        """``{"generator": G's network, "discriminator": D}``."""
        return {"generator": self.generator_network, "discriminator": self.discriminator}

    # ----------------------------------------------------------------- randomness
    def draw_latents(self, purpose: str, local_batch, step=None) -> tf.Tensor:
        """This replica's slice of the step's global latent batch.

        Args:
          purpose: a key of ``SEED_PURPOSES``.
          local_batch: the replica's batch size (int or scalar tensor).
          step: the step whose stream to use (default: the current ``self.step``).

        Returns:
          float32 ``[local_batch, latent_dim]`` from the generator's prior (``U[-1, 1]`` or
          ``N(0, I)``, as :meth:`Generator.sample_latent` draws), with the Philox algorithm.
        """
        step = self.step if step is None else step
        replica_id, num_replicas = replica_info()
        local_batch = tf.cast(local_batch, tf.int32)
        seed = step_seed(self.seed, step, SEED_PURPOSES[purpose])
        shape = tf.stack([local_batch * num_replicas, tf.constant(self.generator.latent_dim, tf.int32)])
        # Philox named explicitly, not auto-selected per device (see the module docstring).
        if self.generator.latent_distribution == "uniform":
            latents = tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0, alg="philox")
        else:
            latents = tf.random.stateless_normal(shape, seed, alg="philox")
        start = tf.cast(replica_id, tf.int32) * local_batch
        return latents[start : start + local_batch]

    def draw_uniform(self, purpose: str, local_batch, step=None) -> tf.Tensor:
        """This replica's slice of the step's global ``U[0, 1)`` vector (one value per sample).

        Args:
          purpose: a key of ``SEED_PURPOSES``.
          local_batch: the replica's batch size.
          step: the step whose stream to use (default: the current ``self.step``).

        Returns:
          float32 ``[local_batch]``.
        """
        step = self.step if step is None else step
        replica_id, num_replicas = replica_info()
        local_batch = tf.cast(local_batch, tf.int32)
        seed = step_seed(self.seed, step, SEED_PURPOSES[purpose])
        values = tf.random.stateless_uniform([local_batch * num_replicas], seed, dtype=tf.float32, alg="philox")
        start = tf.cast(replica_id, tf.int32) * local_batch
        return values[start : start + local_batch]

    # ----------------------------------------------------------------- contract
    @property
    def image_shape(self):
        """``(H, W, C)`` of the real images ``train_step`` expects (the generator's output)."""
        return tuple(self.generator.output_shape)

    def real_images(self, data) -> tf.Tensor:
        """The image batch of a ``train_step`` input (a tensor, or the first of a tuple).

        Raises:
          ValueError: if the batch is not ``[batch, H, W, C]`` with the trainer's image shape.
        """
        if isinstance(data, (tuple, list)):
            data = data[0]
        images = tf.convert_to_tensor(data)
        expected = self.image_shape
        if images.shape.rank != 4 or any(
            have is not None and have != want for have, want in zip(images.shape[1:], expected)
        ):
            raise ValueError(
                f"train_step expects real images of shape [batch, {expected[0]}, {expected[1]}, "
                f"{expected[2]}] in [0, 1], got {images.shape}"
            )
        return tf.cast(images, tf.float32)

    def split_batches(self, data, plan):
        # Keras fit hands (x,) or (x, y) tuples: a GAN batch is the images, whatever follows.
        if plan.num_batches == 1 and isinstance(data, (tuple, list)):
            data = data[0]
        return super().split_batches(data, plan)

    def call(self, z, training=False):
        """Generates ``[0, 1]`` images from latents (the generator; lets Keras call the model).

        Args:
          z: latents ``[n, latent_dim]``.
          training: Keras training flag.

        Returns:
          float32 ``[n, H, W, C]`` in ``[0, 1]``.
        """
        return self.generator(z, training=training)

    # ----------------------------------------------------------------- samples
    def fixed_sample_inputs(self, count: int, seed: int):
        """The fixed latent batch of the sample grids (``self.fixed_samples`` when set).

        Args:
          count: how many latents.
          seed: the run seed (the latents are drawn from ``default_rng([seed, 0x5A3D])``).

        Returns:
          float32 numpy ``[count, latent_dim]``.
        """
        if self.fixed_samples is not None:
            return self.fixed_samples
        return self.generator.sample_latent(int(count), np.random.default_rng([int(seed), 0x5A3D]))

    def sample(self, latents) -> np.ndarray:
        """Generated images for fixed latents, in inference mode.

        Args:
          latents: ``[n, latent_dim]``.

        Returns:
          float32 numpy ``[n, H, W, C]`` in ``[0, 1]`` (PGGAN: at the current level).
        """
        return np.asarray(self.generator(latents, training=False))

    def sample_grid(self, latents):
        """An about square grid of the generated images (no column labels)."""
        images = np.clip(self.sample(latents), 0.0, 1.0)
        columns = int(np.ceil(np.sqrt(len(images))))
        return [list(images[i : i + columns]) for i in range(0, len(images), columns)], None

    def write_sample_grid(self, path, latents):
        """Writes the generated images of ``latents`` as an about square PNG grid."""
        return save_sample_grid(path, self.sample(latents))

    def sample_mosaic(self, latents):
        """The generated images tiled into one image (TensorBoard)."""
        return tile_images(self.sample(latents))
