"""Ambient VAE-GAN's networks, schedule, settings and forward models against the original's layout.

References are independent of the code under test: the layer shapes and parameter counts of
``ORIGINALS.md`` section 2 worked out by hand, batch norm recomputed with numpy, the learning
rate in closed form with Python floats, mask and noise statistics counted on the draws.
"""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse.errors import InputError, UnknownNameError
from tfinverse.models.ambient import (
    AmbientBatchNormalization,
    AmbientLearningRate,
    AmbientNetworks,
    build_ambient_decoder,
    build_ambient_discriminator,
    build_ambient_encoder,
    from_network_range,
    set_batch_statistics,
    to_network_range,
)
from tfinverse.tasks import ambient as settings
from tfinverse.tasks.ambient import PRESETS, AmbientConfig, build_measurement

MNIST = PRESETS["mnist"].config
CELEBA = PRESETS["celeba"].config


def shape_of(model, name):
    return tuple(model.get_layer(name).output.shape[1:])


@pytest.fixture(scope="module")
def mnist():
    return AmbientNetworks.build("mnist", seed=0)


# ---------------------------------------------------------------- layouts
def test_celeba_layout_is_the_originals():
    encoder = build_ambient_encoder(CELEBA)
    decoder = build_ambient_decoder(CELEBA)
    discriminator = build_ambient_discriminator(CELEBA)
    assert [shape_of(encoder, n) for n in ("e_c1", "e_c2", "e_c3", "e_f1", "e_f2", "e_f3")] == [
        (32, 32, 64), (16, 16, 128), (8, 8, 256), (1024,), (128,), (128,)]
    assert [shape_of(decoder, n) for n in ("gen_fully1", "gen_reshape", "gen_deconv2", "gen_deconv3",
                                           "gen_deconv4", "gen_deconv5")] == [
        (8 * 8 * 256,), (8, 8, 256), (16, 16, 256), (32, 32, 128), (64, 64, 32), (64, 64, 3)]
    assert decoder.get_layer("gen_deconv5").strides == (1, 1)
    assert decoder.layers[-1].get_config()["activation"] == "tanh"
    assert [shape_of(discriminator, n) for n in ("dis_conv1", "dis_conv2", "dis_conv3", "dis_conv4",
                                                 "dis_fully1", "dis_fully2")] == [
        (32, 32, 32), (16, 16, 128), (8, 8, 256), (4, 4, 256), (256,), (1,)]
    # The feature output is the last conv itself, before its batch norm.
    assert discriminator.outputs[0] is discriminator.get_layer("dis_conv4").output
    # No batch norm after the first conv of D; batch norm after every other conv and hidden FC.
    bn = {layer.name for layer in discriminator.layers if isinstance(layer, AmbientBatchNormalization)}
    assert bn == {"dis_bn1", "dis_bn2", "dis_bn3", "dis_bn4"}
    assert {l.name for l in encoder.layers if isinstance(l, AmbientBatchNormalization)} == {
        "e_bn1", "e_bn2", "e_bn3", "e_bn4"}


def test_mnist_layout_shapes_and_parameter_counts_by_hand(mnist):
    e, g, d = mnist.encoder, mnist.decoder, mnist.discriminator
    assert [shape_of(e, n) for n in ("e_c1", "e_c2", "e_c3", "e_f2", "e_f3")] == [
        (14, 14, 16), (7, 7, 32), (4, 4, 64), (20,), (20,)]
    assert [shape_of(g, n) for n in ("gen_fully1", "gen_reshape", "gen_deconv2", "gen_deconv3")] == [
        (7 * 7 * 32,), (7, 7, 32), (14, 14, 16), (28, 28, 1)]
    assert g.layers[-1].get_config()["activation"] == "sigmoid"
    assert [shape_of(d, n) for n in ("dis_conv1", "dis_conv2", "dis_conv3", "dis_fully2")] == [
        (14, 14, 16), (7, 7, 32), (4, 4, 64), (1,)]
    conv = lambda cin, cout: 9 * cin * cout + cout  # 3x3 kernel + bias
    bn = lambda c: 2 * c  # gamma and beta (the moving statistics are not trainable)
    dense = lambda cin, cout: cin * cout + cout
    encoder = conv(1, 16) + bn(16) + conv(16, 32) + bn(32) + conv(32, 64) + bn(64) + 2 * dense(4 * 4 * 64, 20)
    decoder = dense(20, 7 * 7 * 32) + bn(7 * 7 * 32) + conv(32, 16) + bn(16) + conv(16, 1)
    discriminator = conv(1, 16) + conv(16, 32) + bn(32) + conv(32, 64) + bn(64) + dense(4 * 4 * 64, 1)
    assert (encoder, decoder, discriminator) == (64520, 40865, 24513)
    count = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert (count(e), count(g), count(d)) == (encoder, decoder, discriminator)


