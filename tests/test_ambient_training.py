"""Ambient VAE-GAN's trainer: one step as the original, its draws, batch statistics, resume, export, supervised mode.

Tiny networks (8x8 grey images, the MNIST layout, latent 4, batch 4) so that every test runs
in seconds; the steps run eagerly where values are compared.
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from tfinverse import hub
from tfinverse.models.ambient import AmbientNetworks, to_network_range
from tfinverse.tasks.ambient import AmbientConfig, build_measurement
from tfinverse.training import EpochBatchStream, TrainingCheckpoint, step_seed, train
from tfinverse.training.ambient import AMBIENT_SEED_PURPOSES, AmbientVAEGANTrainer, ambient_optimizers

CONFIG = AmbientConfig(8, 1, 4, "mnist")
BATCH = 4


def build(seed=0, supervised=False, measurement="drop_independent:p=0.5", gamma=0):
    networks = AmbientNetworks.build(CONFIG, seed=seed)
    measure = build_measurement(measurement, CONFIG.image_shape)
    trainer = AmbientVAEGANTrainer(networks, measure, supervised=supervised, gamma=gamma, seed=3)
    trainer.compile(*ambient_optimizers())
    return trainer


def images(n=BATCH, seed=0):
    return np.random.default_rng(seed).random((n, *CONFIG.image_shape)).astype(np.float32)


def factory(epoch):
    data = images(12, seed=7)
    return tf.data.Dataset.from_tensor_slices(data).shuffle(12, seed=epoch).batch(BATCH, drop_remainder=True)


def snapshot(model):
    return [np.array(v) for v in model.trainable_variables]


def changed(before, model):
    return any(not np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.trainable_variables))


def test_schedule_is_encoder_then_generator_then_discriminator_each_updating_only_its_network():
    trainer = build()
    plan = trainer.update_schedule.plan()
    assert plan.phases == (("encoder", 0), ("generator", 0), ("discriminator", 0)) and plan.num_batches == 1
    x = tf.constant(images())
    nets = {"e": trainer.encoder, "g": trainer.decoder, "d": trainer.discriminator}
    for phase, updated in (("encoder", "e"), ("generator", "g"), ("discriminator", "d")):
        before = {k: snapshot(m) for k, m in nets.items()}
        getattr(trainer, f"phase_{phase}")(x, {})
        assert {k for k, m in nets.items() if changed(before[k], m)} == {updated}, phase
    # train_step calls the phases in that order
    calls = []
    for phase in ("encoder", "generator", "discriminator"):
        original = getattr(trainer, f"phase_{phase}")
        setattr(trainer, f"phase_{phase}", (lambda f, p: lambda b, s: (calls.append(p), f(b, s))[1])(original, phase))
    logs = trainer.train_step(x)
    assert calls == ["encoder", "generator", "discriminator"]
    assert int(trainer.step.numpy()) == 1 and all(np.isfinite(float(v)) for v in logs.values())
    # one update each by the phases called above, one each by the step
    assert trainer.optimizer_iterations() == {"encoder": 2, "generator": 2, "discriminator": 2}


@pytest.mark.parametrize("gamma", [0, 1])
def test_encoder_losses_match_an_independent_numpy_computation(gamma):
    trainer = build(gamma=gamma)
    x = images()
    step = trainer.step

    def seed(purpose):
        return step_seed(trainer.seed, step, AMBIENT_SEED_PURPOSES[purpose])

    # The draws of the encoder phase at step 0, made here from the documented seeds.
    y = np.asarray(trainer.measure(x, seed("theta_real")))
    mu, logvar = (np.asarray(t, np.float64) for t in trainer.encoder(y, training=False))
    eps = np.asarray(tf.random.stateless_normal(mu.shape, seed("eps_encoder"), alg="philox"), np.float64)
    z = mu + np.exp(0.5 * logvar) * eps
    x_rec = np.asarray(trainer.decoder(z.astype(np.float32), training=False), np.float64)
    y_rec = np.asarray(trainer.measure(x_rec.astype(np.float32), seed("theta_reconstruction")), np.float64)
    f_rec = np.asarray(trainer.discriminator(y_rec.astype(np.float32), training=False)[0], np.float64)
    f_real = np.asarray(trainer.discriminator(y, training=False)[0], np.float64)

    def ll(a, b):
        return np.mean(-0.5 * math.log(2 * math.pi) - 0.5 * (a - b) ** 2)

    kl = -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar)) / (CONFIG.latent_dim * BATCH)
    pixel = ll(x_rec, y) if gamma == 0 else ll(y_rec, y)
    feature = ll(f_rec, f_real)
    out = trainer.phase_encoder(tf.constant(x), {})
    np.testing.assert_allclose(float(out["kl"]), kl, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(out["pixel_ll"]), pixel, rtol=1e-5)
    np.testing.assert_allclose(float(out["feature_ll"]), feature, rtol=1e-5)
    np.testing.assert_allclose(float(out["e_loss"]), kl - (10.0 * pixel + 1.0 * feature), rtol=1e-5)


def test_three_measurement_draws_per_step_differ_and_change_with_the_step():
    trainer = build(measurement="drop_independent:p=0.5")
    ones = np.ones((BATCH, *CONFIG.image_shape), np.float32)
    masks = {p: np.asarray(trainer.measure.mask(ones, trainer._seed(p)))
             for p in ("theta_real", "theta_reconstruction", "theta_prior")}
    keys = list(masks)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.array_equal(masks[keys[i]], masks[keys[j]])
    trainer.step.assign(1)
    assert not np.array_equal(np.asarray(trainer.measure.mask(ones, trainer._seed("theta_real"))), masks["theta_real"])
    # eps and z_p are fresh in each phase: different purposes
    assert len({AMBIENT_SEED_PURPOSES[f"eps_{p}"] for p in ("encoder", "generator", "discriminator")}) == 3


def test_discriminator_is_called_separately_on_the_three_batches():
    trainer = build()
    seen = []
    original = trainer._discriminate
    trainer._discriminate = lambda batch: (seen.append(int(batch.shape[0])), original(batch))[1]
    trainer.phase_discriminator(tf.constant(images()), {})
    assert seen == [BATCH, BATCH, BATCH]
    # and batch statistics make a separate call differ from the same images inside a bigger batch
    a, b = tf.constant(images(seed=1)), tf.constant(images(seed=2))
    alone = trainer.discriminator(a, training=False)[1]
    joint = trainer.discriminator(tf.concat([a, b], 0), training=False)[1][:BATCH]
    assert not np.allclose(alone, joint)


def test_supervised_mode_shows_the_discriminator_clean_images_and_feeds_the_encoder_lossy_ones():
    trainer = build(supervised=True)
    x = images()
    seen, encoded = [], []
    original = trainer._discriminate
    trainer._discriminate = lambda batch: (seen.append(np.asarray(batch)), original(batch))[1]
    reconstruct = trainer._reconstruct
    trainer._reconstruct = lambda y_net, phase: (encoded.append(np.asarray(y_net)), reconstruct(y_net, phase))[1]
    trainer.phase_discriminator(tf.constant(x), {})
    np.testing.assert_array_equal(seen[1], np.asarray(to_network_range(x, CONFIG)))  # D's real input: clean X
    y = np.asarray(trainer.measure(x, trainer._seed("theta_real")))
    np.testing.assert_allclose(encoded[0], y)  # E still sees the measurement
    # and y~ is x~ itself: what D saw first is in the decoder's range, no dropped pixels
    assert np.count_nonzero(seen[0] == 0) == 0


def test_resumed_run_with_best_checkpoints_equals_an_uninterrupted_one(tmp_path):
    held_out = images(6, seed=9)

    def configured(seed, folder):
        trainer = build(seed=seed)
        trainer.configure_best(folder, held_out, every=2, seed=0)
        trainer.calibration_y = images(8, seed=4)
        return trainer

    straight = configured(0, tmp_path / "best_a")
    train(straight, EpochBatchStream(factory), 5, global_batch_size=BATCH, run_eagerly=True)

    first = configured(0, tmp_path / "best_b")
    stream = EpochBatchStream(factory)
    checkpoint = TrainingCheckpoint(tmp_path / "ckpt", {**first.checkpoint_items(), **stream.checkpoint_items()})
    train(first, stream, 3, global_batch_size=BATCH, run_eagerly=True, checkpoint=checkpoint)
    resumed = configured(7, tmp_path / "best_b")
    stream = EpochBatchStream(factory)
    checkpoint = TrainingCheckpoint(tmp_path / "ckpt", {**resumed.checkpoint_items(), **stream.checkpoint_items()})
    checkpoint.restore_latest()
    stream.reset_iterator()
    train(resumed, stream, 5, global_batch_size=BATCH, run_eagerly=True, checkpoint=checkpoint)
    for name, net in straight.networks().items():
        for a, b in zip(net.weights, resumed.networks()[name].weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{name} {a.path}")
    assert float(straight.best_score.numpy()) == float(resumed.best_score.numpy())
    assert int(straight.best_step.numpy()) == int(resumed.best_step.numpy())
    assert tf.train.latest_checkpoint(str(tmp_path / "best_b")) is not None


def test_best_criteria_measurement_tracks_the_clean_error_without_clean_images():
    trainer = build(measurement="drop_independent:p=0.5")
    x = images(32, seed=5)
    trainer.configure_best("/tmp/unused_best", x, criterion="measurement", every=1)
    best = trainer.best
    # the estimate: perfect vs. a noisy one; the criterion orders them as the clean MSE does
    second = best["second_seed"]
    perfect = np.mean((np.asarray(trainer.measure.linear(x, second)) - best["y2"]) ** 2)
    noisy = x + np.random.default_rng(0).normal(0, 0.2, x.shape).astype(np.float32)
    worse = np.mean((np.asarray(trainer.measure.linear(noisy, second)) - best["y2"]) ** 2)
    assert perfect < 1e-10 < worse
    # unbiased up to the factor 1 / (1 - p) of drop_independent's rescaled mask
    np.testing.assert_allclose(worse, 2.0 * np.mean((noisy - x) ** 2), rtol=0.15)
    value = trainer.best_criterion_value()
    assert np.isfinite(value) and value > 0


def test_export_loads_through_hub_and_matches_the_enhancer(tmp_path):
    trainer = build()
    train(trainer, EpochBatchStream(factory), 2, global_batch_size=BATCH, run_eagerly=True)
    trainer.calibrate_batch_norm(images(16, seed=3))
    trainer.export_enhancer(tmp_path / "enhancer")
    enhancer = hub.load_image_model(str(tmp_path / "enhancer"))
    assert enhancer.metadata["input_shape"] == [8, 8, 1] and enhancer.metadata["extra"]["output"] == "posterior mean"
    y = np.asarray(trainer.measure(images(5, seed=6), 0))
    expected = trainer.enhance(y, population=True)
    np.testing.assert_allclose(enhancer(y).numpy(), expected, atol=1e-5)
    # population statistics: one image alone gets the same output as inside the batch
    np.testing.assert_allclose(enhancer(y[:1]).numpy(), expected[:1], atol=1e-5)
