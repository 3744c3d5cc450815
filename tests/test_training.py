"""GAN trainers, the progressive schedule, the resumable loop and the output-folder policy.

Tiny networks (16x16 or 8x8 grey, a handful of filters, batch 8) keep every test short; the
expected values come from numpy or from the published formulas. Single steps run eagerly
(tracing a GAN step costs seconds); the growing test here, and every run in
tests/test_train_scripts.py, use compiled steps.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfinverse.models import (
    BEGANGenerator,
    DCGANGenerator,
    PGGANDiscriminatorNetwork,
    PGGANGenerator,
    build_began_discriminator,
    build_dcgan_discriminator,
)
from tfinverse.training import (
    BEGANTrainer,
    DCGANTrainer,
    EpochBatchStream,
    OutputFolderError,
    PGGANTrainer,
    ProgressiveSchedule,
    TrainingCheckpoint,
    began_optimizers,
    check_resume_config,
    dcgan_optimizers,
    epoch_seed,
    pggan_optimizers,
    prepare_training_output,
    step_seed,
    tile_images,
    train,
    write_run_config,
)

from tfinverse.training.trainer import SEED_PURPOSES

BATCH = 8


def _real_batch(size, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, (BATCH, size, size, 1)).astype(np.float32)


def _snapshot(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def _dcgan(seed=0, **options):
    generator = DCGANGenerator(resolution=16, channels=1, latent_dim=16, base_filters=8, seed=seed)
    discriminator = build_dcgan_discriminator(16, 1, base_filters=8, seed=seed + 1)
    trainer = DCGANTrainer(generator, discriminator, seed=seed, **options)
    trainer.compile(*dcgan_optimizers())
    return trainer


def _began(k_initial=0.0, lambda_k=1e-3, seed=0):
    generator = BEGANGenerator(resolution=16, channels=1, latent_dim=8, num_filters=8, seed=seed)
    discriminator = build_began_discriminator(16, 1, 8, 8, seed=seed + 1)
    trainer = BEGANTrainer(generator, discriminator, seed=3, k_initial=k_initial, lambda_k=lambda_k)
    trainer.compile(*began_optimizers())
    return trainer


def _pggan(images_per_phase=16, seed=0):
    generator = PGGANGenerator(8, latent_dim=8, channels=1, fmap_base=32, fmap_max=8, seed=seed)
    discriminator = PGGANDiscriminatorNetwork(8, 1, fmap_base=32, fmap_max=8, seed=seed + 1)
    trainer = PGGANTrainer(generator, discriminator, ProgressiveSchedule(2, images_per_phase), seed=0)
    trainer.compile(*pggan_optimizers())
    return trainer


# ----------------------------------------------------------------------------- one step each


def test_dcgan_step_updates_both_networks_with_the_cross_entropy_losses():
    trainer = _dcgan()
    real = _real_batch(16)
    d_vars, g_vars = trainer.discriminator.trainable_variables, trainer.generator.trainable_variables
    d_before, g_before = _snapshot(d_vars), _snapshot(g_vars)
    # Independent reference: -log sigmoid(D(x)) with the weights before the step (batch-norm
    # in training mode normalises by the batch, so this equals the step's own forward pass).
    logits = trainer.discriminator(2.0 * real - 1.0, training=True).numpy().astype(np.float64)
    expected_real_loss = np.mean(np.log1p(np.exp(-logits)))

    logs = {name: float(value) for name, value in trainer.train_step(tf.constant(real)).items()}

    assert all(np.isfinite(list(logs.values())))
    assert logs["d_loss_real"] == pytest.approx(expected_real_loss, rel=1e-5)
    assert logs["d_loss"] == pytest.approx(logs["d_loss_real"] + logs["d_loss_fake"], rel=1e-6)
    assert all(_changed(d_before, d_vars)) and all(_changed(g_before, g_vars))
    # one iteration = one D update and the original's two G updates
    assert int(trainer.step.numpy()) == 1
    assert int(trainer.d_optimizer.iterations.numpy()) == 1
    assert int(trainer.g_optimizer.iterations.numpy()) == 2


def test_dcgan_path_length_is_the_norm_of_the_explicit_jacobian_transpose_times_image_noise():
    weight, decay = 2.0, 0.25
    trainer = _dcgan(path_length_weight=weight, path_length_decay=decay, generator_steps=1)
    real = _real_batch(16)
    # The step's latents and image-space noise, drawn from the trainer's stateless streams.
    latents = trainer.draw_latents("discriminator_latents", BATCH, step=0)
    noise_seed = step_seed(trainer.seed, 0, SEED_PURPOSES["path_length_noise"])
    noise = tf.random.stateless_normal([BATCH, 16, 16, 1], noise_seed, alg="philox").numpy()
    # Independent reference: the explicit Jacobian of the whole batch (batch norm couples the
    # samples) contracted with the noise, J^T y / sqrt(P), P = 256 pixels.
    with tf.GradientTape() as tape:
        tape.watch(latents)
        flat = tf.reshape(trainer.generator.native(latents, training=True), [-1])
    jacobian = tape.jacobian(flat, latents).numpy().astype(np.float64)  # [B * P, B, d]
    lengths = np.linalg.norm(np.einsum("k,kbd->bd", noise.reshape(-1), jacobian) / 16.0, axis=1)
    running_mean = decay * lengths.mean()  # from 0, one update

    g_before = _snapshot(trainer.generator.trainable_variables)
    logs = {name: float(value) for name, value in trainer.train_step(tf.constant(real)).items()}

    assert logs["path_length"] == pytest.approx(lengths.mean(), rel=1e-4)
    assert logs["path_length_penalty"] == pytest.approx(np.mean((lengths - running_mean) ** 2), rel=1e-4)
    assert float(trainer.path_length_mean.numpy()) == pytest.approx(running_mean, rel=1e-4)
    assert "path_length_mean" in trainer.checkpoint_items()
    # The penalty's gradient reaches the weights: the same step without it moves them elsewhere.
    plain = _dcgan(generator_steps=1)
    plain.train_step(tf.constant(real))
    moved_with = [b - v.numpy() for b, v in zip(g_before, trainer.generator.trainable_variables)]
    moved_without = [b - v.numpy() for b, v in zip(g_before, plain.generator.trainable_variables)]
    assert any(not np.allclose(a, b, rtol=0, atol=1e-9) for a, b in zip(moved_with, moved_without))
    assert "path_length" not in plain.metric_names and "path_length_mean" not in plain.checkpoint_items()


def test_dcgan_refuses_a_bad_path_length_setting():
    with pytest.raises(ValueError, match="path_length_weight"):
        _dcgan(path_length_weight=-1.0)
    with pytest.raises(ValueError, match="path_length_decay"):
        _dcgan(path_length_weight=1.0, path_length_decay=0.0)


def test_began_step_moves_k_by_the_proportional_control_law():
    gamma, lambda_k, k0 = 0.5, 0.1, 0.5
    trainer = _began(k_initial=k0, lambda_k=lambda_k)
    real = 2.0 * _real_batch(16) - 1.0
    # Independent references from the weights before the step: the auto-encoder losses.
    loss_real = np.mean(np.abs(real - trainer.discriminator(real).numpy()))
    latents = trainer.draw_latents("generator_latents", BATCH, step=0)
    fake = trainer.generator.native(latents).numpy()
    loss_fake = np.mean(np.abs(fake - trainer.discriminator(fake).numpy()))
    g_before = _snapshot(trainer.generator.trainable_variables)

    logs = {k: float(v) for k, v in trainer.train_step(tf.constant(_real_batch(16))).items()}

    assert logs["loss_real"] == pytest.approx(loss_real, rel=1e-5)
    assert logs["loss_fake"] == pytest.approx(loss_fake, rel=1e-5)
    expected_k = float(np.clip(k0 + lambda_k * (gamma * loss_real - loss_fake), 0.0, 1.0))
    assert float(trainer.k.numpy()) == pytest.approx(expected_k, abs=1e-6)
    assert expected_k != pytest.approx(k0, abs=1e-4)  # the step really moved k
    assert logs["m_global"] == pytest.approx(loss_real + abs(gamma * loss_real - loss_fake), rel=1e-5)
    assert logs["d_loss"] == pytest.approx(loss_real - k0 * loss_fake, rel=1e-5)
    assert all(_changed(g_before, trainer.generator.trainable_variables))
    assert int(trainer.d_optimizer.iterations.numpy()) == int(trainer.g_optimizer.iterations.numpy()) == 1


def test_began_simultaneous_updates_descend_their_own_losses():
    import keras

    trainer = _began(k_initial=0.5)
    trainer.compile(keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3))
    real = 2.0 * _real_batch(16) - 1.0
    latents = trainer.draw_latents("generator_latents", BATCH, step=0)
    generator, discriminator = trainer.generator_network, trainer.discriminator

    def losses():
        fake = trainer.generator.native(latents).numpy()
        loss_real = np.mean(np.abs(real - discriminator(real).numpy()))
        loss_fake = np.mean(np.abs(fake - discriminator(fake).numpy()))
        return loss_real - 0.5 * loss_fake, loss_fake  # L_D with k_t = 0.5, L_G

    d_before, g_before = losses()
    old_g, old_d = generator.get_weights(), discriminator.get_weights()
    trainer.train_step(tf.constant(_real_batch(16)))
    new_g, new_d = generator.get_weights(), discriminator.get_weights()
    generator.set_weights(old_g)  # the critic's step, against the generator it saw
    assert losses()[0] < d_before
    generator.set_weights(new_g)
    discriminator.set_weights(old_d)  # the generator's step, against the critic it saw
    assert losses()[1] < g_before
    discriminator.set_weights(new_d)


def test_latents_depend_only_on_seed_and_step():
    trainer = _began()
    first = trainer.draw_latents("generator_latents", 4, step=5).numpy()
    again = trainer.draw_latents("generator_latents", 4, step=tf.constant(5, tf.int64)).numpy()
    other_step = trainer.draw_latents("generator_latents", 4, step=6).numpy()
    other_purpose = trainer.draw_latents("discriminator_latents", 4, step=5).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other_step) and not np.allclose(first, other_purpose)
    assert first.min() >= -1.0 and first.max() <= 1.0  # BEGAN's U[-1, 1] prior
    expected = tf.random.stateless_uniform([4, 8], step_seed(3, 5, 2), minval=-1.0, maxval=1.0, alg="philox").numpy()
    np.testing.assert_array_equal(first, expected)


def test_pggan_step_is_finite_and_updates_the_active_weights():
    trainer = _pggan()
    trainer.prepare_step(0, 0)
    assert (trainer.level, trainer.alpha) == (0, 1.0)
    g_vars = trainer.generator.trainable_variables  # the 4x4 level's weights
    g_before = _snapshot(g_vars)
    inactive = trainer.generator_network.to_rgb[1].trainable_variables  # the 8x8 output layer
    inactive_before = _snapshot(inactive)
    logs = {k: float(v) for k, v in trainer.train_step(tf.constant(_real_batch(8))).items()}
    assert all(np.isfinite(list(logs.values())))
    assert logs["gradient_penalty"] >= 0.0 and logs["drift"] >= 0.0
    assert all(_changed(g_before, g_vars))
    assert inactive and not any(_changed(inactive_before, inactive))


def test_trainers_refuse_mismatched_inputs():
    trainer = _dcgan()
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        trainer.train_step(tf.zeros([BATCH, 32, 32, 1]))
    with pytest.raises(ValueError, match="discriminator takes images of shape"):
        DCGANTrainer(trainer.generator, build_dcgan_discriminator(32, 1, base_filters=8))
    with pytest.raises(ValueError, match="gamma"):
        BEGANTrainer(_began().generator, build_began_discriminator(16, 1, 8, 8), gamma=1.5)
    with pytest.raises(ValueError, match="progressive"):
        generator = PGGANGenerator.from_original_layout(8, latent_dim=8, channels=1, fmap_base=32, fmap_max=8)
        PGGANTrainer(generator, PGGANDiscriminatorNetwork(8, 1, fmap_base=32, fmap_max=8), ProgressiveSchedule(2, 8))
    with pytest.raises(ValueError, match="levels"):
        PGGANTrainer(_pggan().generator, _pggan().discriminator, ProgressiveSchedule(3, 8))


# ----------------------------------------------------------------------------- growing


def test_progressive_schedule_phases():
    schedule = ProgressiveSchedule(num_levels=3, images_per_phase=100)
    expected = {0: (0, 1.0), 99: (0, 1.0), 100: (1, 0.0), 150: (1, 0.5), 199: (1, 0.99),
                200: (1, 1.0), 299: (1, 1.0), 300: (2, 0.0), 375: (2, 0.75), 500: (2, 1.0), 10**6: (2, 1.0)}
    for images, (level, alpha) in expected.items():
        got = schedule(images)
        assert got[0] == level and got[1] == pytest.approx(alpha), images
    assert schedule.total_images == 500 and schedule.steps_to_complete(16) == 32
    assert ProgressiveSchedule(3, 100, start_level=1)(150) == (2, 0.5)
    with pytest.raises(ValueError, match="images_per_phase"):
        ProgressiveSchedule(3, 0)
    with pytest.raises(ValueError, match="start_level"):
        ProgressiveSchedule(3, 10, start_level=3)


def _event_scalars(log_dir):
    values = {}
    for path in Path(log_dir).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    values.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return values


def test_pggan_grows_a_level_with_a_fading_alpha_and_a_new_compiled_step(tmp_path):
    trainer = _pggan(images_per_phase=16)  # two steps of 8 images per phase
    images = _real_batch(8)
    batches = iter(lambda: tf.constant(images), None)
    writer = tf.summary.create_file_writer(str(tmp_path))
    z = trainer.generator.sample_latent(2, seed=0)
    assert trainer.sample(z).shape == (2, 4, 4, 1)

    summary = train(trainer, batches, 5, global_batch_size=BATCH, log_every=1, writer=writer)
    writer.close()

    seen = [(values["pggan/level"], values["pggan/alpha"]) for _, values in summary.history]
    assert seen == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0)]
    assert summary.traces == 2  # one compiled step per level
    assert trainer.sample(z).shape == (2, 8, 8, 1)
    # moments reset when the 8x8 level started (after step 2): 3 updates since
    assert int(trainer.d_optimizer.iterations.numpy()) == 3
    logged = _event_scalars(tmp_path)
    assert [value for _, value in logged["pggan/alpha"]] == [1.0, 1.0, 0.0, 0.5, 1.0]
    assert [value for _, value in logged["pggan/resolution"]] == [4.0, 4.0, 8.0, 8.0, 8.0]
    assert "learning_rate/generator" in logged and "train/wasserstein" in logged


def test_pggan_reals_are_pooled_and_crossfaded_like_the_generator():
    trainer = _pggan()
    trainer.prepare_step(0, 24)  # level 1, alpha 0.5
    real = 2.0 * _real_batch(8) - 1.0
    faded = trainer.current_reals(tf.constant(real)).numpy()
    pooled = real.reshape(BATCH, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    low = np.repeat(np.repeat(pooled, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(faded, low + 0.5 * (real - low), atol=1e-6)


# ----------------------------------------------------------------------------- resume


def _stream(images):
    def make_dataset(epoch):
        return (
            tf.data.Dataset.from_tensor_slices(images)
            .shuffle(len(images), seed=epoch_seed(7, epoch))
            .batch(BATCH, drop_remainder=True)
        )

    return EpochBatchStream(make_dataset)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    images = np.random.default_rng(1).uniform(size=(2 * BATCH, 16, 16, 1)).astype(np.float32)

    def run(directory, steps, resume):
        trainer = _dcgan()
        stream = _stream(images)
        checkpoint = TrainingCheckpoint(directory, {**trainer.checkpoint_items(), **stream.checkpoint_items()})
        if resume:
            assert checkpoint.restore_latest() is not None
            stream.reset_iterator()
        # eager: cheaper than tracing for a few steps of a tiny model; compiled steps are
        # covered by the growing test and the scripts' runs
        train(trainer, stream, steps, global_batch_size=BATCH, checkpoint=checkpoint, log_every=10, run_eagerly=True)
        return trainer, stream

    # 3 + 2 steps over 2 batches per epoch: the cut and the end fall inside later epochs.
    run(tmp_path / "split", 3, resume=False)
    resumed, resumed_stream = run(tmp_path / "split", 5, resume=True)
    straight, straight_stream = run(tmp_path / "straight", 5, resume=False)

    assert int(resumed.step.numpy()) == int(straight.step.numpy()) == 5
    for name in ("d_optimizer", "g_optimizer"):
        assert int(getattr(resumed, name).iterations.numpy()) == int(getattr(straight, name).iterations.numpy())
    assert int(resumed.g_optimizer.iterations.numpy()) == 10
    assert resumed_stream.position == straight_stream.position == (2, 1)
    for a, b in zip(resumed.generator_network.weights + resumed.discriminator.weights,
                    straight.generator_network.weights + straight.discriminator.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6, err_msg=a.path)
    for a, b in zip(resumed.g_optimizer.variables, straight.g_optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)


@pytest.mark.parametrize("build", [_dcgan, _began, _pggan], ids=["dcgan", "began", "pggan"])
def test_checkpoint_restores_every_weight_and_the_trainer_state(build, tmp_path):
    source, target = build(seed=0), build(seed=10)
    source.step.assign(4)
    if isinstance(source, BEGANTrainer):
        source.k.assign(0.25)
    if isinstance(source, PGGANTrainer):
        source.prepare_step(4, 24)  # 8x8 level, alpha 0.5
    path = TrainingCheckpoint(tmp_path, source.checkpoint_items()).save(4)
    networks = [(source.generator_network, target.generator_network), (source.discriminator, target.discriminator)]
    saved = tf.train.list_variables(path)
    for (network, _), prefix in zip(networks, ("generator/", "discriminator/")):
        assert sum(name.startswith(prefix) for name, _ in saved) == len(network.weights) > 0
    for network, other in networks:  # different initial weights, so the restore is visible
        assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(network.weights, other.weights))
    TrainingCheckpoint(tmp_path, target.checkpoint_items()).restore_latest()
    target.after_restore()
    for network, restored in networks:
        for a, b in zip(network.weights, restored.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(target.step.numpy()) == 4
    if isinstance(source, BEGANTrainer):
        assert float(target.k.numpy()) == 0.25
    if isinstance(source, PGGANTrainer):
        assert (target.level, target.alpha) == (1, 0.5)


def test_checkpoints_are_kept_to_the_requested_depth(tmp_path):
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = TrainingCheckpoint(tmp_path, {"step": step}, max_to_keep=2)
    for value in (1, 2, 3):
        step.assign(value)
        checkpoint.save(value)
    assert [Path(p).name for p in checkpoint.checkpoints] == ["ckpt-2", "ckpt-3"]
    step.assign(0)
    assert checkpoint.restore_latest().endswith("ckpt-3") and int(step.numpy()) == 3
    with pytest.raises(ValueError, match="max_to_keep"):
        TrainingCheckpoint(tmp_path, {"step": step}, max_to_keep=0)


_INTERRUPTED_SAVER = """
import sys, tensorflow as tf
sys.path.insert(0, sys.argv[2])
from tfinverse.training import TrainingCheckpoint
big = tf.Variable(tf.zeros([80_000_000]))  # 320 MB: its write takes long enough to be caught
step = tf.Variable(0, dtype=tf.int64)
checkpoint = TrainingCheckpoint(sys.argv[1], {"step": step, "big": big})
step.assign(1)
checkpoint.save(1)
print("saved", flush=True)
step.assign(2)
checkpoint.save(2)
"""


def test_resume_removes_the_debris_of_a_killed_checkpoint_write(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "checkpoints"
    process = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_SAVER, str(folder), str(Path(__file__).parents[1])],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout.readline().strip() == "saved"
    deadline = time.monotonic() + 60
    while not (folder / "ckpt-2_temp").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    caught = (folder / "ckpt-2_temp").exists()
    os.kill(process.pid, signal.SIGKILL)  # as kill -9 in the middle of the second save
    process.wait()
    if not caught:
        pytest.skip("the second save finished before it could be interrupted")
    # The state file's temporary copy, as an interrupted rename leaves it.
    (folder / ("checkpoint.tmp" + "0123456789abcdef" * 2)).write_text("partial")
    (folder / "notes.txt").write_text("the user's")  # not debris: kept
    assert (folder / "ckpt-2_temp").is_dir()

    step, big = tf.Variable(0, dtype=tf.int64), tf.Variable(tf.ones([80_000_000]))
    restored = TrainingCheckpoint(folder, {"step": step, "big": big}).restore_latest()
    assert restored.endswith("ckpt-1") and int(step.numpy()) == 1 and float(tf.reduce_max(big)) == 0.0
    left = sorted(p.name for p in folder.iterdir())
    assert not any(name.endswith("_temp") or name.startswith("checkpoint.tmp") for name in left), left
    assert {"checkpoint", "ckpt-1.index", "notes.txt"} <= set(left)


def test_batch_stream_reports_a_dataset_smaller_than_a_batch():
    stream = EpochBatchStream(lambda epoch: tf.data.Dataset.from_tensor_slices(np.zeros((3, 2))).batch(4, drop_remainder=True))
    with pytest.raises(ValueError, match="fewer images than one batch"):
        next(stream)


# ----------------------------------------------------------------------------- output policy


def test_output_folder_policy(tmp_path):
    out = tmp_path / "run"
    assert prepare_training_output(out) == out and out.is_dir()
    with pytest.raises(OutputFolderError, match="no checkpoint"):
        prepare_training_output(out, resume=True)
    step = tf.Variable(0, dtype=tf.int64)
    TrainingCheckpoint(out / "checkpoints", {"step": step}).save(5)
    with pytest.raises(OutputFolderError, match="another run.*--resume.*--overwrite"):
        prepare_training_output(out)
    with pytest.raises(OutputFolderError, match="exclude"):
        prepare_training_output(out, resume=True, overwrite=True)
    assert prepare_training_output(out, resume=True) == out
    (out / "notes.txt").write_text("kept")
    prepare_training_output(out, overwrite=True)
    assert not (out / "checkpoints").exists() and (out / "notes.txt").read_text() == "kept"
    other = tmp_path / "other"
    other.mkdir()
    (other / "file.txt").write_text("x")
    with pytest.raises(OutputFolderError, match="--overwrite"):
        prepare_training_output(other)


def test_resume_refuses_changed_settings(tmp_path):
    write_run_config(tmp_path, {"image_size": 16, "steps": 10, "lr": 2e-4})
    assert check_resume_config(tmp_path, {"image_size": 16, "steps": 20, "lr": 2e-4}, may_change=["steps"])["steps"] == 10
    with pytest.raises(OutputFolderError, match=r"--image-size: 16 -> 32"):
        check_resume_config(tmp_path, {"image_size": 32, "steps": 20, "lr": 2e-4}, may_change=["steps"])
    assert json.loads((tmp_path / "checkpoints" / "run_config.json").read_text())["lr"] == 2e-4


def test_tile_images_places_images_row_by_row():
    images = np.arange(5 * 2 * 2 * 1, dtype=np.float32).reshape(5, 2, 2, 1)
    mosaic = tile_images(images)
    assert mosaic.shape == (4, 6, 1)  # 3 columns (ceil sqrt 5), 2 rows
    np.testing.assert_array_equal(mosaic[0:2, 2:4], images[1])
    np.testing.assert_array_equal(mosaic[2:4, 2:4], images[4])
    assert not mosaic[2:4, 4:6].any()
    with pytest.raises(ValueError, match=r"\[n, H, W, C\]"):
        tile_images(np.zeros((2, 2)))


# ----------------------------------------------------------------------------- slow options


@pytest.mark.slow
def test_xla_compiled_step_is_deterministic_and_agrees_where_no_randomness_enters():
    from tfinverse.training import compile_train_step

    real = tf.constant(_real_batch(16))
    plain, jitted, jitted_again = _began(), _began(), _began()
    plain_logs = compile_train_step(plain)(real)
    jitted_logs = compile_train_step(jitted, jit_compile=True)(real)
    again_logs = compile_train_step(jitted_again, jit_compile=True)(real)
    # L_real = |x - D(x)| involves no latent: XLA must compute the same value
    assert float(jitted_logs["loss_real"]) == pytest.approx(float(plain_logs["loss_real"]), rel=1e-5)
    # XLA draws its own (reproducible) latents: a second jitted run repeats the first
    for name in jitted_logs:
        assert np.isfinite(float(jitted_logs[name]))
        assert float(again_logs[name]) == pytest.approx(float(jitted_logs[name]), rel=1e-6)
    for a, b in zip(jitted.generator.trainable_variables, jitted_again.generator.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.slow
def test_mixed_precision_uses_loss_scaling_and_stays_finite():
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        trainer = _dcgan()
        assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer)
        assert trainer.discriminator.layers[0].compute_dtype == "float16"
        logs = tf.function(trainer.train_step)(tf.constant(_real_batch(16)))
        assert all(np.isfinite(float(v)) for v in logs.values())
    finally:
        keras.mixed_precision.set_global_policy(previous)