def test_layers_kernels_initialisers_and_batch_norm_settings():
    e = build_ambient_encoder(CELEBA, seed=3)
    g = build_ambient_decoder(CELEBA, seed=4)
    for layer in e.layers + g.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            assert layer.kernel_size == (3, 3) and layer.padding == "same" and layer.use_bias
            assert not np.any(layer.bias.numpy())
        if isinstance(layer, AmbientBatchNormalization):
            assert layer.momentum == 0.9 and layer.epsilon == 1e-5 and layer.scale and layer.center
    conv = e.get_layer("e_c3").kernel.numpy()
    deconv = g.get_layer("gen_deconv3").kernel.numpy()
    dense = e.get_layer("e_f1").kernel.numpy()
    # Truncated at two standard deviations: |w| <= 0.04 and std 0.02 * 0.8796.
    assert np.abs(conv).max() <= 0.04 + 1e-7
    assert conv.std() == pytest.approx(0.02 * 0.8796, rel=0.02)
    # Plain normals: values beyond 2 sigma exist, std 0.02.
    assert np.abs(deconv).max() > 0.05 and deconv.std() == pytest.approx(0.02, rel=0.02)
    assert dense.std() == pytest.approx(0.02, rel=0.02)
    # Explicit names make the checkpoint paths: the original's scopes.
    assert [w.path for w in e.get_layer("e_bn1").weights] == [
        "e_bn1/gamma", "e_bn1/beta", "e_bn1/moving_mean", "e_bn1/moving_variance"]


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_any_batch_size(mnist, batch):
    x = np.random.default_rng(batch).random((batch,) + MNIST.image_shape).astype(np.float32)
    mu, logvar = mnist.encode(x)
    assert mu.shape == logvar.shape == (batch, 20)
    images = mnist.decode(mu)
    assert images.shape == (batch, 28, 28, 1)
    features, logit = mnist.discriminate(images)
    assert features.shape == (batch, 4, 4, 64) and logit.shape == (batch, 1)
    assert np.all(np.isfinite(features.numpy())) and np.all(np.isfinite(logit.numpy()))


def test_one_trace_serves_every_batch_size(mnist):
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def run(x):
        traces.append(1)
        return mnist.discriminate(x)[1]

    assert run(tf.zeros([1, 28, 28, 1])).shape == (1, 1)
    assert run(tf.zeros([5, 28, 28, 1])).shape == (5, 1)
    assert len(traces) == 1


# ---------------------------------------------------------------- batch norm
def numpy_batch_norm(x, gamma, beta, mean=None, variance=None, eps=1e-5):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes) if mean is None else mean
    variance = x.var(axis=axes) if variance is None else variance  # biased, as in training
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta


@pytest.mark.parametrize("shape", [(6, 5, 4, 3), (7, 10)])
def test_batch_statistics_is_the_default_and_leaves_the_averages(shape):
    rng = np.random.default_rng(0)
    layer = AmbientBatchNormalization(momentum=0.9, epsilon=1e-5)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    layer.build(shape)
    layer.gamma.assign(rng.uniform(0.5, 2, shape[-1]))
    layer.beta.assign(rng.uniform(-1, 1, shape[-1]))
    gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
    out = layer(x, training=False).numpy()
    np.testing.assert_allclose(out, numpy_batch_norm(x, gamma, beta), atol=2e-5)
    assert not np.any(layer.moving_mean.numpy()) and np.all(layer.moving_variance.numpy() == 1)
    # training=True: the same normalisation, and the averages move by momentum 0.9.
    np.testing.assert_allclose(layer(x, training=True).numpy(), out, atol=2e-5)
    axes = tuple(range(x.ndim - 1))
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(axis=axes), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * x.var(axis=axes), rtol=1e-4)
    # A frozen layer in batch-statistics mode still normalises by the batch and stops updating.
    layer.trainable = False
    before = layer.moving_mean.numpy()
    np.testing.assert_allclose(layer(x * 2, training=True).numpy(), numpy_batch_norm(x * 2, gamma, beta), atol=5e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), before)


