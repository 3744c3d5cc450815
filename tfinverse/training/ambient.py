"""Ambient VAE-GAN training (seed 001, ``hamedhaghighi/Ambient-VAE``): the trainer and its checkpoints.

One ``train_step`` is one iteration of the original's loop (``vaegan.py``; ``ORIGINALS.md``
section 2). Three measurement draws per step, made inside the compiled step from stateless
seeds keyed by ``(seed, step, purpose)`` (:func:`~tfinverse.training.trainer.step_seed`)::

    y   = f(X; theta)         (the data: lossy images)
    mu, logvar = E(y);  z = mu + exp(logvar / 2) eps;  x~ = G(z);  y~ = f(x~; theta_rec)
    x_p = G(z_p);  y_p = f(x_p; theta_xp)                 eps, z_p ~ N(0, I)

then three updates in this order, as three declared phases (``encoder``, ``generator``,
``discriminator``), each recomputing its forward pass with fresh ``eps`` and ``z_p`` (the
original's three separate session runs, whose ``eps`` and ``z_p`` were graph random ops) and
the same three thetas (the same feed)::

    KL  = -1/2 sum(1 + logvar - mu^2 - exp(logvar)) / (latent_dim * batch)
    LL(a, b) = mean over pixels and batch of [-1/2 log 2 pi - 1/2 (a - b)^2]
    PL  = LL(Dfeat(y~), Dfeat(y))
    pixel = LL(x~, y) (gamma 0, default) or LL(y~, y) (gamma 1)
    L   = alpha pixel + beta PL                               alpha 10, beta 1
    E:  KL - L
    G:  CE(D(y_p), 0.375) + CE(D(y~), 0.375) - l2_w L          l2_w 1e-6
    D:  CE(D(y_p), 0) + CE(D(y), 0.75) + CE(D(y~), 0)

``D`` is called separately on ``y~``, ``y`` and ``y_p``: each call normalises by its own batch
statistics. Every batch norm runs on batch statistics (the networks' default,
:class:`~tfinverse.models.ambient.AmbientBatchNormalization`), as in the original, which never
read its moving averages; the training calls do not update them (``training=False`` with batch
statistics). The moving averages are set only by :meth:`AmbientVAEGANTrainer.calibrate_batch_norm`
(population statistics of the encoder on lossy training images and of the decoder on their
posterior means), used by the exported enhancer, which then gives each image the same output
whatever batch it comes in.

Losses are computed in the networks' range (``[-1, 1]`` for the CelebA layout, ``[0, 1]`` for
MNIST), as the original did; measurements are made on ``[0, 1]`` images about the layout's
``zero_level`` (see :mod:`tfinverse.tasks.ambient`), which is the original's measurement.

``supervised`` (the original's ``--supervised``): ``y~ := x~``, ``y_p := x_p``, D's real input
and the pixel target are the clean ``X``; the encoder is still fed ``y``.

Optimisers (:func:`ambient_optimizers`): three RMSProp with TF1's defaults, decay (Keras'
``rho``) 0.9 and epsilon 1e-10, and TF1's accumulator initialised to ones
(:class:`~tfinverse.training.optimizers.TF1RMSprop`). Keras 3 puts epsilon where TF1's
``ApplyRMSProp`` kernel did, inside the square root: ``lr g / sqrt(ms + eps)`` (tf.keras 2's
newer optimizers put it outside, ``sqrt(ms) + eps``); so only the accumulator's start differs
from plain Keras. The rate is :class:`~tfinverse.models.ambient.AmbientLearningRate` of each
optimizer's own update count (one update per step: the trainer's step).

"Best" checkpoints (:meth:`AmbientVAEGANTrainer.configure_best`): at every multiple of ``every`` steps
(the same steps whether a run was interrupted and resumed or not; a run that ends before its
first multiple is evaluated once at its end, so that a best checkpoint exists) a criterion is evaluated on held-out images and the networks are saved to
their own folder when it improves; the best value and step live in the regular checkpoints, so
``--resume`` continues the comparison. Criteria:

* ``measurement`` (default; needs no clean image): two independent measurements of each
  held-out image, ``y1 = f(x; theta_1)`` and ``y2 = f(x; theta_2)``. The enhancer sees ``y1``;
  its estimate is scored by ``mean (A_theta2 x_hat - y2)^2``. Because ``theta_2`` is drawn
  independently of ``theta_1`` (and so of ``x_hat``), the expectation over ``theta_2`` is
  ``(x_hat - x)^T E[A^T A] (x_hat - x)`` plus the noise variance: for ``drop_independent``
  ``E[A^T A] = I / (1 - p)``, for ``add_noise`` ``I``, so the criterion ranks models as the
  clean MSE does, without the clean images; for ``drop_patch`` it weights each pixel by how
  often it is kept. Scoring against ``y1`` itself would reward copying the observed pixels and
  say nothing about the lost ones. Needs: two looks at each held-out scene with the second
  operator known (a drop mask is visible in its zeros); not published by the original.
* ``clean`` (the original's): ``mean (x_hat - x)^2`` against the clean held-out images.

The estimate is the decoded posterior mean with batch statistics over the held-out batch (the
original evaluated its validation batch the same way).

Distribution: the draws are made per replica with the replica id folded into the seed (a run
on several replicas draws other, equally reproducible numbers than one on one device).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from tfinverse.losses.adversarial import sigmoid_cross_entropy
from tfinverse.losses.vae import gaussian_kl_divergence, gaussian_log_likelihood
from tfinverse.models.ambient import (
    AmbientLearningRate,
    AmbientMeasurement,
    AmbientNetworks,
    from_network_range,
    set_batch_statistics,
    to_network_range,
)
from tfinverse.tasks.ambient import (
    ALPHA,
    BEST_CRITERIA,
    BETA,
    D_FAKE_LABEL,
    D_REAL_LABEL,
    G_TARGET,
    GAMMA,
    GAMMA_CHOICES,
    L2_WEIGHT,
    LEARNING_RATE,
    LEARNING_RATE_DECAY_RATE,
    LEARNING_RATE_DECAY_STEPS,
    LEARNING_RATE_FLOOR,
    RMSPROP_DECAY,
    RMSPROP_EPSILON,
)
from tfinverse.training.trainer import Trainer, Update, UpdateSchedule, replica_info, step_seed

__all__ = [
    "AMBIENT_SEED_PURPOSES",
    "BEST_CRITERIA",
    "ambient_optimizers",
    "AmbientVAEGANTrainer",
]

#: Fold-in tags of the draws of one step: the three thetas are shared by the phases (the
#: same feed), eps and z_p are drawn anew in each phase (graph random ops of the original).
AMBIENT_SEED_PURPOSES = {
    "theta_real": 11,
    "theta_reconstruction": 12,
    "theta_prior": 13,
    "eps_encoder": 21,
    "eps_generator": 22,
    "eps_discriminator": 23,
    "prior_encoder": 31,
    "prior_generator": 32,
    "prior_discriminator": 33,
}


def ambient_optimizers(
    learning_rate: float = LEARNING_RATE,
    decay_rate: float = LEARNING_RATE_DECAY_RATE,
    decay_steps: float = LEARNING_RATE_DECAY_STEPS,
    floor: float = LEARNING_RATE_FLOOR,
    rho: float = RMSPROP_DECAY,
    epsilon: float = RMSPROP_EPSILON,
):
    """The original's three optimisers ``(e, g, d)``: TF1 RMSProp on the decaying rate.

    Args:
      learning_rate: rate at step 0 (3e-4).
      decay_rate: factor per ``decay_steps`` (0.98), continuous.
      decay_steps: 1e4.
      floor: the rate at which the decay stops (5e-5).
      rho: RMSProp decay (TF1's 0.9).
      epsilon: TF1's 1e-10, inside the square root (as Keras 3).

    Returns:
      Three independent :class:`~tfinverse.training.optimizers.TF1RMSprop` (accumulators start at 1).
    """
    from tfinverse.training.optimizers import TF1RMSprop

    return tuple(
        TF1RMSprop(AmbientLearningRate(learning_rate, decay_rate, decay_steps, floor), rho=rho, momentum=0.0,
                   epsilon=epsilon, name=f"{name}_rmsprop")
        for name in ("e", "g", "d")
    )


class _Settings:
    """A plain record (not a dict, which Keras would wrap and track as model state)."""

    def __init__(self, **items):
        self._items = dict(items)

    def __getitem__(self, key):
        return self._items[key]


def _mean_log_likelihood(a, b) -> tf.Tensor:
    """``LL(a, b)``: the mean over pixels and batch of ``-1/2 log 2 pi - 1/2 (a - b)^2``."""
    a = tf.cast(a, tf.float32)
    per_example_elements = float(np.prod(a.shape[1:]))
    return gaussian_log_likelihood(a, tf.cast(b, tf.float32)) / per_example_elements


class AmbientVAEGANTrainer(Trainer):
    """Trains Ambient VAE-GAN's encoder, decoder and discriminator from lossy images.

    ``train_step`` takes CLEAN ``[0, 1]`` images ``X`` and measures them itself (the original
    did the same: its data were simulated measurements); unsupervised training sees them only
    through ``y = f(X; theta)``, supervised training (``supervised=True``) uses them as the
    target. Metrics: ``e_loss``, ``kl``, ``pixel_ll``, ``feature_ll`` (of the encoder phase),
    ``g_loss``, ``g_adversarial`` (of the generator phase), ``d_loss``, ``d_real``,
    ``d_reconstruction``, ``d_prior`` (of the discriminator phase; the last three are mean
    ``sigmoid(D)``).

    Args:
      networks: the three networks (:meth:`AmbientNetworks.build`).
      measure: the forward model with per-call draws
        (:func:`tfinverse.tasks.ambient.build_measurement`), on the networks' image shape.
      gamma: the pixel target switch (0: ``LL(x~, y)``, default; 1: ``LL(y~, y)``).
      alpha: weight of the pixel term (10).
      beta: weight of the feature term (1).
      l2_weight: weight of ``-L`` in G's loss (1e-6).
      supervised: the original's supervised baseline.
      seed: run seed of every draw.
      name: model name.

    Raises:
      ValueError: an unknown ``gamma``, a measurement of another shape, or a bad seed.
    """

    metric_names = ("e_loss", "kl", "pixel_ll", "feature_ll", "g_loss", "g_adversarial", "d_loss", "d_real",
                    "d_reconstruction", "d_prior")
    optimizer_labels = {"e": "encoder", "g": "generator", "d": "discriminator"}

    def __init__(
        self,
        networks: AmbientNetworks,
        measure: AmbientMeasurement,
        *,
        gamma: int = GAMMA,
        alpha: float = ALPHA,
        beta: float = BETA,
        l2_weight: float = L2_WEIGHT,
        supervised: bool = False,
        seed: int = 0,
        name: str = "ambient_vae_gan_trainer",
    ):
        super().__init__(seed=seed, name=name)
        if int(gamma) not in GAMMA_CHOICES:
            raise ValueError(f"gamma must be one of {GAMMA_CHOICES}, got {gamma!r}")
        if tuple(measure.image_shape) != tuple(networks.config.image_shape) or tuple(measure.out_shape) != tuple(
            networks.config.image_shape
        ):
            raise ValueError(
                f"the measurement maps {tuple(measure.image_shape)} -> {tuple(measure.out_shape)}, the networks "
                f"take {tuple(networks.config.image_shape)} images"
            )
        self.networks_ = networks
        self.ambient_config = networks.config
        self.encoder = networks.encoder
        self.decoder = networks.decoder
        self.discriminator = networks.discriminator
        self.measure = measure
        self.gamma = int(gamma)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.l2_weight = float(l2_weight)
        self.supervised = bool(supervised)
        self.update_schedule = UpdateSchedule(
            (
                Update("encoder", optimizers=("e",)),
                Update("generator", optimizers=("g",)),
                Update("discriminator", optimizers=("d",)),
            )
        )
        # Best-checkpoint state (checkpointed with the regular checkpoints, so --resume keeps it).
        self.best_score = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best_score")
        self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
        self.best = None  # set by configure_best
        self.calibration_y = None  # lossy training images for calibrate_batch_norm
        self.best_history: List[Dict[str, Any]] = []

    # ----------------------------------------------------------------- set-up
    def compile(self, e_optimizer, g_optimizer, d_optimizer, loss_scaling: Optional[bool] = None, **kwargs):
        """Attaches the three optimizers (see :func:`ambient_optimizers`)."""
        super().compile(**kwargs)
        self.attach_optimizers({"e": e_optimizer, "g": g_optimizer, "d": d_optimizer}, loss_scaling)

    def optimizer_variables(self, name: str) -> List[tf.Variable]:
        network = {"e": self.encoder, "g": self.decoder, "d": self.discriminator}[name]
        return list(network.trainable_variables)

    def networks(self) -> Dict[str, keras.Model]:
        """``{"encoder", "decoder", "discriminator"}``."""
        return {"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.discriminator}

    def checkpoint_items(self) -> Dict[str, object]:
        items = super().checkpoint_items()
        items.update(best_score=self.best_score, best_step=self.best_step)
        return items

    def call(self, y, training=False):
        """The enhancer: decoded posterior means of ``[0, 1]`` measurements (batch statistics)."""
        return self.networks_.enhance(y)

    # ----------------------------------------------------------------- randomness
    def _seed(self, purpose: str) -> tf.Tensor:
        seed = step_seed(self.seed, self.step, AMBIENT_SEED_PURPOSES[purpose])
        replica_id, num_replicas = replica_info()
        if num_replicas > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(replica_id, tf.int64), alg="philox")
        return seed

    def _normal(self, purpose: str, rows) -> tf.Tensor:
        shape = tf.stack([tf.cast(rows, tf.int32), tf.constant(self.ambient_config.latent_dim, tf.int32)])
        return tf.random.stateless_normal(shape, self._seed(purpose), alg="philox")

    # ----------------------------------------------------------------- forward pieces (network range)
    def _measure_net(self, x_net, purpose: str) -> tf.Tensor:
        """``f(x; theta_purpose)`` of a network-range batch, back in the network range."""
        x01 = from_network_range(tf.cast(x_net, tf.float32), self.ambient_config)
        return to_network_range(self.measure(x01, self._seed(purpose)), self.ambient_config)

    def _data(self, images):
        """``(X, y, real)`` in the network range: clean, lossy and D's real input."""
        images = tf.cast(self._images(images), tf.float32)
        x_net = to_network_range(images, self.ambient_config)
        y_net = self._measure_net(x_net, "theta_real")
        return x_net, y_net, (x_net if self.supervised else y_net)

    def _images(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        images = tf.convert_to_tensor(data)
        expected = tuple(self.ambient_config.image_shape)
        if images.shape.rank != 4 or any(h is not None and h != w for h, w in zip(images.shape[1:], expected)):
            raise ValueError(f"train_step expects clean images [batch, {expected[0]}, {expected[1]}, {expected[2]}] "
                             f"in [0, 1], got {images.shape}")
        return images

    def _reconstruct(self, y_net, phase: str):
        """``(mu, logvar, x~, y~)`` with this phase's eps (E and G on batch statistics)."""
        mu, logvar = self.encoder(y_net, training=False)
        mu, logvar = tf.cast(mu, tf.float32), tf.cast(logvar, tf.float32)
        eps = self._normal(f"eps_{phase}", tf.shape(mu)[0])
        z = mu + tf.exp(0.5 * logvar) * eps
        x_rec = self.decoder(z, training=False)
        y_rec = x_rec if self.supervised else self._measure_net(x_rec, "theta_reconstruction")
        return mu, logvar, x_rec, y_rec

    def _prior(self, rows, phase: str):
        """``(x_p, y_p)`` of this phase's ``z_p``."""
        x_p = self.decoder(self._normal(f"prior_{phase}", rows), training=False)
        y_p = x_p if self.supervised else self._measure_net(x_p, "theta_prior")
        return x_p, y_p

    def _discriminate(self, images):
        features, logit = self.discriminator(images, training=False)
        return tf.cast(features, tf.float32), tf.cast(logit, tf.float32)

    def _likelihood_terms(self, x_net, y_net, x_rec, y_rec, features_rec, features_real):
        """``(pixel, PL, L)``."""
        if self.supervised:
            pixel = _mean_log_likelihood(x_rec, x_net)
        elif self.gamma == 0:
            pixel = _mean_log_likelihood(x_rec, y_net)
        else:
            pixel = _mean_log_likelihood(y_rec, y_net)
        feature = _mean_log_likelihood(features_rec, features_real)
        return pixel, feature, self.alpha * pixel + self.beta * feature

    # ----------------------------------------------------------------- the three phases
    def phase_encoder(self, data, state):
        """E's update: ``KL - L`` (first of the step)."""
        x_net, y_net, real = self._data(data)
        with tf.GradientTape() as tape:
            mu, logvar, x_rec, y_rec = self._reconstruct(y_net, "encoder")
            features_rec, _ = self._discriminate(y_rec)
            features_real, _ = self._discriminate(real)
            kl = gaussian_kl_divergence(mu, logvar) / float(self.ambient_config.latent_dim)
            pixel, feature, likelihood = self._likelihood_terms(x_net, y_net, x_rec, y_rec, features_rec, features_real)
            e_loss = kl - likelihood
            target = self.gradient_target(self.e_optimizer, e_loss)
        self.apply_gradients(self.e_optimizer, tape, target, self.encoder.trainable_variables)
        return {"e_loss": e_loss, "kl": kl, "pixel_ll": pixel, "feature_ll": feature}

    def phase_generator(self, data, state):
        """G's update: ``CE(D(y_p), 0.375) + CE(D(y~), 0.375) - l2_w L`` (after E's)."""
        x_net, y_net, real = self._data(data)
        with tf.GradientTape() as tape:
            _, _, x_rec, y_rec = self._reconstruct(y_net, "generator")
            _, y_p = self._prior(tf.shape(y_net)[0], "generator")
            features_rec, logit_rec = self._discriminate(y_rec)
            features_real, _ = self._discriminate(real)
            _, logit_p = self._discriminate(y_p)
            _, _, likelihood = self._likelihood_terms(x_net, y_net, x_rec, y_rec, features_rec, features_real)
            adversarial = sigmoid_cross_entropy(logit_p, G_TARGET) + sigmoid_cross_entropy(logit_rec, G_TARGET)
            g_loss = adversarial - self.l2_weight * likelihood
            target = self.gradient_target(self.g_optimizer, g_loss)
        self.apply_gradients(self.g_optimizer, tape, target, self.decoder.trainable_variables)
        return {"g_loss": g_loss, "g_adversarial": adversarial}

    def phase_discriminator(self, data, state):
        """D's update: ``CE(D(y_p), 0) + CE(D(y), 0.75) + CE(D(y~), 0)`` (last of the step)."""
        _, y_net, real = self._data(data)
        # E and G are not updated here: their forward pass stays off the tape.
        _, _, _, y_rec = self._reconstruct(y_net, "discriminator")
        _, y_p = self._prior(tf.shape(y_net)[0], "discriminator")
        with tf.GradientTape() as tape:
            # Three separate calls: each normalises by its own batch's statistics.
            _, logit_rec = self._discriminate(y_rec)
            _, logit_real = self._discriminate(real)
            _, logit_p = self._discriminate(y_p)
            d_loss = (sigmoid_cross_entropy(logit_p, D_FAKE_LABEL) + sigmoid_cross_entropy(logit_real, D_REAL_LABEL)
                      + sigmoid_cross_entropy(logit_rec, D_FAKE_LABEL))
            target = self.gradient_target(self.d_optimizer, d_loss)
        self.apply_gradients(self.d_optimizer, tape, target, self.discriminator.trainable_variables)
        return {
            "d_loss": d_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(logit_real)),
            "d_reconstruction": tf.reduce_mean(tf.sigmoid(logit_rec)),
            "d_prior": tf.reduce_mean(tf.sigmoid(logit_p)),
        }

    # ----------------------------------------------------------------- the enhancer
    def enhance(self, y, sample: bool = False, seed=None, population: bool = False) -> np.ndarray:
        """Estimates of ``[0, 1]`` measurements: decoded posterior means (or samples).

        Args:
          y: ``[n, H, W, C]`` measurements on ``[0, 1]`` coordinates.
          sample: decode a posterior sample (the original's test output) instead of the mean.
          seed: seed of the sample's ``eps`` (required with ``sample``).
          population: normalise by the calibrated moving averages (see
            :meth:`calibrate_batch_norm`) instead of the batch's statistics.

        Returns:
          float32 numpy ``[n, H, W, C]``, clipped to ``[0, 1]``.
        """
        with self.population_statistics(population):
            x = self.networks_.enhance(tf.convert_to_tensor(np.asarray(y, np.float32)), sample=sample, seed=seed)
        return np.clip(np.asarray(tf.cast(x, tf.float32)), 0.0, 1.0)

    @contextlib.contextmanager
    def population_statistics(self, enabled: bool = True):
        """Within the block, E's and G's inference calls use the moving averages (if ``enabled``)."""
        if not enabled:
            yield
            return
        for network in (self.encoder, self.decoder):
            set_batch_statistics(network, False)
        try:
            yield
        finally:
            for network in (self.encoder, self.decoder):
                set_batch_statistics(network, True)

    def calibrate_batch_norm(self, y=None) -> Optional[Dict[str, Any]]:
        """Sets E's and G's moving averages to population statistics of lossy training images.

        E's from ``E(y)`` over all of ``y`` at once; G's from ``G(mu)`` with ``mu`` the posterior
        means under E's new statistics. D's are left alone (never used). Training never reads
        the moving averages, so this does not change the training run.

        Args:
          y: ``[n, H, W, C]`` measurements on ``[0, 1]`` coordinates (default
            ``self.calibration_y``; nothing happens without either).

        Returns:
          ``{"images": n}`` or None.
        """
        from tfinverse.training.batch_norm import recalibrate_batch_norm

        y = self.calibration_y if y is None else y
        if y is None:
            return None
        y_net = to_network_range(tf.convert_to_tensor(np.asarray(y, np.float32)), self.ambient_config)
        recalibrate_batch_norm(self.encoder, [y_net])
        with self.population_statistics(True):
            mu, _ = self.encoder(y_net, training=False)
        recalibrate_batch_norm(self.decoder, [mu])
        return {"images": int(y_net.shape[0])}

    # ----------------------------------------------------------------- best checkpoints
    def configure_best(self, directory, held_out_x, *, criterion: str = "measurement", every: int = 500,
                       seed: int = 0) -> None:
        """Keeps the networks of the best criterion value in ``directory`` (see the module docstring).

        Args:
          directory: folder of the best checkpoint (``ckpt-<step>``, one kept).
          held_out_x: ``[n, H, W, C]`` held-out images in ``[0, 1]``; the ``measurement``
            criterion uses them only through two independent measurements.
          criterion: ``"measurement"`` or ``"clean"``.
          every: evaluation period in steps (the original's 500); also after the last step.
          seed: seed of the held-out measurements (fixed for the whole run).

        Raises:
          ValueError: an unknown criterion or a period < 1.
        """
        if criterion not in BEST_CRITERIA:
            raise ValueError(f"criterion must be one of {BEST_CRITERIA}, got {criterion!r}")
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        x = np.asarray(held_out_x, np.float32)
        first = tf.constant([int(seed), 0x0B57], tf.int64)
        second = tf.constant([int(seed), 0x0B58], tf.int64)
        y1 = np.asarray(self.measure(x, first), np.float32)
        y2 = np.asarray(self.measure(x, second), np.float32)
        from tfinverse.training.checkpointing import variables_by_path

        # The same layout as the regular checkpoints: each network's variables by path.
        checkpoint = tf.train.Checkpoint(**{name: variables_by_path(net) for name, net in self.networks().items()},
                                         step=self.step)
        manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=1)
        self.best = _Settings(criterion=criterion, every=int(every), x=x, y1=y1, y2=y2, second_seed=second,
                              manager=manager)

    def best_criterion_value(self) -> float:
        """The criterion of the current networks on the held-out set (lower is better)."""
        best = self.best
        x_hat = self.networks_.enhance(tf.constant(best["y1"]))
        x_hat = tf.cast(x_hat, tf.float32)
        if best["criterion"] == "clean":
            return float(tf.reduce_mean(tf.square(x_hat - best["x"])))
        predicted = self.measure.linear(x_hat, best["second_seed"])
        return float(tf.reduce_mean(tf.square(tf.cast(predicted, tf.float32) - best["y2"])))

    def evaluate_best(self) -> Optional[Dict[str, Any]]:
        """Evaluates the criterion now and saves the best checkpoint if it improved.

        Returns:
          ``{"step", "value", "saved"}`` or None without :meth:`configure_best`.
        """
        if self.best is None:
            return None
        step = int(self.step.numpy())
        value = self.best_criterion_value()
        saved = math.isfinite(value) and value < float(self.best_score.numpy())
        if saved:
            self.best_score.assign(value)
            self.best_step.assign(step)
            self.calibrate_batch_norm()
            self.best["manager"].save(checkpoint_number=step)
        record = {"step": step, "value": value, "saved": bool(saved)}
        self.best_history.append(record)
        self._dated_scalars.append((step, {f"best/{self.best['criterion']}_criterion": value}))
        return record

    def prepare_step(self, step: int, images_seen: int) -> None:
        if self.best is not None and step > 0 and step % self.best["every"] == 0:
            self.evaluate_best()

    def finish_training(self, batches=None) -> Optional[Dict[str, Any]]:
        """After the last step: the best evaluation due at this step (if any), then E's and G's population statistics."""
        report = {}
        if self.best is not None:
            step = int(self.step.numpy())
            # Only at multiples of `every` (the step the next prepare_step would have evaluated), so that
            # a run stopped and resumed evaluates at the same steps as an uninterrupted one.
            due = step % self.best["every"] == 0 and (not self.best_history or self.best_history[-1]["step"] != step)
            if due or int(self.best_step.numpy()) < 0:  # a run shorter than `every` still gets a best checkpoint
                self.evaluate_best()
            report["best"] = {"criterion": self.best["criterion"], "step": int(self.best_step.numpy()),
                              "value": float(self.best_score.numpy())}
        calibrated = self.calibrate_batch_norm()
        if calibrated:
            report["batch_norm_calibration"] = calibrated
        return report or None

    # ----------------------------------------------------------------- samples
    def set_fixed_samples(self, x, seed: int = 0, count: Optional[int] = None) -> None:
        """Fixed held-out images of the sample grids: clean, lossy (one draw) and prior latents."""
        x = np.asarray(x, np.float32)[:count]
        y = np.asarray(self.measure(x, tf.constant([int(seed), 0x5A3E], tf.int64)), np.float32)
        z = np.random.default_rng([int(seed), 0x5A3D]).standard_normal((len(x), self.ambient_config.latent_dim))
        self.fixed_samples = {"x": x, "y": y, "z": z.astype(np.float32)}

    def sample_grid(self, inputs):
        """Columns: clean, lossy, reconstruction (posterior mean), prior sample."""
        x, y, z = inputs["x"], inputs["y"], inputs["z"]
        reconstruction = self.enhance(y)
        prior = np.clip(np.asarray(tf.cast(self.networks_.decode(tf.constant(z)), tf.float32)), 0.0, 1.0)
        lossy = np.clip(y, 0.0, 1.0)
        columns = ["clean", "lossy", "reconstruction", "prior sample"]
        rows = [[x[i], lossy[i], reconstruction[i], prior[i]] for i in range(len(x))]
        return rows, columns

    #: TensorBoard: ``samples/clean``, ``samples/lossy``, ``samples/reconstruction`` and
    #: ``samples/prior_sample``, each its column of the sample grid tiled.
    sample_summary_by_column = True

    # ----------------------------------------------------------------- export
    def export_enhancer(self, path, overwrite: bool = False, extra_metadata: Optional[Mapping[str, Any]] = None):
        """Writes the enhancer ``y -> x`` (decoded posterior mean, float32 NHWC ``[0, 1]``) as a SavedModel.

        The export normalises by E's and G's moving averages (call :meth:`calibrate_batch_norm`
        first; :meth:`finish_training` does), so every image gets the same output in any batch.
        Load it with :func:`tfinverse.hub.load_image_model`.

        Returns:
          The metadata written.
        """
        from tfinverse import hub

        config = self.ambient_config

        def enhance(y):
            mu, _ = self.encoder(to_network_range(tf.cast(y, tf.float32), config), training=False)
            x = from_network_range(tf.cast(self.decoder(mu, training=False), tf.float32), config)
            return tf.clip_by_value(x, 0.0, 1.0)

        with self.population_statistics(True):
            return hub.export_image_model(
                enhance, str(path), config.image_shape, overwrite=overwrite,
                                extra_metadata={
                    "model": "ambient_vae_gan",
                    "output": "posterior mean",
                    "layout": config.layout,
                    "image_size": config.image_size,
                    "channels": config.channels,
                    "latent_dim": config.latent_dim,
                    "measurement": self.measure.name,
                    "supervised": self.supervised,
                    "batch_norm": "population statistics (calibrate_batch_norm)",
                    **dict(extra_metadata or {}),
                },
            )

    def log_scalars(self) -> Dict[str, float]:
        scalars = super().log_scalars()
        if self.best is not None and self.best_history:
            scalars[f"best/{self.best['criterion']}"] = float(self.best_history[-1]["value"])
        return scalars
