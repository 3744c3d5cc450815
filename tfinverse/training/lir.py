"""LIR training: the original's iteration as a declared schedule on the trainer protocol.

One ``train_step`` is one iteration of the original (``train.py`` / ``trainer.py`` of
Wenchao-Du/LIR-for-Unsupervised-IR, ``ORIGINALS.md`` section 3), on one unpaired batch
``(x_a, x_b)`` (A noisy, B clean) shared by every update, as the original's loop does::

    content_discriminator x 3   LSGAN on the content D: codes of noisy images -> 0, clean -> 1,
                                gradients clipped to global norm 5, learning rate / 2
    image_discriminators        LSGAN of dis_a (x_a real, x_ba fake) and dis_b (x_b real,
                                x_ab fake), summed over scales, plus the content-D 0/1 loss:
                                steps dis_a, dis_b AND the content D (as the original)
    generators                  every generator term (below), one step of E_a, S_a, R_a, E_b, C_b

The generator loss (weights of :data:`tfinverse.tasks.lir.LOSS_WEIGHTS`), with ``n1``
(shaped as ``concat(h, s)``) and ``n2`` (shaped as ``h``) standard normal code noise drawn
once for the update and reused in every decode, as the original::

    h_a, s_a, h_b = E_a(x_a), S_a(x_a), E_b(x_b)
    x_a_rec = R_a([h_a, s_a] + n1)    x_b_rec = C_b(h_b + n2)
    x_ba = R_a([h_b, s_a] + n1)       x_ab = C_b(h_a + n2)
    h_b', s', h_a' = E_a(x_ba), S_a(x_ba), E_b(x_ab)
    x_aba = R_a([h_a', s'] + n1)      x_bab = C_b(h_b' + n2)

    L = 1 [LS(dis_a(x_ba), 1) + LS(dis_b(x_ab), 1)]
      + 10 [|x_a_rec - x_a| + |x_b_rec - x_b|] + 0.01 [KL(h_a) + KL(h_b) + KL(s_a)]
      + 10 [|x_aba - x_a| + |x_bab - x_b|] + 0.01 [KL(h_a') + KL(h_b') + KL(s')]
      + 1 [VGG(x_ba, x_b) + VGG(x_ab, x_a)]          (only with VGG19 weights)
      + 5 background(x_ab, x_a, x_ba, x_b)
      + 1 [LS(Dc(h_a), 0.5) + LS(Dc(h_b), 0.5)]

with ``|.|`` the mean absolute difference, ``KL(h) = mean(h^2)`` (UNIT's "KL" of a unit
Gaussian posterior), ``LS(d, t) = mean((d - t)^2)`` summed over the discriminator's scales.

Optimisers (:func:`lir_optimizers`): :class:`CoupledAdam`, Adam with PyTorch's COUPLED
weight decay (``g + 1e-4 w`` enters the moments; Keras' ``AdamW`` decays decoupled) and
PyTorch's placement of epsilon, betas ``(0, 0.9)``, learning rate ``1e-4`` (content D
``5e-5``), each rate halved every 100k steps (set from the step counter at the start of
every step, since the content optimiser steps four times per iteration).

The noisy domain: with a noise model (Gaussian or Poisson, :data:`NOISE_PRESETS`) the
trainer draws the noise of every step from stateless seeds keyed by the run seed and the
step, on the noisy stream's (clean, disjoint) images; without one the noisy stream is used
as it is (precomputed low-dose CT, a folder of really noisy images).

Details the original leaves open, chosen here: the content-D step inside the image-D update
is clipped to norm 5 like the content updates; the image-D update draws its own code noise
(one ``n1``, ``n2`` pair); under a distribution strategy each replica clips its own gradient.
``--precision float16`` is not supported (the clipping would act on loss-scaled gradients).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfinverse.models.lir import LIRNetworks, background_loss, scale_outputs
from tfinverse.tasks import lir as settings
from tfinverse.training.trainer import Trainer, Update, UpdateSchedule, replica_info, step_seed

__all__ = [
    "LIR_SEED_PURPOSES",
    "CoupledAdam",
    "lir_optimizers",
    "lir_schedule",
    "LIRTrainer",
    "pad_to_multiple",
    "RESTORER_METADATA_FILENAME",
    "export_restorer",
]

#: Fold-in tags of the random draws of one LIR step (apart from the GAN trainers' 1-3).
LIR_SEED_PURPOSES = {"noisy_domain": 11, "dis_code_noise": 12, "gen_code_noise": 13}


class CoupledAdam(keras.optimizers.Adam):
    """PyTorch's ``torch.optim.Adam(weight_decay=l2)``: L2 added to the gradient, then Adam.

    ``g <- g + l2 w``; ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` (epsilon added to the
    bias-corrected root, PyTorch's placement; Keras' Adam adds it before the correction).
    Keras' ``AdamW`` / ``weight_decay=`` is decoupled (``w <- w - lr wd w`` outside the
    moments), which is not what the original ran.

    Args:
      learning_rate: step size.
      beta_1: first-moment decay (0 in LIR).
      beta_2: second-moment decay (0.9 in LIR).
      epsilon: PyTorch's default 1e-8.
      l2: coupled weight decay (1e-4 in LIR).
      name: optimiser name.
    """

    def __init__(self, learning_rate=settings.LEARNING_RATE, beta_1=settings.ADAM_BETA_1,
                 beta_2=settings.ADAM_BETA_2, epsilon=1e-8, l2=settings.WEIGHT_DECAY, name="coupled_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype) + ops.cast(self.l2, dtype) * variable
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign(m, beta_1 * m + (1 - beta_1) * gradient)
        self.assign(v, beta_2 * v + (1 - beta_2) * ops.square(gradient))
        denominator = ops.sqrt(v) / ops.sqrt(1 - ops.power(beta_2, step)) + self.epsilon
        self.assign_sub(variable, lr / (1 - ops.power(beta_1, step)) * m / denominator)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def lir_optimizers(learning_rate: float = settings.LEARNING_RATE, l2: float = settings.WEIGHT_DECAY) -> Dict[str, CoupledAdam]:
    """The original's three optimisers by name: ``content`` (rate / 2), ``dis`` and ``gen``.

    Args:
      learning_rate: base rate (1e-4).
      l2: coupled weight decay (1e-4).

    Returns:
      ``{"content": ..., "dis": ..., "gen": ...}``.
    """
    return {
        "content": CoupledAdam(learning_rate * settings.CONTENT_LR_FACTOR, l2=l2, name="content_adam"),
        "dis": CoupledAdam(learning_rate, l2=l2, name="dis_adam"),
        "gen": CoupledAdam(learning_rate, l2=l2, name="gen_adam"),
    }


def lir_schedule(content_updates: int = settings.CONTENT_D_UPDATES) -> UpdateSchedule:
    """``[content_discriminator x 3, image_discriminators, generators]`` on one shared batch."""
    return UpdateSchedule((
        Update("content_discriminator", int(content_updates), optimizers=("content",)),
        Update("image_discriminators", 1, optimizers=("dis", "content")),
        Update("generators", 1, optimizers=("gen",)),
    ))


def pad_to_multiple(images, multiple: int = settings.SIZE_MULTIPLE):
    """Pads ``[N, H, W, C]`` at the bottom and right (symmetric) to multiples of ``multiple``.

    Returns:
      ``(padded, height, width)`` with the original size as scalar tensors.
    """
    images = tf.convert_to_tensor(images)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    # SYMMETRIC needs pad <= size only (REFLECT needs pad < size): any image of >= 3 px works.
    padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
    return padded, height, width


def _l1(a, b):
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


def _kl(code):
    return tf.reduce_mean(tf.square(tf.cast(code, tf.float32)))


def _ls(outputs, target: float):
    """``sum over scales of mean((d - target)^2)`` (UNIT's LSGAN, no 1/2)."""
    return tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32) - target)) for o in scale_outputs(outputs)])


class LIRTrainer(Trainer):
    """Trains the eight LIR networks with the original's iteration (see the module docstring).

    ``train_step`` takes ``(noisy_stream_batch, clean_batch)``: float ``[N, H, W, C]`` in
    [0, 1]; with ``noise`` the first is clean images of the noisy domain's own set that get
    the step's noise, without it the noisy images themselves.

    Metrics: ``content_d_loss`` (last content update), ``d_loss`` (image discriminators),
    ``d_content_loss`` (the content part of the image-D update), ``g_loss`` (total) and
    every weighted term ``g_gan``, ``g_recon_x``, ``g_recon_kl``, ``g_cyc_x``, ``g_cyc_kl``,
    ``g_vgg``, ``g_background``, ``g_content``.

    Args:
      networks: from :func:`tfinverse.models.lir.build_lir_networks`.
      noise: a :class:`tfinverse.operators.noise.NoiseModel` drawn per step on the noisy
        stream, or None (the stream is already noisy).
      perceptual: :func:`tfinverse.models.lir.lir_perceptual_loss` with weights, or None /
        an unavailable loss (the term is off).
      loss_weights: the generator weights (default :data:`tfinverse.tasks.lir.LOSS_WEIGHTS`).
      code_noise_std: standard deviation of the code noise (1).
      content_updates: content-D updates per step (3).
      seed: run seed of every draw.
      name: model name.
    """

    metric_names = ("content_d_loss", "d_loss", "d_content_loss", "g_loss", "g_gan", "g_recon_x", "g_recon_kl",
                    "g_cyc_x", "g_cyc_kl", "g_vgg", "g_background", "g_content")
    optimizer_labels = {"content": "content_discriminator", "dis": "image_discriminators", "gen": "generators"}

    def __init__(self, networks: LIRNetworks, noise=None, perceptual=None,
                 loss_weights: Optional[Mapping[str, float]] = None, code_noise_std: float = settings.CODE_NOISE_STD,
                 content_updates: int = settings.CONTENT_D_UPDATES, seed: int = 0, name: str = "lir_trainer"):
        super().__init__(seed=seed, name=name)
        if not isinstance(networks, LIRNetworks):
            raise TypeError(f"networks must be LIRNetworks, got {type(networks).__name__}")
        self.nets = networks
        # Attributes, so that Keras tracks every network's weights as the trainer's.
        for key, net in self.networks().items():
            setattr(self, key, net)
        self.noise = noise
        self.perceptual = perceptual if perceptual is not None and getattr(perceptual, "available", False) else None
        weights = dict(settings.LOSS_WEIGHTS)
        weights.update(dict(loss_weights or {}))
        unknown = sorted(set(weights) - set(settings.LOSS_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown LIR loss weights {unknown}; known: {sorted(settings.LOSS_WEIGHTS)}")
        self.loss_weights = {key: float(value) for key, value in weights.items()}
        self.code_noise_std = float(code_noise_std)
        self.update_schedule = lir_schedule(content_updates)
        self.base_learning_rates: Dict[str, float] = {}
        self.evaluation: Optional[SimpleNamespace] = None
        self.evaluation_history: List[Dict[str, float]] = []

    # ----------------------------------------------------------------- set-up
    def compile(self, optimizers: Optional[Mapping[str, keras.optimizers.Optimizer]] = None, **kwargs):
        """Attaches the ``content``, ``dis`` and ``gen`` optimisers (default :func:`lir_optimizers`).

        Raises:
          ValueError: under ``mixed_float16`` (see the module docstring).
        """
        if keras.mixed_precision.global_policy().compute_dtype == "float16":
            raise ValueError("LIR training does not support float16 (loss scaling vs gradient clipping); use bfloat16")
        super().compile(**kwargs)
        self.attach_optimizers(dict(optimizers or lir_optimizers()), loss_scaling=False)
        self.base_learning_rates = {name: float(np.asarray(opt.learning_rate)) for name, opt in self.named_optimizers.items()}

    def networks(self) -> Dict[str, keras.Model]:
        nets = self.nets
        return {"enc_cont_a": nets.enc_cont_a, "enc_noise_a": nets.enc_noise_a, "dec_recs_a": nets.dec_recs_a,
                "enc_cont_b": nets.enc_cont_b, "dec_cont_b": nets.dec_cont_b, "dis_a": nets.dis_a,
                "dis_b": nets.dis_b, "dis_content": nets.dis_content}

    def optimizer_variables(self, name: str) -> List[tf.Variable]:
        nets = self.nets
        if name == "content":
            return list(nets.dis_content.trainable_variables)
        if name == "dis":
            return [v for net in nets.image_discriminators for v in net.trainable_variables]
        if name == "gen":
            return [v for net in nets.generators for v in net.trainable_variables]
        raise KeyError(f"LIR has optimisers content, dis, gen; not {name!r}")

    @property
    def perceptual_active(self) -> bool:
        """Whether the VGG term is part of the generator loss."""
        return self.perceptual is not None

    # ----------------------------------------------------------------- the step
    def learning_rate_factor(self, step=None):
        """``LR_GAMMA ** (step // LR_STEP_SIZE)`` as a float32 tensor."""
        step = self.step if step is None else step
        exponent = tf.cast(tf.cast(step, tf.int64) // settings.LR_STEP_SIZE, tf.float32)
        return tf.pow(tf.constant(settings.LR_GAMMA, tf.float32), exponent)

    def train_step(self, data):
        # The step schedule: every rate from the step counter (the content optimiser steps 4x).
        self.require_compiled()
        factor = self.learning_rate_factor()
        for name, optimizer in self.named_optimizers.items():
            optimizer.learning_rate = self.base_learning_rates[name] * factor
        return super().train_step(data)

    def split_batches(self, data, plan):
        if plan.num_batches == 1:
            return [data]
        return super().split_batches(data, plan)

    def domains(self, batch, state) -> tuple:
        """``(x_a, x_b)`` of the step: the noisy images (noise drawn once per step) and the clean."""
        if "x_a" not in state:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError("LIR's train_step takes a pair (noisy-domain batch, clean batch)")
            x_a = tf.cast(batch[0], tf.float32)
            if self.noise is not None:
                x_a = self.noise(x_a, step_seed(self.seed, self.step, LIR_SEED_PURPOSES["noisy_domain"]))
            state["x_a"], state["x_b"] = x_a, tf.cast(batch[1], tf.float32)
        return state["x_a"], state["x_b"]

    def code_noise(self, purpose: str, content_code) -> tuple:
        """``(n1, n2)``: standard normal noise shaped as ``concat(h, s)`` and as ``h``."""
        shape = tf.shape(content_code)
        replica_id, _ = replica_info()
        seed = step_seed(self.seed, self.step, LIR_SEED_PURPOSES[purpose])
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(replica_id, tf.int64), alg="philox")
        n1 = tf.random.stateless_normal(tf.concat([shape[:-1], 2 * shape[-1:]], 0), seed, alg="philox")
        n2 = tf.random.stateless_normal(shape, tf.random.experimental.stateless_fold_in(seed, 1, alg="philox"), alg="philox")
        dtype = content_code.dtype
        return tf.cast(self.code_noise_std * n1, dtype), tf.cast(self.code_noise_std * n2, dtype)

    def _content_d_loss(self, h_a, h_b):
        dis = self.nets.dis_content
        return (_ls(dis(h_a, training=True), settings.CONTENT_NOISY_TARGET)
                + _ls(dis(h_b, training=True), settings.CONTENT_CLEAN_TARGET))

    @staticmethod
    def _clipped(gradients):
        """PyTorch's ``clip_grad_norm_(..., 5)``: one global norm over all the content D's gradients."""
        clipped, _ = tf.clip_by_global_norm(list(gradients), settings.CONTENT_GRAD_CLIP_NORM)
        return clipped

    def phase_content_discriminator(self, batch, state):
        """One content-D update: noisy codes -> 0, clean -> 1, clipped to norm 5."""
        x_a, x_b = self.domains(batch, state)
        nets = self.nets
        h_a = nets.enc_cont_a(x_a, training=True)
        h_b = nets.enc_cont_b(x_b, training=True)
        variables = nets.dis_content.trainable_variables
        with tf.GradientTape() as tape:
            loss = self._content_d_loss(tf.stop_gradient(h_a), tf.stop_gradient(h_b))
            target = self.gradient_target(self.content_optimizer, loss)
        gradients = self._clipped(tape.gradient(target, variables))
        self.content_optimizer.apply(gradients, variables)
        return {"content_d_loss": loss}

    def phase_image_discriminators(self, batch, state):
        """dis_a, dis_b on real vs translated images, and the content D again (0/1)."""
        x_a, x_b = self.domains(batch, state)
        nets = self.nets
        h_a = nets.enc_cont_a(x_a, training=True)
        s_a = nets.enc_noise_a(x_a, training=True)
        h_b = nets.enc_cont_b(x_b, training=True)
        n1, n2 = self.code_noise("dis_code_noise", h_a)
        x_ba = tf.stop_gradient(nets.dec_recs_a(tf.concat([h_b, s_a], -1) + n1, training=True))
        x_ab = tf.stop_gradient(nets.dec_cont_b(h_a + n2, training=True))
        h_a, h_b = tf.stop_gradient(h_a), tf.stop_gradient(h_b)
        image_variables = self.optimizer_variables("dis")
        content_variables = nets.dis_content.trainable_variables
        gan_w = self.loss_weights["gan"]
        with tf.GradientTape(persistent=True) as tape:
            d_loss = gan_w * (_ls(nets.dis_a(x_ba, training=True), settings.LSGAN_FAKE)
                              + _ls(nets.dis_a(x_a, training=True), settings.LSGAN_REAL)
                              + _ls(nets.dis_b(x_ab, training=True), settings.LSGAN_FAKE)
                              + _ls(nets.dis_b(x_b, training=True), settings.LSGAN_REAL))
            content_loss = self._content_d_loss(h_a, h_b)
            d_target = self.gradient_target(self.dis_optimizer, d_loss)
            c_target = self.gradient_target(self.content_optimizer, content_loss)
        self.dis_optimizer.apply(tape.gradient(d_target, image_variables), image_variables)
        self.content_optimizer.apply(self._clipped(tape.gradient(c_target, content_variables)), content_variables)
        del tape
        return {"d_loss": d_loss, "d_content_loss": content_loss}

    def generator_terms(self, x_a, x_b, n1=None, n2=None) -> Dict[str, tf.Tensor]:
        """The weighted generator terms (float32 scalars).

        Args:
          x_a: noisy images (the step's noise already added).
          x_b: clean images.
          n1, n2: the code noise (default: the step's draw, :meth:`code_noise`).
        """
        nets, w = self.nets, self.loss_weights
        h_a = nets.enc_cont_a(x_a, training=True)
        s_a = nets.enc_noise_a(x_a, training=True)
        h_b = nets.enc_cont_b(x_b, training=True)
        if n1 is None or n2 is None:
            n1, n2 = self.code_noise("gen_code_noise", h_a)  # drawn once, reused in every decode
        n1, n2 = tf.cast(n1, h_a.dtype), tf.cast(n2, h_a.dtype)
        x_a_rec = nets.dec_recs_a(tf.concat([h_a, s_a], -1) + n1, training=True)
        x_b_rec = nets.dec_cont_b(h_b + n2, training=True)
        x_ba = nets.dec_recs_a(tf.concat([h_b, s_a], -1) + n1, training=True)
        x_ab = nets.dec_cont_b(h_a + n2, training=True)
        h_b_re = nets.enc_cont_a(x_ba, training=True)
        s_re = nets.enc_noise_a(x_ba, training=True)
        h_a_re = nets.enc_cont_b(x_ab, training=True)
        x_aba = nets.dec_recs_a(tf.concat([h_a_re, s_re], -1) + n1, training=True)
        x_bab = nets.dec_cont_b(h_b_re + n2, training=True)
        terms = {
            "g_gan": w["gan"] * (_ls(nets.dis_a(x_ba, training=True), settings.LSGAN_GENERATOR_TARGET)
                                 + _ls(nets.dis_b(x_ab, training=True), settings.LSGAN_GENERATOR_TARGET)),
            "g_recon_x": w["recon_x"] * (_l1(x_a_rec, x_a) + _l1(x_b_rec, x_b)),
            "g_recon_kl": w["recon_kl"] * (_kl(h_a) + _kl(h_b) + _kl(s_a)),
            "g_cyc_x": w["recon_x_cyc"] * (_l1(x_aba, x_a) + _l1(x_bab, x_b)),
            "g_cyc_kl": w["recon_kl_cyc"] * (_kl(h_a_re) + _kl(h_b_re) + _kl(s_re)),
            "g_background": w["background"] * background_loss(tf.cast(x_ab, tf.float32), x_a,
                                                              tf.cast(x_ba, tf.float32), x_b),
            "g_content": w["content"] * (
                _ls(nets.dis_content(h_a, training=True), settings.CONTENT_GENERATOR_TARGET)
                + _ls(nets.dis_content(h_b, training=True), settings.CONTENT_GENERATOR_TARGET)),
        }
        if self.perceptual is not None:
            terms["g_vgg"] = w["vgg"] * (self.perceptual(x_ba, x_b) + self.perceptual(x_ab, x_a))
        else:
            terms["g_vgg"] = tf.constant(0.0, tf.float32)
        return terms

    def phase_generators(self, batch, state):
        """One step of E_a, S_a, R_a, E_b, C_b on every weighted term."""
        x_a, x_b = self.domains(batch, state)
        variables = self.optimizer_variables("gen")
        with tf.GradientTape() as tape:
            terms = self.generator_terms(x_a, x_b)
            total = tf.add_n(list(terms.values()))
            target = self.gradient_target(self.gen_optimizer, total)
        self.apply_gradients(self.gen_optimizer, tape, target, variables)
        return {"g_loss": total, **terms}

    # ----------------------------------------------------------------- inference
    def call(self, noisy, training=False):
        """The restorer ``C_b(E_a(x))`` (unclipped; ``H, W`` multiples of 4)."""
        return self.nets.restore(noisy, training=training)

    def restore_images(self, noisy) -> np.ndarray:
        """Restored images of any size: padded to a multiple of 4, cropped back, clipped to [0, 1].

        Args:
          noisy: ``[N, H, W, C]`` in [0, 1].

        Returns:
          float32 numpy ``[N, H, W, C]``.
        """
        padded, height, width = pad_to_multiple(tf.cast(noisy, tf.float32))
        restored = tf.cast(self.nets.restore(padded, training=False), tf.float32)[:, :height, :width]
        return np.clip(np.asarray(restored), 0.0, 1.0)

    # ----------------------------------------------------------------- held-out evaluation
    def configure_evaluation(self, noisy: Sequence[np.ndarray], clean: Sequence[np.ndarray], every: int,
                             ct: bool = False) -> None:
        """Scores the restorer on held-out pairs every ``every`` steps (TensorBoard ``eval/...``).

        Monitoring only: nothing is selected by it, so the method stays unsupervised. The
        scores are :func:`tfinverse.evaluation.lir.restoration_scores` averaged over the
        images (``eval/psnr``, ``eval/ssim`` in the original's convention); the noisy input's
        own scores are written once, at step 0, as ``eval/psnr_noisy_input`` and
        ``eval/ssim_noisy_input``.

        Args:
          noisy: ``[H, W, C]`` noisy images in [0, 1] (sizes may differ).
          clean: their clean references.
          every: evaluate at every multiple of this step (and after the last step).
          ct: CT slices (the CT metric convention).

        Raises:
          ValueError: ``every`` < 1, no images, or the two lists differ in length or shapes.
        """
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        noisy = [np.asarray(image, np.float32) for image in noisy]
        clean = [np.asarray(image, np.float32) for image in clean]
        if not noisy or len(noisy) != len(clean) or any(a.shape != b.shape or a.ndim != 3 for a, b in zip(noisy, clean)):
            raise ValueError("evaluation needs equally many noisy and clean [H, W, C] images of matching shapes")
        # a plain record, not a dict, which Keras would wrap and track as model state
        self.evaluation = SimpleNamespace(noisy=noisy, clean=clean, every=int(every), ct=bool(ct), input_logged=False)
        self.evaluation_history = []

    def evaluate_held_out(self) -> Dict[str, float]:
        """Scores the current restorer on the configured pairs now; appends to the history.

        Returns:
          ``{"step", "psnr", "ssim"}`` (means over the images, the original's convention).
        """
        from tfinverse.evaluation.lir import restoration_scores

        config = self.evaluation
        if config is None:
            raise ValueError("call configure_evaluation first")
        step = int(self.step.numpy())

        def mean_scores(estimates):
            values = [restoration_scores(e, c, config.ct) for e, c in zip(estimates, config.clean)]
            return (float(np.mean([v["psnr_original"] for v in values])),
                    float(np.mean([v["ssim_original"] for v in values])))

        if not config.input_logged:
            psnr, ssim = mean_scores(config.noisy)
            self._dated_scalars.append((0, {"eval/psnr_noisy_input": psnr, "eval/ssim_noisy_input": ssim}))
            config.input_logged = True
        psnr, ssim = mean_scores([self.restore_images(image[None])[0] for image in config.noisy])
        record = {"step": step, "psnr": psnr, "ssim": ssim}
        self.evaluation_history.append(record)
        self._dated_scalars.append((step, {"eval/psnr": psnr, "eval/ssim": ssim}))
        return record

    def prepare_step(self, step: int, images_seen: int) -> None:
        if self.evaluation is not None and step > 0 and step % self.evaluation.every == 0:
            self.evaluate_held_out()

    def finish_training(self, batches=None) -> None:
        """After the last step: the held-out evaluation of the final networks (if configured).

        Returns None: evaluating changes no state, so the final checkpoint is not rewritten.
        """
        if self.evaluation is None:
            return None
        step = int(self.step.numpy())
        if not self.evaluation_history or self.evaluation_history[-1]["step"] != step:
            self.evaluate_held_out()
        return None

    def log_scalars(self) -> Dict[str, float]:
        self.require_compiled()
        factor = float(self.learning_rate_factor())
        return {f"learning_rate/{self.optimizer_labels[name]}": float(str(np.float32(base * factor)))
                for name, base in self.base_learning_rates.items()}

    # ----------------------------------------------------------------- samples
    def fixed_sample_inputs(self, count: int, seed: int):
        """``{"noisy": [n, H, W, C], "clean": [n, H, W, C] or None}`` (``self.fixed_samples``)."""
        if self.fixed_samples is None:
            raise ValueError("LIRTrainer needs fixed sample inputs: set trainer.fixed_samples = {'noisy': ..., 'clean': ...}")
        return self.fixed_samples

    #: TensorBoard: ``samples/noisy``, ``samples/restored`` and ``samples/clean``.
    sample_summary_by_column = True

    def sample_grid(self, inputs):
        """Rows ``noisy | restored | clean`` (clean left out when unknown)."""
        noisy = np.asarray(inputs["noisy"], np.float32)
        restored = self.restore_images(noisy)
        clean = inputs.get("clean")
        columns = [np.clip(noisy, 0, 1), restored] + ([np.asarray(clean, np.float32)] if clean is not None else [])
        labels = ["noisy", "restored"] + (["clean"] if clean is not None else [])
        return [[column[i] for column in columns] for i in range(len(noisy))], labels

    def describe_schedule(self) -> Dict[str, Any]:
        return {**super().describe_schedule(), "perceptual_term": self.perceptual_active,
                "noise": None if self.noise is None else {"name": self.noise.name, **self.noise.get_config()}}


# ----------------------------------------------------------------------------- export
RESTORER_METADATA_FILENAME = "tfinverse_restorer.json"
RESTORER_FORMAT_NAME = "tfinverse.restorer"


class _RestorerRoot(tf.Module):
    variables = None
    trainable_variables = None


def export_restorer(networks: LIRNetworks, path, channels: int, overwrite: bool = False,
                    extra_metadata: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Writes LIR's restorer ``noisy -> clean`` as a SavedModel that takes any image size.

    Signature ``default``: input ``y`` float32 ``[None, None, None, channels]`` in [0, 1] ->
    output ``default`` of the same shape in [0, 1]: the input is padded (symmetric, bottom
    and right) to a multiple of 4, restored by ``C_b(E_a(.))`` in inference mode, cropped
    back to the input size and clipped to [0, 1] (never the original's per-image min-max
    stretch). ``obj(y)`` calls the same function. The description is in
    ``assets/tfinverse_restorer.json``; :func:`tfinverse.hub.load_restorer` reads it back.

    Args:
      networks: the trained networks.
      path: target directory (written atomically, as :func:`tfinverse.hub.export_generator`).
      channels: image channels.
      overwrite: replace an existing directory.
      extra_metadata: JSON-able settings stored under ``"extra"`` (noise, width, steps...).

    Returns:
      The metadata written.
    """
    import os

    from tfinverse import __version__
    from tfinverse.hub import _jsonable, save_with_metadata

    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists; pass overwrite=True to replace it")
    spec = tf.TensorSpec([None, None, None, int(channels)], tf.float32, name="y")

    @tf.function(input_signature=[spec])
    def restore(y):
        padded, height, width = pad_to_multiple(y)
        out = tf.cast(networks.restore(padded, training=False), tf.float32)[:, :height, :width, :]
        return tf.clip_by_value(out, 0.0, 1.0)

    @tf.function(input_signature=[spec])
    def default_signature(y):
        return {"default": restore(y)}

    concrete = default_signature.get_concrete_function()
    variables = list({id(v): v for v in concrete.variables}.values())
    metadata = {
        "format": RESTORER_FORMAT_NAME,
        "format_version": 1,
        "channels": int(channels),
        "size_multiple": settings.SIZE_MULTIPLE,
        "value_range": [0.0, 1.0],
        "signature": "default",
        "input_name": "y",
        "tfinverse_version": __version__,
        "tensorflow_version": tf.__version__,
        "extra": _jsonable(dict(extra_metadata or {}), "extra_metadata"),
    }
    root = _RestorerRoot()
    root.variables = variables
    root.trainable_variables = [v for v in variables if v.trainable]
    root.__call__ = restore
    save_with_metadata(root, path, metadata, RESTORER_METADATA_FILENAME, {"default": concrete}, overwrite)
    return metadata