def test_moving_average_mode_and_its_effect_on_a_network():
    rng = np.random.default_rng(1)
    d = build_ambient_discriminator(MNIST, seed=1)
    x = rng.random((4, 28, 28, 1)).astype(np.float32)
    # Batch statistics couple the examples of a batch: the first image's output depends on the others.
    alone, together = d(x[:1])[1].numpy(), d(x)[1].numpy()
    assert not np.allclose(alone[0], together[0], atol=1e-6)
    d(x, training=True)  # moves the averages off their initial values
    set_batch_statistics(d, False)
    assert not any(l.batch_statistics for l in d.layers if isinstance(l, AmbientBatchNormalization))
    alone, together = d(x[:1])[1].numpy(), d(x)[1].numpy()
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-6)
    # Moving-average mode is Keras inference with the stored statistics.
    bn = d.get_layer("dis_bn1")
    inner = keras.Model(d.inputs[0], d.get_layer("dis_conv2").output)(x).numpy()
    expected = numpy_batch_norm(inner, bn.gamma.numpy(), bn.beta.numpy(), bn.moving_mean.numpy(),
                                bn.moving_variance.numpy())
    np.testing.assert_allclose(bn(inner).numpy(), expected, atol=2e-5)
    # ... and the constructor flag gives that mode from the start.
    g = build_ambient_decoder(MNIST, batch_statistics=False)
    z = rng.standard_normal((3, 20)).astype(np.float32)
    np.testing.assert_allclose(g(z[:1]).numpy()[0], g(z).numpy()[0], atol=1e-6)


# ---------------------------------------------------------------- sizes and ranges
@pytest.mark.parametrize("size, layout, multiple", [(28, "celeba", 8), (30, "mnist", 4), (12, "celeba", 8)])
def test_sizes_the_ladder_cannot_reach_are_refused(size, layout, multiple):
    with pytest.raises(InputError, match=f"multiple of {multiple}") as error:
        AmbientConfig(size, 1, 8, layout)
    assert "\n" not in str(error.value) and isinstance(error.value, ValueError)


def test_bad_configurations_are_refused_and_reachable_sizes_build():
    with pytest.raises(UnknownNameError, match="celeba, mnist"):
        AmbientConfig(64, 3, 8, "cifar")
    with pytest.raises(InputError, match="latent_dim"):
        AmbientConfig(64, 3, 0, "celeba")
    config = AmbientConfig(32, 2, 5, "celeba")
    assert config.encoder_sizes() == (32, 16, 8, 4) and config.decoder_sizes() == (4, 8, 16, 32)
    nets = AmbientNetworks.build(config)
    assert nets.decode(np.zeros((2, 5), np.float32)).shape == (2, 32, 32, 2)
    assert nets.discriminate(np.zeros((2, 32, 32, 2), np.float32))[0].shape == (2, 2, 2, 256)
    assert CELEBA.discriminator_sizes() == (64, 32, 16, 8, 4) and MNIST.discriminator_sizes() == (28, 14, 7, 4)


def test_range_conversion_is_in_one_place():
    x = np.array([0.0, 0.25, 1.0], np.float32)
    np.testing.assert_allclose(to_network_range(x, "celeba").numpy(), [-1.0, -0.5, 1.0])
    np.testing.assert_allclose(to_network_range(x, MNIST).numpy(), x)
    np.testing.assert_allclose(from_network_range(to_network_range(x, CELEBA), "celeba").numpy(), x)
    assert (CELEBA.zero_level, MNIST.zero_level) == (0.5, 0.0)


