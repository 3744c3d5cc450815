"""The shared base of the GAN trainers: a ``keras.Model`` holding a generator, a discriminator,
their two optimizers, a step counter and the run's random streams.

Each GAN (DCGAN, BEGAN, PGGAN) subclasses :class:`GANTrainer` in the keras-io idiom:
``trainer.compile(d_optimizer=..., g_optimizer=...)``, one ``train_step(real_images)`` that
runs a full iteration (discriminator and generator updates), ``keras.metrics.Mean`` trackers
in ``trainer.metrics``. ``train_step`` is written for a *replica context*: it may run on one
device, or on every replica of a ``tf.distribute.MirroredStrategy`` through
``strategy.run`` (see :mod:`tfinverse.training.loop`), where each replica sees its share of
the global batch.

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

from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfinverse.models.generator import Generator
from tfinverse.training.checkpointing import variables_by_path

__all__ = [
    "SEED_PURPOSES",
    "GANTrainer",
    "step_seed",
    "replica_info",
]

# Fold-in tags that separate the random streams drawn within one step.
SEED_PURPOSES = {
    "discriminator_latents": 1,
    "generator_latents": 2,
    "interpolation": 3,
}


def step_seed(seed: int, step, purpose: int) -> tf.Tensor:
    """The stateless seed of one random draw: ``fold_in(fold_in([seed, 0], step), purpose)``.

    Args:
      seed: the run seed (a Python int in ``[0, 2**32 - 1]``).
      step: the step counter (int or int64 scalar tensor).
      purpose: a small int that tells the draws of one step apart.

    Returns:
      An int64 tensor of shape ``[2]`` for ``tf.random.stateless_*``.
    """
    base = tf.constant([int(seed), 0], dtype=tf.int64)
    keyed = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64), alg="philox")
    return tf.random.experimental.stateless_fold_in(keyed, int(purpose), alg="philox")


def replica_info():
    """Where the calling code runs within a distribution strategy.

    Returns:
      ``(replica_id, num_replicas)`` of the current replica context: ``(0, 1)`` without a
      strategy or in a cross-replica context; ``replica_id`` is an int32 scalar tensor or int.
    """
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: behave as a single replica
        return 0, 1
    return context.replica_id_in_sync_group, int(context.num_replicas_in_sync)


class GANTrainer(keras.Model):
    """Base class of the GAN trainers (not used on its own).

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

    #: names of the ``keras.metrics.Mean`` trackers (set by subclasses)
    metric_names: Sequence[str] = ()

    def __init__(self, generator: Generator, discriminator: keras.Model, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(generator, Generator) or not isinstance(getattr(generator, "network", None), keras.Model):
            raise TypeError(
                "generator must be a tfinverse Generator wrapping a keras network (DCGANGenerator, "
                f"BEGANGenerator, PGGANGenerator), got {type(generator).__name__}"
            )
        if not isinstance(discriminator, keras.Model):
            raise TypeError(f"discriminator must be a keras.Model, got {type(discriminator).__name__}")
        if isinstance(seed, bool) or not 0 <= int(seed) <= 2**32 - 1:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
        self.generator = generator
        self.generator_network = generator.network
        self.discriminator = discriminator
        self.seed = int(seed)
        # One train_step = one increment; ONLY_FIRST_REPLICA lets every replica call assign_add.
        self.step = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.d_optimizer = None
        self.g_optimizer = None
        self.trackers: Dict[str, keras.metrics.Mean] = {}

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
        if loss_scaling is None:
            loss_scaling = keras.mixed_precision.global_policy().compute_dtype == "float16"
        self.d_optimizer = self._wrap(d_optimizer, loss_scaling)
        self.g_optimizer = self._wrap(g_optimizer, loss_scaling)
        self.d_optimizer.build(self.discriminator_optimizer_variables())
        self.g_optimizer.build(self.generator_optimizer_variables())
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}

    @staticmethod
    def _wrap(optimizer, loss_scaling: bool):
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(f"optimizers must be keras.optimizers.Optimizer, got {type(optimizer).__name__}")
        if loss_scaling and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def discriminator_optimizer_variables(self) -> List[tf.Variable]:
        """Variables the discriminator optimizer is built on (all trainable D weights)."""
        return list(self.discriminator.trainable_variables)

    def generator_optimizer_variables(self) -> List[tf.Variable]:
        """Variables the generator optimizer is built on (all trainable G weights)."""
        return list(self.generator_network.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def require_compiled(self) -> None:
        """Raises RuntimeError unless :meth:`compile` has attached both optimizers."""
        if self.d_optimizer is None or self.g_optimizer is None:
            raise RuntimeError(f"{type(self).__name__}.compile(d_optimizer, g_optimizer) must be called first")

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

    # ----------------------------------------------------------------- updates
    @staticmethod
    def gradient_target(optimizer, loss: tf.Tensor) -> tf.Tensor:
        """The value to differentiate for ``loss`` (compute it inside the tape).

        Args:
          optimizer: the optimizer that will apply the gradients.
          loss: this replica's scalar loss (a mean over its share of the batch).

        Returns:
          ``loss / num_replicas`` (optimizers sum replica gradients), times the loss scale of
          a ``LossScaleOptimizer`` (which divides it out again when applying).
        """
        _, num_replicas = replica_info()
        return optimizer.scale_loss(tf.cast(loss, tf.float32) / float(num_replicas))

    @staticmethod
    def apply_gradients(optimizer, tape: tf.GradientTape, target: tf.Tensor, variables) -> None:
        """Differentiates ``target`` and applies the non-``None`` gradients.

        Variables outside the current graph (PGGAN layers of other levels) get no gradient
        and are left alone.

        Args:
          optimizer: the optimizer (built on a superset of ``variables``).
          tape: the tape that recorded ``target``.
          target: from :meth:`gradient_target`.
          variables: the variables to update.

        Raises:
          ValueError: if no variable receives a gradient.
        """
        variables = list(variables)
        gradients = tape.gradient(target, variables)
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        if not pairs:
            raise ValueError("no variable received a gradient; is the loss connected to the model?")
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

    @staticmethod
    def cross_replica_mean(values: Sequence[tf.Tensor]) -> List[tf.Tensor]:
        """Means over replicas, e.g. of the losses that drive BEGAN's ``k_t``.

        Args:
          values: scalar tensors of this replica.

        Returns:
          Their float32 means over all replicas (the values themselves on one device).
        """
        context = tf.distribute.get_replica_context()
        values = [tf.cast(v, tf.float32) for v in values]
        if context is None or context.num_replicas_in_sync == 1:
            return values
        return list(context.all_reduce(tf.distribute.ReduceOp.MEAN, values))

    def record(self, values: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Updates the trackers and returns their results (the Keras ``train_step`` contract).

        Args:
          values: tracker name -> this step's scalar value.

        Returns:
          tracker name -> mean since the trackers were last reset.
        """
        for name, value in values.items():
            self.trackers[name].update_state(tf.cast(value, tf.float32))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    # ----------------------------------------------------------------- contract
    def train_step(self, data):  # pragma: no cover - abstract
        raise NotImplementedError

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

    def call(self, z, training=False):
        """Generates ``[0, 1]`` images from latents (the generator; lets Keras call the model).

        Args:
          z: latents ``[n, latent_dim]``.
          training: Keras training flag.

        Returns:
          float32 ``[n, H, W, C]`` in ``[0, 1]``.
        """
        return self.generator(z, training=training)

    def trace_key(self):
        """Hashable description of the graph ``train_step`` builds; a training loop compiles
        one step function per key (PGGAN: one per level)."""
        return None

    def prepare_step(self, step: int, images_seen: int) -> None:
        """Called by the training loop before each step, outside compiled code (PGGAN sets its
        level and fade-in here; the others do nothing).

        Args:
          step: the step about to run.
          images_seen: images shown before it (``step * global_batch_size``).
        """

    def after_restore(self) -> None:
        """Called after a checkpoint was restored (PGGAN re-applies its restored level)."""

    def checkpoint_items(self) -> Dict[str, object]:
        """Everything a checkpoint must hold to resume this trainer exactly: both networks'
        variables by path (see :func:`~tfinverse.training.checkpointing.variables_by_path`),
        both optimizers and the step counter."""
        self.require_compiled()
        return {
            "generator": variables_by_path(self.generator_network),
            "discriminator": variables_by_path(self.discriminator),
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            "step": self.step,
        }

    def log_scalars(self) -> Dict[str, float]:
        """Extra scalars for TensorBoard besides the trackers.

        Returns:
          name -> value: the learning rates (PGGAN adds level, alpha and resolution).
        """
        self.require_compiled()
        # float32 values shown with their shortest decimal form (2e-4, not 0.00019999999)
        return {
            "learning_rate/generator": float(str(np.float32(self.g_optimizer.learning_rate))),
            "learning_rate/discriminator": float(str(np.float32(self.d_optimizer.learning_rate))),
        }

    def sample(self, latents) -> np.ndarray:
        """Generated images for fixed latents, in inference mode.

        Args:
          latents: ``[n, latent_dim]``.

        Returns:
          float32 numpy ``[n, H, W, C]`` in ``[0, 1]`` (PGGAN: at the current level).
        """
        return np.asarray(self.generator(latents, training=False))
