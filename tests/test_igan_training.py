"""igan training: losses against closed forms, the dual mapping and paired loss on hand-made
networks, one update per GAN model, the mm schedule, checkpoints and resumption."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse.models import igan as models
from tfinverse.training import igan as training
from tfinverse.training.checkpointing import TrainingCheckpoint
from tfinverse.training.loop import train

SIZE = 4  # hand-made networks work on 4x4x1 images


def softplus(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0)


def ce(logits, label):
    """Mean sigmoid cross-entropy in numpy: label 1 -> softplus(-l), label 0 -> softplus(l)."""
    logits = np.asarray(logits, np.float64)
    return float(np.mean(softplus(-logits) if label == 1 else softplus(logits)))


# ----------------------------------------------------------------------------- hand-made networks
def scaling_estimator(factor=0.25):
    """Z = factor * Y (a fixed 1x1 conv)."""
    y = keras.Input((SIZE, SIZE, 1))
    z = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=keras.initializers.Constant(factor))(y)
    return models.IganEstimator(keras.Model(y, z))


def summing_discriminator(weight, name):
    """D(x) = weight * sum(x)."""
    x = keras.Input((SIZE, SIZE, 1))
    flat = keras.layers.Flatten()(x)
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(weight))(flat)
    return keras.Model(x, logit, name=name)


def hand_made_batch(seed=0, batch=3, with_x3=True):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, SIZE, SIZE, 1)).astype(np.float32)
    component = rng.random((batch, SIZE, SIZE, 1)).astype(np.float32)
    y = (x + component - 0.6).astype(np.float32)  # some negative pixels, so the clip matters
    x2 = rng.random((batch, SIZE, SIZE, 1)).astype(np.float32)
    x3 = rng.random((batch, SIZE, SIZE, 1)).astype(np.float32)
    batch = {"y": y, "x": x, "component": component, "x2": x2}
    if with_x3:
        batch["x3"] = x3
    return batch


def dual_mapping_sample(batch, paired):
    """The clean batch the dual mapping adds the estimated component to."""
    if paired:
        return batch["x2"]
    if "x3" in batch:
        return batch["x3"]  # drawn independently of D1's real batch x2, as in the original
    return np.roll(batch["x2"], 1, axis=0)  # a user's batch without x3: another row of x2


def batch_stream(seed=0, batch=3):
    def gen():
        step = 0
        while True:
            yield hand_made_batch(seed * 1000 + step, batch)
            step += 1

    spec = tf.TensorSpec([batch, SIZE, SIZE, 1], tf.float32)
    return tf.data.Dataset.from_generator(gen, output_signature={k: spec for k in ("y", "x", "component", "x2", "x3")})


def small_real_igan(gan_model="vanilla", dual_mapping=True, seed=0, channels=1):
    """The real layouts at 16x16 with narrow layers (fast)."""
    estimator = models.IganEstimator(
        models.build_igan_estimator(16, channels, add_input_mean=True, extra_convs=True, filters=8, seed=seed)
    )
    d1 = models.build_igan_discriminator(16, channels, filters=(4, 8, 8, 8), seed=seed + 1, name="d1")
    d2 = models.build_igan_discriminator(16, channels, filters=(4, 8, 8, 8), seed=seed + 2, name="d2")
    model = training.IGAN(estimator, d1, d2 if dual_mapping else None, dual_mapping=dual_mapping)
    model.compile(gan_model=gan_model)
    return model


def real_batch(seed=0, batch=2, channels=1):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 16, 16, channels)).astype(np.float32)
    component = rng.random((batch, 16, 16, channels)).astype(np.float32)
    return {"y": x + component, "x": x, "component": component, "x2": rng.random(x.shape).astype(np.float32)}


def weights(variables):
    return [np.array(v.numpy()) for v in variables]


# ----------------------------------------------------------------------------- losses
def test_losses_match_closed_forms():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(8, 1)), rng.normal(size=(8, 1))
    assert float(training.discriminator_loss("vanilla", real, fake)) == pytest.approx(ce(real, 1) + ce(fake, 0), rel=1e-5)
    assert float(training.discriminator_loss("ls", real, fake)) == pytest.approx(
        0.5 * (np.mean((real - 1) ** 2) + np.mean(fake**2)), rel=1e-5)
    assert float(training.discriminator_loss("wgan", real, fake)) == pytest.approx(
        -(real.mean() - fake.mean()), rel=1e-5, abs=1e-6)
    assert float(training.generator_loss_term("vanilla", fake)) == pytest.approx(ce(fake, 1), rel=1e-5)
    assert float(training.generator_loss_term("ls", fake)) == pytest.approx(0.5 * np.mean((fake - 1) ** 2), rel=1e-5)
    assert float(training.generator_loss_term("W_GAN", fake)) == pytest.approx(-fake.mean(), rel=1e-5, abs=1e-6)


def test_gan_model_names_and_default_optimizers():
    assert training.canonical_gan_model("Vanilla_GAN") == "vanilla"
    assert training.canonical_gan_model("LS_GAN") == "ls"
    with pytest.raises(ValueError, match="vanilla, ls, wgan"):
        training.canonical_gan_model("hinge")
    for gan_model, (g_rate, d_rate) in {"vanilla": (5e-5, 5e-6), "ls": (5e-5, 5e-5), "wgan": (5e-5, 5e-6)}.items():
        g, d1, d2 = training.igan_optimizers(gan_model)
        assert float(g.learning_rate) == pytest.approx(g_rate) and float(d1.learning_rate) == pytest.approx(d_rate)
        assert float(d2.learning_rate) == pytest.approx(d_rate) and d1 is not d2
        if gan_model == "wgan":
            assert isinstance(g, training.TF1RMSprop) and g.epsilon == 1e-10 and g.rho == 0.9
        else:
            assert isinstance(g, keras.optimizers.Adam) and g.epsilon == 1e-8 and g.beta_1 == 0.9
    assert training.D_THRESHOLDS == {"vanilla": 0.5, "ls": 0.1, "wgan": -5.0}


def test_tf1_rmsprop_starts_its_accumulator_at_one():
    variable = tf.Variable([1.0, -2.0])
    gradient = tf.constant([0.5, 3.0])
    optimizer = training.TF1RMSprop(0.1, rho=0.9, epsilon=1e-10)
    optimizer.apply([gradient], [variable])
    ms = 0.9 * 1.0 + 0.1 * gradient.numpy() ** 2  # TF1: ms starts at one
    expected = np.array([1.0, -2.0]) - 0.1 * gradient.numpy() / np.sqrt(ms + 1e-10)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
    keras_variable = tf.Variable([1.0, -2.0])
    keras.optimizers.RMSprop(0.1, rho=0.9, epsilon=1e-10).apply([gradient], [keras_variable])
    assert not np.allclose(keras_variable.numpy(), expected)


def test_paired_loss_on_a_hand_made_example():
    x_gen = np.array([[0.5, 1.0], [0.0, 0.25]], np.float32)
    x1 = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    y = np.array([[1.0, 1.5], [0.5, 0.5]], np.float32)  # y - x1 = [[1, .5], [0, .25]]
    assert float(training.paired_loss(x_gen, x1, y)) == pytest.approx(1000 * (0.5 + 0 + 0.5 + 0) / 4)
    # other assignment: |x_gen - (y - x1)| = [.5, .5, 0, 0] -> also 250; make it smaller:
    x_gen2 = np.array([[1.0, 0.5], [0.0, 0.25]], np.float32)
    direct = 1000 * np.mean(np.abs(x_gen2 - x1))  # 1000 * (1 + .5 + .5 + 0) / 4 = 500
    swapped = 1000 * np.mean(np.abs(x_gen2 - (y - x1)))  # 0
    assert float(training.paired_loss(x_gen2, x1, y)) == pytest.approx(direct)
    assert float(training.paired_loss(x_gen2, x1, y, min_over_permutations=True)) == pytest.approx(min(direct, swapped))
    assert swapped == 0 and direct == 500


# ----------------------------------------------------------------------------- the game on hand-made networks
@pytest.mark.parametrize("paired, with_x3", [(False, True), (False, False), (True, True)])
def test_generator_step_computes_the_original_losses(paired, with_x3):
    batch = hand_made_batch(1, with_x3=with_x3)
    model = training.IGAN(
        scaling_estimator(), summing_discriminator(0.1, "d1"), summing_discriminator(-0.05, "d2"),
        paired=paired, paired_loss_min_over_permutations=True,
    )
    model.compile(gan_model="ls")
    y, x = batch["y"], batch["x"]
    z = 0.25 * y
    x_gen = np.maximum(y - z, 0)  # X_gen = clip(Y - Z, 0, inf)
    x_dual = dual_mapping_sample(batch, paired)
    y_gen = x_dual + z  # random dual mapping
    d1_fake = 0.1 * x_gen.sum(axis=(1, 2, 3))
    d2_fake = -0.05 * y_gen.sum(axis=(1, 2, 3))
    adversarial = 0.5 * np.mean((d1_fake - 1) ** 2) + 0.5 * np.mean((d2_fake - 1) ** 2)
    supervised = 0.0
    if paired:
        supervised = min(1000 * np.mean(np.abs(x_gen - x)), 1000 * np.mean(np.abs(x_gen - (y - x))))
    logs = model.generator_step(batch)  # losses are evaluated before the update
    assert float(logs["g_adversarial"]) == pytest.approx(adversarial, rel=1e-5)
    assert float(logs["paired_loss"]) == pytest.approx(supervised, rel=1e-5)
    assert float(logs["g_loss"]) == pytest.approx(adversarial + supervised, rel=1e-5)
    np.testing.assert_allclose(logs["x_gen"].numpy(), x_gen, atol=1e-6)
    assert float(logs["clean_mae"]) == pytest.approx(np.mean(np.abs(x_gen - x)), rel=1e-5)


@pytest.mark.parametrize("paired, with_x3", [(False, True), (False, False), (True, True)])
def test_discriminator_round_compares_the_right_samples(paired, with_x3):
    batch = hand_made_batch(2, with_x3=with_x3)
    model = training.IGAN(
        scaling_estimator(), summing_discriminator(0.1, "d1"), summing_discriminator(-0.05, "d2"), paired=paired
    )
    model.compile(gan_model="wgan")
    y, x, x2 = batch["y"], batch["x"], batch["x2"]
    z = 0.25 * y
    x1 = x if paired else x2  # D1's real batch never pairs with y in unpaired training
    x_dual = dual_mapping_sample(batch, paired)
    d1 = -(np.mean(0.1 * x1.sum((1, 2, 3))) - np.mean(0.1 * np.maximum(y - z, 0).sum((1, 2, 3))))
    d2 = -(np.mean(-0.05 * y.sum((1, 2, 3))) - np.mean(-0.05 * (x_dual + z).sum((1, 2, 3))))
    logs = model.discriminator_round(batch)
    assert float(logs["d1_loss"]) == pytest.approx(d1, rel=1e-5, abs=1e-6)
    assert float(logs["d2_loss"]) == pytest.approx(d2, rel=1e-5, abs=1e-6)
    # WGAN clips every discriminator weight to [-0.01, 0.01] after its update
    for d in (model.d1, model.d2):
        assert max(float(np.abs(v.numpy()).max()) for v in d.trainable_variables) <= 0.01 + 1e-7


def test_without_dual_mapping_the_generator_ignores_d2():
    batch = hand_made_batch(3)
    model = training.IGAN(scaling_estimator(), summing_discriminator(0.1, "d1"), None, dual_mapping=False)
    model.compile(gan_model="vanilla")
    x_gen = np.maximum(batch["y"] * 0.75, 0)
    logs = model.generator_step(batch)
    assert float(logs["g_loss"]) == pytest.approx(ce(0.1 * x_gen.sum((1, 2, 3)), 1), rel=1e-5)
    assert float(model.discriminator_round(batch)["d2_loss"]) == 0.0


# ----------------------------------------------------------------------------- one update per GAN model
@pytest.mark.parametrize("gan_model", ["vanilla", "ls", "wgan"])
def test_one_update_per_gan_model_changes_the_right_weights(gan_model):
    model = small_real_igan(gan_model)
    batch = real_batch(0)
    g0 = weights(model.estimator_network.trainable_variables)
    d10, d20 = weights(model.d1.trainable_variables), weights(model.d2.trainable_variables)
    round_logs = model.discriminator_round(batch)
    assert np.isfinite(float(round_logs["d1_loss"])) and np.isfinite(float(round_logs["d2_loss"]))
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(g0, model.estimator_network.trainable_variables))
    for before, d in ((d10, model.d1), (d20, model.d2)):
        changed = [not np.array_equal(a, b.numpy()) for a, b in zip(before, d.trainable_variables)]
        assert sum(changed) >= len(changed) // 2
    d11 = weights(model.d1.trainable_variables)
    logs = model.generator_step(real_batch(1))
    assert np.isfinite(float(logs["g_loss"]))
    changed = [not np.array_equal(a, b.numpy()) for a, b in zip(g0, model.estimator_network.trainable_variables)]
    assert sum(changed) >= len(changed) // 2
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(d11, model.d1.trainable_variables))
    assert model.schedule_state()["generator_steps"] == 1
    if gan_model == "wgan":
        assert max(float(np.abs(v.numpy()).max()) for v in model.d1.trainable_variables) <= 0.01 + 1e-7


def test_batches_are_checked():
    model = small_real_igan()
    batch = real_batch(0)
    with pytest.raises(ValueError, match="x2"):
        model.generator_step({"y": batch["y"], "x": batch["x"]})
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        model.generator_step({**batch, "y": np.zeros((2, 8, 8, 1), np.float32)})
    with pytest.raises(ValueError, match="d2"):
        training.IGAN(model.estimator, model.d1, None, dual_mapping=True)
    with pytest.raises(ValueError, match="shape"):
        training.IGAN(model.estimator, models.build_igan_discriminator(32, 1), model.d2)
    with pytest.raises(RuntimeError, match="compile"):
        training.IGAN(model.estimator, model.d1, model.d2).generator_step(batch)


# ----------------------------------------------------------------------------- mm schedule
def test_mm_rule():
    rule = training.next_generator_steps
    assert rule(1, [0.4, 0.9], 0.5) == 6  # D1 below the threshold
    assert rule(6, [0.9, 0.3], 0.5) == 11  # D2 below: mm keeps growing
    assert rule(11, [0.9, 0.6], 0.5) == 1  # neither: back to 1
    assert rule(1, [-6.0], -5) == 6
    tensor = rule(tf.constant(6, tf.int64), [tf.constant(0.9), tf.constant(0.05)], 0.1)
    assert int(tensor) == 11


class CountingBatches:
    """Hand-made batches 0, 1, 2, ... remembering how many were taken."""

    def __init__(self, seed=0):
        self.seed, self.taken = seed, 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = hand_made_batch(self.seed * 1000 + self.taken)
        self.taken += 1
        return batch


def hand_made_igan(threshold, estimator_factor=0.25, d1_weight=0.1, d2_weight=-0.05):
    model = training.IGAN(scaling_estimator(estimator_factor), summing_discriminator(d1_weight, "d1"),
                          summing_discriminator(d2_weight, "d2"))
    model.compile(gan_model="ls", d_threshold=threshold)
    return model


@pytest.mark.parametrize("threshold, rounds, mm, remaining", [(np.inf, 2, 11, 10), (-np.inf, 7, 1, 0)])
def test_schedule_counts_generator_steps(threshold, rounds, mm, remaining):
    # always winning: rounds at generator steps 0 (mm 6) and 6 (mm 11); never: one per step.
    model = hand_made_igan(threshold)
    batches = CountingBatches()
    summary = train(model, batches, 7, global_batch_size=3, run_eagerly=True)
    assert summary.final_step == 7
    assert model.schedule_state() == {
        "generator_steps": 7, "discriminator_rounds": rounds, "mm": mm, "remaining_generator_steps": remaining}
    # a fresh batch for every round and for every generator step
    assert batches.taken == 7 + rounds
    assert model.d1_optimizer.iterations.numpy() == rounds and model.g_optimizer.iterations.numpy() == 7
    # keras-style train_step (fit: one batch per call) follows the same schedule
    twin = hand_made_igan(threshold)
    for step in range(7):
        twin.train_step(hand_made_batch(step))
    assert twin.schedule_state() == model.schedule_state()


def test_the_loop_gives_the_round_and_the_generator_step_their_own_batches():
    """A compiled loop step with a round equals D1, D2 and the rule on batch 0 followed by a
    generator step on batch 1, done by hand; the next step (no round) uses batch 2."""
    looped, by_hand = small_real_igan("ls", seed=3), small_real_igan("ls", seed=3)
    looped.compile(gan_model="ls", d_threshold=np.inf)  # mm grows: no second round here
    by_hand.compile(gan_model="ls", d_threshold=np.inf)
    batches = [real_batch(seed) for seed in range(3)]
    summary = train(looped, iter(batches), 2, global_batch_size=2, run_eagerly=True)
    assert summary.traces == 2  # one function for the step with a round, one without
    by_hand.discriminator_round(batches[0])
    by_hand.generator_step(batches[1])
    by_hand.generator_step(batches[2])
    assert looped.schedule_state() == by_hand.schedule_state() == {
        "generator_steps": 2, "discriminator_rounds": 1, "mm": 6, "remaining_generator_steps": 4}
    for a, b in ((looped.estimator_network, by_hand.estimator_network), (looped.d1, by_hand.d1), (looped.d2, by_hand.d2)):
        for u, v in zip(a.weights, b.weights):
            np.testing.assert_array_equal(u.numpy(), v.numpy())
    plan = looped.plan_step()
    assert plan.num_batches == 1 and plan.phases == (("generator", 0),)
    looped.remaining_generator_steps.assign(0)
    assert looped.plan_step().phases == (("d1", 0), ("d2", 0), ("end_round", 0), ("generator", 1))


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_restores_networks_optimizers_and_schedule(tmp_path):
    model = small_real_igan("ls", seed=0)
    model.discriminator_round(real_batch(0))
    model.generator_step(real_batch(1))
    model.mm.assign(11)
    model.remaining_generator_steps.assign(4)
    TrainingCheckpoint(tmp_path, model.checkpoint_items()).save(1)

    fresh = small_real_igan("ls", seed=5)
    restored = TrainingCheckpoint(tmp_path, fresh.checkpoint_items()).restore_latest()
    assert restored.endswith("ckpt-1")
    assert fresh.schedule_state() == model.schedule_state()
    for a, b in ((model.estimator_network, fresh.estimator_network), (model.d1, fresh.d1), (model.d2, fresh.d2)):
        for u, v in zip(a.variables, b.variables):  # includes batch-norm moving statistics
            np.testing.assert_array_equal(u.numpy(), v.numpy())
    for a, b in ((model.g_optimizer, fresh.g_optimizer), (model.d2_optimizer, fresh.d2_optimizer)):
        for u, v in zip(a.variables, b.variables):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    # the same next step on the same batch gives the same weights
    model.generator_step(real_batch(2))
    fresh.generator_step(real_batch(2))
    for u, v in zip(model.estimator_network.trainable_variables, fresh.estimator_network.trainable_variables):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-5, atol=1e-6)

    other = small_real_igan("ls", channels=3)
    with pytest.raises((AssertionError, ValueError)):
        TrainingCheckpoint(tmp_path, other.checkpoint_items()).restore_latest()


def test_the_loop_checkpoints_logs_samples_and_resumes_where_it_stopped(tmp_path):
    model = hand_made_igan(np.inf)
    model.fixed_samples = hand_made_batch(99)
    checkpoint = TrainingCheckpoint(tmp_path / "ckpt", model.checkpoint_items())
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    first = train(model, CountingBatches(0), 3, global_batch_size=3, checkpoint=checkpoint, checkpoint_every=2,
                  sample_dir=tmp_path / "samples", sample_every=2, writer=writer, log_every=1,
                  fixed_samples=model.fixed_sample_inputs(3, 0))
    writer.close()
    assert [os.path.basename(p) for p in first.checkpoints] == ["ckpt-2", "ckpt-3"]
    assert os.path.isfile(first.sample_files[0]) and first.sample_files[0].endswith("step_0000002.png")
    tags = {
        value.tag
        for event_file in (tmp_path / "logs").iterdir()
        for event in tf.compat.v1.train.summary_iterator(str(event_file))
        for value in event.summary.value
    }
    assert {"train/d1_loss", "train/d2_loss", "train/g_loss", "schedule/mm", "learning_rate/estimator", "samples"} <= tags
    state = model.schedule_state()
    assert state == {"generator_steps": 3, "discriminator_rounds": 1, "mm": 6, "remaining_generator_steps": 3}

    resumed = hand_made_igan(np.inf, 0.5, 0.3, 0.2)
    TrainingCheckpoint(tmp_path / "ckpt", resumed.checkpoint_items()).restore_latest()
    second = train(resumed, CountingBatches(1), 5, global_batch_size=3)
    assert second.start_step == 3 and second.final_step == 5
    assert resumed.schedule_state()["discriminator_rounds"] == 1  # 3 generator steps were left in the round
    assert resumed.schedule_state()["remaining_generator_steps"] == 1


def test_export_of_the_trained_estimator(tmp_path):
    model = training.IGAN(scaling_estimator(), summing_discriminator(0.1, "d1"), summing_discriminator(-0.05, "d2"))
    model.compile(gan_model="vanilla")
    model.discriminator_round(hand_made_batch(0))
    model.generator_step(hand_made_batch(1))
    path = model.export(tmp_path / "estimator", task="unit")
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    y = hand_made_batch(3)["y"]
    outputs = loaded(y=tf.constant(y))
    z, x = model.separate(y)
    np.testing.assert_allclose(outputs["component"].numpy(), z, atol=1e-5)
    np.testing.assert_allclose(outputs["clean"].numpy(), np.maximum(y - z, 0), atol=1e-5)
    assert models.read_igan_metadata(path)["generator_steps"] == 1


def test_display_images_stretches_only_out_of_range_images():
    inside = np.full((4, 4, 1), 0.3, np.float32)
    outside = np.linspace(-1.0, 3.0, 16, dtype=np.float32).reshape(4, 4, 1)
    shown = training.display_images(np.stack([inside, outside]))
    np.testing.assert_array_equal(shown[0], inside)
    np.testing.assert_allclose(shown[1], (outside + 1.0) / 4.0, atol=1e-6)


def test_task_display_per_task_and_role():
    rng = np.random.default_rng(0)
    images = rng.uniform(-0.5, 1.5, (2, 4, 5, 1)).astype(np.float32)
    clipped = np.clip(images, 0.0, 1.0)
    stretched = training.display_images(images)
    # Clean images are clipped, observations and components stretched, for any image task.
    for name in (None, "denoising", "derain"):
        np.testing.assert_array_equal(training.task_display(name, images, "clean"), clipped)
        np.testing.assert_array_equal(training.task_display(name, images, "observation"), stretched)
        np.testing.assert_array_equal(training.task_display(name, images, "component"), stretched)
    # CAPTCHAs: dark characters on white, components as they are.
    np.testing.assert_array_equal(training.task_display("captcha", images, "clean"), 1.0 - clipped)
    np.testing.assert_array_equal(training.task_display("captcha", images, "observation"), 1.0 - clipped)
    np.testing.assert_array_equal(training.task_display("captcha", images, "component"), stretched)
    # Spectrograms (magnitudes: negative values count as 0), in every role: scaled to their own
    # peak, through a square root, and row 0 (the lowest frequency bin) at the bottom.
    magnitudes = np.maximum(images, 0.0)
    expected = np.sqrt(magnitudes / magnitudes.max(axis=(1, 2, 3), keepdims=True))
    for role in training.GRID_ROLES:
        shown = training.task_display("audio_captcha", images, role)
        np.testing.assert_allclose(shown[:, -1], expected[:, 0], rtol=1e-6)
        np.testing.assert_allclose(shown, expected[:, ::-1], rtol=1e-6)
        assert shown.max(axis=(1, 2, 3)).tolist() == [1.0, 1.0]
    silent = training.task_display("audio_captcha", np.zeros((1, 3, 3, 1)), "component")
    np.testing.assert_array_equal(silent, 0.0)
    with pytest.raises(ValueError, match="role"):
        training.task_display("captcha", images, "estimate")


@pytest.mark.parametrize("task_name", ["captcha", "audio_captcha", None])
def test_sample_grid_shows_the_task_as_deploy_does(task_name):
    model = small_real_igan()
    if task_name is not None:
        model.estimator.metadata["name"] = task_name
    inputs = {key: value for key, value in real_batch(3).items() if key in ("y", "x")}
    rows, labels = model.sample_grid(inputs)
    assert labels == ["input y", "component z", "estimate x", "true x"]
    sample = model.sample(inputs)
    for column, (key, role) in enumerate((("y", "observation"), ("z", "component"), ("x_gen", "clean"), ("x", "clean"))):
        np.testing.assert_array_equal(np.stack([row[column] for row in rows]),
                                      training.task_display(task_name, sample[key], role))


@pytest.mark.parametrize("dual_mapping, solver_runs", [(True, 3), (False, 2)])
def test_estimator_batch_norm_moves_once_per_solver_run(dual_mapping, solver_runs):
    # The original attached every batch-norm update to every solver run: a round at mm = 1 (D1,
    # D2, one generator update) moves the estimator's statistics 3 times; 2 without D2.
    from tfinverse.training.batch_norm import batch_norm_layers

    model = small_real_igan("ls", dual_mapping=dual_mapping)
    batch = real_batch(0)
    layers = batch_norm_layers(model.estimator_network)
    start = [layer.moving_mean.numpy().copy() for layer in layers]
    model.estimator_network(batch["y"], training=True)  # one update: start + (1 - m) (mu - start)
    one_update = [layer.moving_mean.numpy() - s for layer, s in zip(layers, start)]
    for layer, s in zip(layers, start):
        layer.moving_mean.assign(s)
    model.discriminator_round(batch)  # the estimator's weights only change after these forwards
    model.generator_step(batch)
    momentum = float(layers[0].momentum)
    updates_factor = sum(momentum**k for k in range(solver_runs))  # (1 - m^n) / (1 - m)
    for layer, s, one in zip(layers, start, one_update):
        moved = layer.moving_mean.numpy() - s
        np.testing.assert_allclose(moved, updates_factor * one, rtol=1e-3, atol=1e-7)