def test_decoder_and_enhancer_give_unit_range_images():
    nets = AmbientNetworks.build(AmbientConfig(16, 3, 6, "celeba"), seed=2)
    y = np.random.default_rng(2).random((3, 16, 16, 3)).astype(np.float32)
    mu, _ = nets.encode(y)
    # tanh output mapped to [0, 1] by the one conversion.
    raw = nets.decoder(mu).numpy()
    np.testing.assert_allclose(nets.enhance(y).numpy(), (raw + 1) / 2, atol=1e-6)
    sample = nets.enhance(y, sample=True, seed=4).numpy()
    np.testing.assert_array_equal(sample, nets.enhance(y, sample=True, seed=4).numpy())
    assert not np.allclose(sample, nets.enhance(y).numpy())
    with pytest.raises(ValueError, match="seed"):
        nets.enhance(y, sample=True)
    generator = nets.generator()
    assert generator.output_shape == (16, 16, 3) and generator.latent_distribution == "normal"
    np.testing.assert_allclose(generator(mu).numpy(), (raw + 1) / 2, atol=1e-6)


# ---------------------------------------------------------------- learning rate
def test_learning_rate_schedule_closed_form_and_floor():
    schedule = AmbientLearningRate()
    for step in (0, 1, 5000, 10_000, 123_456, 600_000):
        assert float(schedule(step)) == pytest.approx(3e-4 * 0.98 ** (step / 1e4), rel=1e-6)
    assert float(schedule(600_000)) == pytest.approx(8.93e-5, rel=1e-3)  # where the original's run ends
    # The original's counter stops at the first step with lr <= 5e-5 (near 887k).
    first = next(s for s in range(880_000, 900_000) if 3e-4 * 0.98 ** (s / 1e4) <= 5e-5)
    assert schedule.freeze_step == first == settings.learning_rate_freeze_step()
    held = 3e-4 * 0.98 ** (first / 1e4)
    assert 5e-5 * 0.98 ** (1 / 1e4) < held <= 5e-5
    for step in (first, first + 1, 10**6, 10**8):
        assert float(schedule(step)) == pytest.approx(held, rel=1e-6)
    assert float(schedule(first - 1)) > 5e-5
    assert settings.learning_rate_at(10**7) == pytest.approx(held, rel=1e-12)
    # A Keras optimiser takes it, and it survives serialisation.
    optimizer = keras.optimizers.RMSprop(learning_rate=schedule, rho=settings.RMSPROP_DECAY,
                                         epsilon=settings.RMSPROP_EPSILON)
    assert float(optimizer.learning_rate) == pytest.approx(3e-4)
    clone = AmbientLearningRate.from_config(schedule.get_config())
    assert float(clone(250_000)) == float(schedule(250_000))


