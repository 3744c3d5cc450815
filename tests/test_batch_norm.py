"""Batch-norm recalibration: moving statistics against numpy, inference mode against training
mode on the concatenated batch, untouched weights and momenta; and igan's export after a short
real training run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse.training.batch_norm import batch_norm_layers, recalibrate_batch_norm

MOMENTUM = 0.999


def _batches(count=6, batch=16, size=8, channels=3, seed=0):
    # Off-centre, wide inputs: far from the initial moving statistics (mean 0, variance 1).
    rng = np.random.default_rng(seed)
    return [(2.0 + 3.0 * rng.normal(size=(batch, size, size, channels))).astype(np.float32) for _ in range(count)]


def _conv_bn(name, filters=4, seed=0):
    return [
        keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=keras.initializers.GlorotUniform(seed),
                            name=f"{name}_conv"),
        keras.layers.BatchNormalization(momentum=MOMENTUM, name=f"{name}_bn"),
    ]


def one_bn_model():
    inputs = keras.Input((8, 8, 3))
    net = inputs
    for layer in _conv_bn("a"):
        net = layer(net)
    return keras.Model(inputs, net)


def nested_model():
    """A sub-model (conv, BN, ReLU) inside a model with a second conv + BN: nested BN layers."""
    inner_in = keras.Input((8, 8, 3))
    net = inner_in
    for layer in _conv_bn("inner", seed=1):
        net = layer(net)
    inner = keras.Model(inner_in, keras.layers.ReLU()(net), name="inner")
    inputs = keras.Input((8, 8, 3))
    net = inner(inputs)
    for layer in _conv_bn("outer", seed=2):
        net = layer(net)
    return keras.Model(inputs, net, name="outer")


def _garbage_statistics(model, seed=3):
    rng = np.random.default_rng(seed)
    for layer in batch_norm_layers(model):
        layer.moving_mean.assign(rng.normal(5.0, 1.0, layer.moving_mean.shape).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(50.0, 60.0, layer.moving_variance.shape).astype(np.float32))


def _snapshot(variables):
    return [np.array(v.numpy()) for v in variables]


def test_batch_norm_layers_finds_nested_layers_once():
    model = nested_model()
    assert [layer.name for layer in batch_norm_layers(model)] == ["inner_bn", "outer_bn"]


def test_one_layer_matches_numpy_and_the_big_training_batch_exactly():
    model = one_bn_model()
    _garbage_statistics(model)
    batches = _batches()
    conv = model.get_layer("a_conv")
    bn = model.get_layer("a_bn")
    everything = np.concatenate(batches)
    layer_inputs = conv(everything).numpy().astype(np.float64)  # what the BN layer sees
    before = np.abs(model(everything, training=False).numpy() - model(everything, training=True).numpy()).max()

    report = recalibrate_batch_norm(model, batches)

    assert report.num_batches == 6 and report.num_examples == 96 and report.layers == ["a_bn"]
    np.testing.assert_allclose(bn.moving_mean.numpy(), layer_inputs.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    # pooled: numpy's (biased, ddof=0) variance over all batches together
    np.testing.assert_allclose(bn.moving_variance.numpy(), layer_inputs.var(axis=(0, 1, 2)), rtol=1e-4)
    after = np.abs(model(everything, training=False).numpy() - model(everything, training=True).numpy()).max()
    assert before > 1.0  # the garbage statistics give a different function
    assert after < 1e-4  # float32 round-off: the first BN layer is exact


def test_batch_variance_is_the_mean_of_the_per_batch_biased_variances():
    model = one_bn_model()
    batches = _batches(count=4)
    recalibrate_batch_norm(model, batches, variance="batch")
    per_batch = [model.get_layer("a_conv")(b).numpy().astype(np.float64) for b in batches]
    expected = np.mean([x.var(axis=(0, 1, 2)) for x in per_batch], axis=0)
    np.testing.assert_allclose(model.get_layer("a_bn").moving_variance.numpy(), expected, rtol=1e-4)
    # and it is smaller than the pooled one by the spread of the batch means
    pooled = np.concatenate(per_batch).var(axis=(0, 1, 2))
    assert np.all(expected < pooled)


def test_repeated_calls_trace_once_stay_exact_and_do_not_keep_the_model_alive():
    import gc

    from tfinverse.training import batch_norm

    model = one_bn_model()
    bn, conv = model.get_layer("a_bn"), model.get_layer("a_conv")
    for seed in (0, 1, 2):
        batches = _batches(count=2, seed=seed)
        recalibrate_batch_norm(model, batches)
        layer_inputs = conv(np.concatenate(batches)).numpy().astype(np.float64)
        np.testing.assert_allclose(bn.moving_mean.numpy(), layer_inputs.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    assert bn.momentum == MOMENTUM
    assert batch_norm._TRAINING_FORWARD[model].experimental_get_tracing_count() == 1
    import weakref

    alive = weakref.ref(model)
    del model, bn, conv
    gc.collect()
    assert alive() is None


def test_nested_model_inference_matches_training_mode_on_the_concatenated_batch():
    model = nested_model()
    # a brief training so the weights are not the initial ones
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    rng = np.random.default_rng(1)
    train_x = np.concatenate(_batches(count=2, seed=5))
    model.fit(train_x, rng.normal(size=(32, 8, 8, 4)).astype(np.float32), batch_size=16, epochs=1, verbose=0)
    _garbage_statistics(model)
    trainable = _snapshot(model.trainable_variables)
    batches = _batches(count=8, batch=32)
    everything = np.concatenate(batches)
    training_mode = model(everything, training=True).numpy()
    before = np.abs(model(everything, training=False).numpy() - training_mode).max()

    report = recalibrate_batch_norm(model, iter(batches), num_batches=8)

    assert report.layers == ["inner_bn", "outer_bn"] and not report.skipped
    inner_inputs = model.get_layer("inner").get_layer("inner_conv")(everything).numpy().astype(np.float64)
    np.testing.assert_allclose(model.get_layer("inner").get_layer("inner_bn").moving_mean.numpy(),
                               inner_inputs.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-5)
    after = np.abs(model(everything, training=False).numpy() - training_mode).max()
    scale = np.abs(training_mode).max()
    # The outer BN layer's inputs were normalised per batch of 32 x 8 x 8 values during the
    # passes, not by the big batch's statistics: their mean and spread differ from the big
    # batch's by the batch-to-batch noise of the inner statistics, about 1/sqrt(2048) ~ 2 %
    # of a standard deviation, which shrinks when averaged over 8 batches. 1 % of the output
    # range bounds it with margin; the garbage statistics are off by far more than that.
    assert after < 0.01 * scale, (after, scale)
    assert before > 0.5 * scale
    # (2) trainable weights untouched, (3) momentum restored
    for old, new in zip(trainable, model.trainable_variables):
        np.testing.assert_array_equal(old, new.numpy())
    assert [layer.momentum for layer in batch_norm_layers(model)] == [MOMENTUM, MOMENTUM]


def test_models_with_several_inputs_take_tuples_or_an_input_fn():
    a_in, b_in = keras.Input((4,)), keras.Input((4,))
    a = keras.layers.BatchNormalization(name="bn_a")(a_in)
    b = keras.layers.BatchNormalization(name="bn_b")(b_in)
    model = keras.Model([a_in, b_in], keras.layers.Concatenate()([a, b]))
    rng = np.random.default_rng(0)
    batches = [{"a": rng.normal(1.0, 2.0, (10, 4)).astype(np.float32),
                "b": rng.normal(-3.0, 0.5, (10, 4)).astype(np.float32)} for _ in range(5)]
    report = recalibrate_batch_norm(model, batches, input_fn=lambda batch: (batch["a"], batch["b"]))
    assert report.num_batches == 5 and sorted(report.layers) == ["bn_a", "bn_b"]
    all_a = np.concatenate([batch["a"] for batch in batches]).astype(np.float64)
    all_b = np.concatenate([batch["b"] for batch in batches]).astype(np.float64)
    np.testing.assert_allclose(model.get_layer("bn_a").moving_mean.numpy(), all_a.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_layer("bn_b").moving_variance.numpy(), all_b.var(0), rtol=1e-4)


def test_frozen_layers_models_without_batch_norm_and_errors():
    model = nested_model()
    _garbage_statistics(model)
    frozen = model.get_layer("outer_bn")
    frozen.trainable = False  # Keras 3 runs it in inference mode even with training=True
    kept = _snapshot([frozen.moving_mean, frozen.moving_variance])
    report = recalibrate_batch_norm(model, _batches(count=2))
    assert report.layers == ["inner_bn"]
    for old, new in zip(kept, [frozen.moving_mean, frozen.moving_variance]):
        np.testing.assert_array_equal(old, new.numpy())

    # no batch norm: nothing is read from the stream
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    def exploding():
        raise AssertionError("the stream must not be read")
        yield

    assert recalibrate_batch_norm(plain, exploding()).num_batches == 0

    # an empty stream fails and leaves statistics and momentum as they were
    model = one_bn_model()
    _garbage_statistics(model)
    bn = model.get_layer("a_bn")
    kept = _snapshot([bn.moving_mean, bn.moving_variance])
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_batch_norm(model, [])
    np.testing.assert_array_equal(kept[0], bn.moving_mean.numpy())
    np.testing.assert_array_equal(kept[1], bn.moving_variance.numpy())
    assert bn.momentum == MOMENTUM
    with pytest.raises(ValueError, match="variance"):
        recalibrate_batch_norm(model, _batches(count=1), variance="unbiased")
    with pytest.raises(ValueError, match="num_batches"):
        recalibrate_batch_norm(model, _batches(count=1), num_batches=0)


# ----------------------------------------------------------------------------- igan export
IGAN_SIZE = 16


def _igan_batch(rng, batch):
    x = rng.random((batch, IGAN_SIZE, IGAN_SIZE, 1)).astype(np.float32)
    component = (0.5 * rng.random(x.shape)).astype(np.float32)
    return {"y": x + component, "x": x, "component": component, "x2": rng.random(x.shape).astype(np.float32)}


def _igan_stream(seed, batch):
    def gen():
        rng = np.random.default_rng(seed)
        while True:
            yield _igan_batch(rng, batch)

    spec = tf.TensorSpec([batch, IGAN_SIZE, IGAN_SIZE, 1], tf.float32)
    return tf.data.Dataset.from_generator(gen, output_signature={k: spec for k in ("y", "x", "component", "x2")})


def _training_mode_reference(network, held_out, reference):
    """Training-mode outputs for each held-out batch placed at the head of one large batch
    (held-out + ``reference`` samples of the same distribution)."""
    outputs = []
    for y in held_out:
        large = np.concatenate([y, reference])
        outputs.append(network(tf.constant(large), training=True).numpy()[: len(y)])
    return np.concatenate(outputs)


def _relative_rms(estimate, target):
    return float(np.sqrt(np.mean((estimate - target) ** 2)) / np.sqrt(np.mean(target**2)))


def _small_igan(seed):
    from tfinverse.models import igan as igan_models
    from tfinverse.training import igan as igan_training

    estimator = igan_models.IganEstimator(
        igan_models.build_igan_estimator(IGAN_SIZE, 1, add_input_mean=True, extra_convs=True, filters=8, seed=seed))
    d1 = igan_models.build_igan_discriminator(IGAN_SIZE, 1, filters=(4, 8, 8, 8), seed=seed + 1, name="d1")
    d2 = igan_models.build_igan_discriminator(IGAN_SIZE, 1, filters=(4, 8, 8, 8), seed=seed + 2, name="d2")
    model = igan_training.IGAN(estimator, d1, d2)
    g_opt, d1_opt, d2_opt = igan_training.igan_optimizers("ls", 1e-3, 1e-3)
    model.compile(g_opt, d1_opt, d2_opt, gan_model="ls")
    return model


def test_igan_export_after_a_short_run_matches_training_mode(tmp_path):
    """One short real run on the training loop (tracing the two step functions takes ~10 s on
    2 cores): inference mode without, then with (the export), the loop's final
    recalibration (IGAN.finish_training), against training mode on a large batch of the same
    distribution."""
    from tfinverse.models import igan as igan_models
    from tfinverse.training.checkpointing import TrainingCheckpoint
    from tfinverse.training.loop import train

    model = _small_igan(0)
    checkpoints = tmp_path / "ckpt"
    checkpoint = TrainingCheckpoint(checkpoints, model.checkpoint_items())
    # 30 generator steps without the final recalibration: the moving averages (momentum
    # 0.999) have moved only a few per cent of the way from (0, 1) to the data's statistics.
    summary = train(model, iter(_igan_stream(0, 8)), 30, global_batch_size=8, checkpoint=checkpoint,
                    checkpoint_every=30, finish_batches=None)
    assert summary.finish_report is None and model.batch_norm_recalibration is None and summary.final_step == 30
    rng = np.random.default_rng(123)  # held-out data, not in the training stream
    held_out = [_igan_batch(rng, 8)["y"] for _ in range(3)]
    reference = np.concatenate([_igan_batch(rng, 8)["y"] for _ in range(24)])  # 192 more samples
    other_reference = np.concatenate([_igan_batch(rng, 8)["y"] for _ in range(24)])
    trainable = _snapshot(model.estimator_network.trainable_variables)

    target = _training_mode_reference(model.estimator_network, held_out, reference)
    # The target is itself noisy: the deepest layers of a 16 x 16 estimator normalise 1 x 1
    # maps, so even a batch of 200 gives statistics that vary from batch to batch. Its noise
    # floor: the same held-out samples in a large batch with other reference samples.
    floor = _relative_rms(_training_mode_reference(model.estimator_network, held_out, other_reference), target)
    y_all = np.concatenate(held_out)
    stale_z, _ = model.separate(y_all)  # inference mode with the moving averages of training
    before = _relative_rms(stale_z, target)

    # the loop's final recalibration (no steps left: 50 batches of 8 = 400 samples of a
    # separate stream), written into the final checkpoint
    again = train(model, iter(_igan_stream(0, 8)), 30, global_batch_size=8, checkpoint=checkpoint,
                  finish_batches=iter(_igan_stream(1, 8)))
    assert again.finish_report["batch_norm_recalibration_batches"] == 50
    report = model.batch_norm_recalibration
    assert report.num_batches == igan_models.IGAN_BN_RECALIBRATION_BATCHES == 50
    assert len(report.layers) == len(batch_norm_layers(model.estimator_network)) and not report.skipped
    assert [os.path.basename(p) for p in again.checkpoints] == ["ckpt-30"]
    listed = tf.train.get_checkpoint_state(str(checkpoints)).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in listed] == ["ckpt-30"]  # rewritten, not duplicated
    path = model.export(tmp_path / "recalibrated")
    assert igan_models.read_igan_metadata(path)["batch_norm_recalibration_batches"] == 50
    separate = igan_models.load_igan_export(path)[0]
    exported_z, _ = separate(y_all)
    after = _relative_rms(exported_z, target)
    print(f"igan export vs training mode on a large batch, relative RMS: before {before:.3f}, after {after:.3f}, "
          f"noise floor {floor:.3f}; max abs before {np.abs(stale_z - target).max():.3f}, after "
          f"{np.abs(exported_z - target).max():.3f}, output max {np.abs(target).max():.3f}")
    # Measured (2 cores, TF 2.21): before 0.93, after 0.18, floor 0.14. The recalibrated
    # statistics were gathered in passes of 8 (the training batch), whose normalisation noise
    # upstream of the deep layers differs from the large batch's, so "after" sits a little
    # above the floor: within twice the floor is the tolerance. Stale statistics are off by
    # about the output's own size.
    assert after < 2.0 * floor
    assert before > 4.0 * after
    for old, new in zip(trainable, model.estimator_network.trainable_variables):
        np.testing.assert_array_equal(old, new.numpy())
    assert {layer.momentum for layer in batch_norm_layers(model.estimator_network)} == {0.999}

    # the final checkpoint holds the recalibrated statistics: restored, it is the export
    fresh = _small_igan(7)
    TrainingCheckpoint(checkpoints, fresh.checkpoint_items()).restore_latest()
    # float32 rounding of the SavedModel graph against the eager layers: relative 1e-4
    np.testing.assert_allclose(fresh.separate(y_all)[0], exported_z, rtol=1e-4, atol=1e-5)