# ---------------------------------------------------------------- settings module
def test_the_settings_module_imports_no_tensorflow():
    code = ("import sys, tfinverse.tasks.ambient as a; "
            "a.parse_measurement('drop_patch:patch_size=3'); a.preset('mnist'); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_presets_and_their_ladders():
    assert (MNIST.image_size, MNIST.channels, MNIST.latent_dim, MNIST.layout) == (28, 1, 20, "mnist")
    assert (CELEBA.image_size, CELEBA.channels, CELEBA.latent_dim, CELEBA.layout) == (64, 3, 128, "celeba")
    assert MNIST.decoder_sizes() == (7, 14, 28) and CELEBA.decoder_sizes() == (8, 16, 32, 64)
    for name, entry in PRESETS.items():
        assert entry.patch_size == settings.default_patch_size(entry.config.image_size)
        assert 1 <= entry.patch_size < entry.config.image_size
    with pytest.raises(UnknownNameError, match="lfw_faces"):
        settings.preset("cifar")


# ---------------------------------------------------------------- forward models
def test_drop_independent_draws_per_call_inside_a_compiled_step():
    measure = build_measurement("drop_independent", (16, 16, 3))
    x = np.full((8, 16, 16, 3), 0.5, np.float32)
    traces = []

    @tf.function
    def run(x, seed):
        traces.append(1)
        return measure(x, seed)

    a = run(x, tf.constant([1, 0], tf.int64)).numpy()
    b = run(x, tf.constant([2, 0], tf.int64)).numpy()
    assert len(traces) == 1
    assert set(np.unique(a)) <= {0.0, np.float32(0.5 / 0.1)}
    assert np.mean(a != 0) == pytest.approx(0.1, abs=0.02)  # p = 0.9, per pixel and channel
    assert not np.array_equal(a != 0, b != 0) and not np.array_equal(a[0] != 0, a[1] != 0)
    # Channels are drawn independently (not whole pixels).
    assert np.mean((a[..., 0] != 0) & (a[..., 1] != 0)) == pytest.approx(0.01, abs=0.01)
    np.testing.assert_array_equal(measure.mask(x, tf.constant([1, 0], tf.int64)).numpy() != 0, a != 0)


def test_drop_patch_default_is_half_the_side_and_zero_level_mid_grey():
    measure = build_measurement("drop_patch", (28, 28, 1), zero_level=0.5)
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    y = measure(x, 7).numpy()
    mask = measure.mask(x, 7).numpy()
    for i in range(4):
        rows, cols = np.nonzero(mask[i, :, :, 0] == 0)
        assert rows.max() - rows.min() + 1 == 14 and cols.max() - cols.min() + 1 == 14 and rows.size == 196
        assert rows.max() < 27 and cols.max() < 27  # corner drawn from [0, 28 - 14)
    np.testing.assert_array_equal(y[mask == 0], 0.5)
    np.testing.assert_allclose(y[mask == 1], x[mask == 1], atol=1e-7)


def test_add_noise_std_and_blur():
    x = np.full((4, 32, 32, 3), 0.5, np.float32)
    y = build_measurement("add_noise", (32, 32, 3))(x, 1).numpy()
    assert np.std(y - x) == pytest.approx(0.1, rel=0.03)  # 0.2 on [-1, 1]
    mnist = build_measurement("add_noise", (28, 28, 1), noise_std=PRESETS["mnist"].add_noise_std)
    assert np.std(mnist(x[:, :28, :28, :1], 1).numpy() - 0.5) == pytest.approx(0.2, rel=0.05)
    blurred = build_measurement("add_noise:std=0,blur=true", (32, 32, 3), zero_level=0.5)
    image = np.random.default_rng(3).random((1, 32, 32, 3)).astype(np.float32)
    out = blurred(image, 0).numpy()
    from scipy import ndimage

    # 5x5 Gaussian, sigma 1, padded with mid grey: scipy's gaussian_filter truncated at 2 sigma.
    expected = np.stack([ndimage.gaussian_filter(image[0, :, :, c], 1.0, mode="constant", cval=0.5, truncate=2.0)
                         for c in range(3)], axis=-1)
    np.testing.assert_allclose(out[0], expected, atol=1e-5)


def test_any_operator_and_noise_model():
    measure = build_measurement("blur_gaussian:sigma=2", (16, 16, 1), noise="gaussian:sigma=0.05")
    x = np.zeros((2, 16, 16, 1), np.float32)
    y1, y2 = measure(x, 1).numpy(), measure(x, 2).numpy()
    assert np.std(y1) == pytest.approx(0.05, rel=0.15) and not np.allclose(y1, y2)


@pytest.mark.parametrize("spec, shape, pattern", [
    ("drop_patch:patch_size=28", (28, 28, 1), "patch .28 px. must be smaller than the image"),
    ("drop_patch:patch_size=40", (28, 28, 1), "patch .40 px. must be smaller"),
    ("drop_independent:p=1", (8, 8, 1), r"p must be in \[0, 1\)"),
    ("drop_independent:p=-0.1", (8, 8, 1), r"p must be in \[0, 1\)"),
    ("super_resolution:factor=2", (8, 8, 1), "keeps the image shape"),
    ("add_noise:std=abc", (8, 8, 1), "std must be a finite number"),
    ("blur_gaussian:sigma=-1", (8, 8, 1), "sigma"),
])
def test_bad_measurements_fail_in_one_line(spec, shape, pattern):
    with pytest.raises(InputError, match=pattern) as error:
        build_measurement(spec, shape)
    assert "\n" not in str(error.value)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as error:
        build_measurement("drop_independant", (8, 8, 1))
    message = str(error.value)
    assert "did you mean 'drop_independent'" in message
    assert all(name in message for name in ("drop_patch", "add_noise", "blur_gaussian", "identity"))
    with pytest.raises(UnknownNameError, match="valid: p, per_channel, rescale"):
        build_measurement("drop_independent:q=0.5", (8, 8, 1))
    with pytest.raises(UnknownNameError, match="gaussian"):
        build_measurement("drop_patch", (8, 8, 1), noise="gauss:sigma=1")
    with pytest.raises(InputError, match="own Gaussian noise"):
        build_measurement("add_noise", (8, 8, 1), noise="gaussian")
