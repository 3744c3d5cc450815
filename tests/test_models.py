"""Generative priors: the common interface, DCGAN, BEGAN, PGGAN and their shared layers.

References are independent: numpy/scipy re-computations of the layers and of the original
PGGAN blocks, closed forms (He constant, parameter counts, BEGAN control law, WGAN-GP on
critics with known gradients) and distribution tests with scipy.stats.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import signal, stats

from tfinverse import models
from tfinverse.models import (
    BEGANGenerator,
    BEGANState,
    DCGANGenerator,
    EqualizedConv2D,
    EqualizedDense,
    KerasGenerator,
    MinibatchStdDev,
    PGGANDiscriminatorNetwork,
    PGGANGenerator,
    PixelNorm,
)

# ----------------------------------------------------------------- small fixtures


def small_dcgan(resolution=32, channels=3, **kwargs):
    return DCGANGenerator(resolution, channels, base_filters=8, **kwargs)


def small_began(**kwargs):
    return BEGANGenerator(32, 3, latent_dim=16, num_filters=8, **kwargs)


def small_pggan(**kwargs):
    return PGGANGenerator(32, latent_dim=16, fmap_base=64, fmap_max=16, **kwargs)


def small_original_pggan(**kwargs):
    return PGGANGenerator.from_original_layout(16, latent_dim=8, fmap_base=32, fmap_max=8, **kwargs)


def sigmoid_keras_generator():
    network = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4 * 4 * 2),
            keras.layers.Reshape((4, 4, 2)),
            keras.layers.Activation("sigmoid"),
        ]
    )
    return KerasGenerator(network, 6, "normal", output_range=(0.0, 1.0))


GENERATOR_FACTORIES = {
    "dcgan32": (small_dcgan, (32, 32, 3), "uniform"),
    "dcgan28": (lambda: small_dcgan(28, 1), (28, 28, 1), "uniform"),
    "began32": (small_began, (32, 32, 3), "uniform"),
    "pggan32": (small_pggan, (32, 32, 3), "normal"),
    "pggan_original16": (small_original_pggan, (16, 16, 3), "normal"),
    "keras": (sigmoid_keras_generator, (4, 4, 2), "normal"),
}


@pytest.fixture(scope="module")
def generators():
    return {name: factory() for name, (factory, _, _) in GENERATOR_FACTORIES.items()}


def leaky(x):
    return np.where(x >= 0, x, 0.2 * x)


def correlate_valid(x_nhwc, kernel_oihw):
    """Multi-channel 'valid' cross-correlation with scipy, NHWC in / out."""
    n, h, w, c_in = x_nhwc.shape
    c_out, c_in_k, kh, kw = kernel_oihw.shape
    assert c_in == c_in_k
    out = np.zeros((n, h - kh + 1, w - kw + 1, c_out))
    for b in range(n):
        for o in range(c_out):
            for i in range(c_in):
                out[b, :, :, o] += signal.correlate2d(x_nhwc[b, :, :, i], kernel_oihw[o, i], mode="valid")
    return out


def pad_hw(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


# ----------------------------------------------------------------- interface


@pytest.mark.parametrize("name", list(GENERATOR_FACTORIES))
def test_interface_shapes_range_and_description(generators, name):
    g = generators[name]
    _, shape, distribution = GENERATOR_FACTORIES[name]
    assert isinstance(g, models.Generator)
    assert g.output_shape == shape
    assert g.latent_distribution == distribution
    z = g.sample_latent(3, seed=1)
    assert z.dtype == np.float32 and z.shape == (3, g.latent_dim)
    x = g(z)
    assert x.dtype == tf.float32
    assert tuple(x.shape) == (3, *shape)
    x = x.numpy()
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.std(x) > 0  # not a constant image


@pytest.mark.parametrize("name", ["dcgan32", "began32", "pggan32"])
def test_native_range_is_mapped_affinely(generators, name):
    g = generators[name]
    z = g.sample_latent(2, seed=2)
    native = g.network(z, training=False).numpy()
    expected = np.clip((native + 1.0) / 2.0, 0.0, 1.0)
    np.testing.assert_allclose(g(z).numpy(), expected, atol=1e-6)
    assert np.allclose(g.from_unit_range(g.to_unit_range(tf.constant([[-0.5, 0.25]]))), [[-0.5, 0.25]])


def test_dcgan_output_is_tanh_so_unclipped_map_stays_in_unit_range(generators):
    g = generators["dcgan32"]
    assert g.network.layers[-1].get_config()["activation"] == "tanh"
    z = g.sample_latent(4, seed=3)
    native = g.network(z).numpy()
    assert np.abs(native).max() <= 1.0


def test_unclipped_pggan_output_can_leave_unit_range():
    g = small_pggan(clip_output=False)
    z = g.sample_latent(4, seed=0)
    native = g.network(z).numpy()
    assert native.min() < -1.0 or native.max() > 1.0  # an untrained PGGAN is unbounded
    np.testing.assert_allclose(g(z).numpy(), (native + 1) / 2, atol=1e-6)


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_sample_latent_distribution_and_determinism(distribution):
    draw = models.sample_latent(4000, 5, distribution, seed=7)
    assert draw.dtype == np.float32 and draw.shape == (4000, 5)
    flat = draw.ravel().astype(np.float64)
    if distribution == "uniform":
        assert flat.min() >= -1 and flat.max() <= 1
        p_value = stats.kstest(flat, stats.uniform(loc=-1, scale=2).cdf).pvalue
    else:
        p_value = stats.kstest(flat, "norm").pvalue
    assert p_value > 1e-3
    np.testing.assert_array_equal(draw, models.sample_latent(4000, 5, distribution, seed=7))
    assert not np.array_equal(draw, models.sample_latent(4000, 5, distribution, seed=8))
    rng_draw = models.sample_latent(10, 5, distribution, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(rng_draw, draw[:10])


@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_stateless_tf_latents_work_in_tf_function(distribution):
    @tf.function
    def draw(seed):
        return models.sample_latent(3000, 4, distribution, seed)

    a = draw(tf.constant([1, 2])).numpy()
    b = draw(tf.constant([1, 2])).numpy()
    c = draw(tf.constant([1, 3])).numpy()
    assert a.dtype == np.float32 and a.shape == (3000, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    reference = stats.uniform(loc=-1, scale=2).cdf if distribution == "uniform" else "norm"
    assert stats.kstest(a.ravel().astype(np.float64), reference).pvalue > 1e-3


def test_sample_latent_rejects_bad_arguments(generators):
    g = generators["dcgan32"]
    with pytest.raises(TypeError, match="seed"):
        g.sample_latent(2, None)
    with pytest.raises(ValueError, match="latent_distribution"):
        models.sample_latent(2, 3, "laplace", 0)
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        models.sample_latent(2, 3, "normal", tf.constant([1, 2, 3]))
    with pytest.raises(ValueError, match="non-negative"):
        models.sample_latent(-1, 3, "normal", 0)


def test_wrong_latent_shape_raises(generators):
    g = generators["dcgan32"]
    with pytest.raises(ValueError, match=r"\[n, 100\]"):
        g(np.zeros((2, 99), np.float32))
    with pytest.raises(ValueError, match=r"\[n, 100\]"):
        g(np.zeros((100,), np.float32))


def test_keras_generator_rejects_non_models_and_non_images():
    with pytest.raises(TypeError, match="keras.Model"):
        KerasGenerator(lambda z: z, 3, "normal")
    flat = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match=r"\[n, H, W, C\]"):
        KerasGenerator(flat, 3, "normal")
    image_net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Reshape((2, 2, 1))])
    with pytest.raises(ValueError, match="latent_distribution"):
        KerasGenerator(image_net, 3, "cauchy")
    with pytest.raises(ValueError, match="output_range"):
        KerasGenerator(image_net, 3, "normal", output_range=(1.0, 1.0))


@pytest.mark.parametrize("name", list(GENERATOR_FACTORIES))
def test_copy_is_independent(generators, name):
    g = generators[name]
    z = g.sample_latent(2, seed=4)
    before = g(z).numpy()
    duplicate = g.copy()
    assert type(duplicate) is type(g)
    np.testing.assert_array_equal(duplicate(z).numpy(), before)
    original_ids = {id(v) for v in g.variables}
    assert not original_ids & {id(v) for v in duplicate.variables}
    for variable in duplicate.trainable_variables:
        variable.assign(variable + tf.random.stateless_normal(variable.shape, [5, 6]) * 0.5)
    np.testing.assert_array_equal(g(z).numpy(), before)
    assert not np.allclose(duplicate(z).numpy(), before)


@pytest.mark.parametrize("name", list(GENERATOR_FACTORIES))
def test_every_trainable_variable_gets_a_gradient(generators, name):
    g = generators[name].copy()
    z = tf.constant(g.sample_latent(4, seed=5))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(g(z) - 0.5))
    gradients = tape.gradient(loss, g.trainable_variables)
    assert len(gradients) > 0
    assert all(grad is not None for grad in gradients)
    # latent recovery (CSGM, LVR) optimises z itself as a variable
    z_variable = tf.Variable(z)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(g(z_variable) - 0.5))
    z_gradient = tape.gradient(loss, z_variable)
    assert z_gradient is not None and np.any(z_gradient.numpy() != 0)


def test_generator_runs_inside_tf_function(generators):
    g = generators["began32"]

    @tf.function
    def generate(seed):
        return g(g.sample_latent(2, seed))

    images = generate(tf.constant([3, 4]))
    expected = g(models.sample_latent(2, g.latent_dim, "uniform", tf.constant([3, 4])))
    np.testing.assert_allclose(images.numpy(), expected.numpy(), atol=1e-6)


# ----------------------------------------------------------------- DCGAN


def test_dcgan_layout_per_resolution():
    assert models.dcgan_generator_layout(64) == (4, (512, 256, 128, 64))
    assert models.dcgan_generator_layout(32) == (2, (512, 256, 128, 64))
    assert models.dcgan_generator_layout(28) == (7, (128, 64))
    with pytest.raises(ValueError, match="divisible"):
        models.dcgan_generator_layout(30, num_upsamplings=2)


def test_dcgan_64_parameter_count_matches_closed_form():
    z_dim, channels = 100, 3
    network = models.build_dcgan_generator(64, channels, z_dim)
    dense = (z_dim + 1) * 4 * 4 * 512
    ladder = [512, 256, 128, 64, channels]
    deconvs = sum(5 * 5 * c_in * c_out + c_out for c_in, c_out in zip(ladder[:-1], ladder[1:]))
    batch_norm = 4 * sum(ladder[:-1])  # gamma, beta, moving mean, moving variance
    assert network.count_params() == dense + deconvs + batch_norm == 5_137_283
    assert network.output_shape == (None, 64, 64, 3)
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            assert layer.kernel_size == (5, 5) and layer.strides == (2, 2)
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == 0.9


def test_dcgan_discriminator_structure_and_logit():
    network = models.build_dcgan_discriminator(28, 1, base_filters=8)
    convs = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [8, 16, 32, 64]
    assert all(c.kernel_size == (5, 5) and c.strides == (2, 2) for c in convs)
    norms = [layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 3  # no batch norm after the first conv
    # 28 -> 14 -> 7 -> 4 -> 2: dense input is 2 * 2 * 64
    assert network.layers[-1].kernel.shape == (2 * 2 * 64, 1)
    logits = network(np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32))
    assert logits.shape == (3, 1)


def test_dcgan_batch_statistics_mode_matches_training_mode_without_updates():
    g = small_dcgan()
    z = g.sample_latent(6, seed=9)
    bn = [layer for layer in g.network.layers if isinstance(layer, keras.layers.BatchNormalization)]
    moving_before = [layer.moving_mean.numpy().copy() for layer in bn]
    batch_mode = g(z, batch_statistics=True).numpy()
    for layer, before in zip(bn, moving_before):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), before)
    inference = g(z).numpy()
    assert not np.allclose(batch_mode, inference, atol=1e-3)
    # Keras training mode uses the same batch statistics (and also updates the averages).
    training = g.copy()(z, training=True).numpy()
    np.testing.assert_allclose(batch_mode, training, atol=2e-5)
    # the flag set at construction gives the same mode
    flagged = DCGANGenerator(32, 3, base_filters=8, batch_statistics=True)
    np.testing.assert_allclose(flagged(z).numpy(), batch_mode, atol=1e-6)


def test_dcgan_first_layer_batch_statistics_against_numpy():
    g = small_dcgan()
    z = g.sample_latent(5, seed=10)
    dense, reshape, bn = g.network.layers[:3]
    projected = z @ dense.kernel.numpy() + dense.bias.numpy()
    grid = projected.reshape(5, *reshape.target_shape)
    mean, var = grid.mean(axis=(0, 1, 2)), grid.var(axis=(0, 1, 2))
    expected = (grid - mean) / np.sqrt(var + 1e-5) * bn.gamma.numpy() + bn.beta.numpy()
    first_three = keras.Sequential(g.network.layers[:3])
    got = models.forward_with_batch_statistics(first_three, tf.constant(z))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


# ----------------------------------------------------------------- BEGAN


def test_began_architecture():
    assert models.began_num_repeats(128) == 5
    assert models.began_num_repeats(32) == 3
    with pytest.raises(ValueError, match="8 \\* 2\\^k"):
        models.began_num_repeats(48)
    decoder = models.build_began_decoder(32, 3, input_dim=16, num_filters=8)
    assert decoder.layers[0].units == 8 * 8 * 8
    ups = [layer for layer in decoder.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert len(ups) == 2 and all(layer.interpolation == "nearest" for layer in ups)
    convs = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [c.get_config()["activation"] for c in convs] == ["elu"] * 6 + ["linear"]
    encoder = models.build_began_encoder(32, 3, embedding_dim=16, num_filters=8)
    strided = [
        layer
        for layer in encoder.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2)
    ]
    assert [c.filters for c in strided] == [16, 24]  # (i + 2) n: filters grow linearly
    discriminator = models.build_began_discriminator(32, 3, embedding_dim=16, num_filters=8)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    assert discriminator(x).shape == x.shape
    assert discriminator.get_layer("began_encoder")(x).shape == (2, 16)


def test_began_control_law_on_hand_made_numbers():
    k_next = models.update_k(0.5, loss_real=0.2, loss_fake=0.05, gamma=0.5, lambda_k=1e-3)
    assert float(k_next) == pytest.approx(0.5 + 1e-3 * (0.5 * 0.2 - 0.05))
    assert float(models.update_k(0.9995, 1.0, 0.0, lambda_k=1e-3)) == 1.0  # 0.9995 + 5e-4 clipped
    assert float(models.update_k(0.0002, 0.1, 0.5, lambda_k=1e-3)) == 0.0  # 0.0002 - 4.5e-4 clipped
    assert float(models.convergence_measure(0.2, 0.05, gamma=0.5)) == pytest.approx(0.25)
    assert float(models.convergence_measure(0.2, 0.3, gamma=0.5)) == pytest.approx(0.4)

    rng = np.random.default_rng(2)
    x, dx, gz, dgz = (rng.normal(size=(2, 4, 4, 3)).astype(np.float32) for _ in range(4))
    losses = models.began_losses(x, dx, gz, dgz, k_t=0.25)
    l_real, l_fake = np.abs(x - dx).mean(), np.abs(gz - dgz).mean()
    assert float(losses["loss_real"]) == pytest.approx(l_real, rel=1e-6)
    assert float(losses["loss_fake"]) == pytest.approx(l_fake, rel=1e-6)
    assert float(losses["discriminator_loss"]) == pytest.approx(l_real - 0.25 * l_fake, rel=1e-5)
    assert float(losses["generator_loss"]) == pytest.approx(l_fake, rel=1e-6)
    assert float(models.autoencoder_loss(x, dx, "sum")) == pytest.approx(np.abs(x - dx).sum(), rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        models.autoencoder_loss(x, dx[:1])


def test_began_state_tracks_k_and_m_global():
    state = BEGANState(gamma=0.5, lambda_k=0.1, k_initial=0.0)
    k, m = state.update(tf.constant(0.4), tf.constant(0.1))
    assert float(k) == pytest.approx(0.1 * (0.2 - 0.1))
    assert float(m) == pytest.approx(0.4 + 0.1)
    k, _ = state.update(0.4, 0.1)
    assert float(state.k) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="gamma"):
        BEGANState(gamma=1.5)


# ----------------------------------------------------------------- shared layers


def test_he_constant_and_equalized_conv_against_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 6, 5)).astype(np.float32)
    layer = EqualizedConv2D(4, 3, padding=1, seed=1)
    y = layer(x).numpy()
    he = math.sqrt(2.0) / math.sqrt(3 * 3 * 5)
    assert layer.runtime_scale == pytest.approx(he)
    layer.bias.assign(rng.normal(size=4).astype(np.float32))
    y = layer(x).numpy()
    kernel_oihw = np.transpose(layer.kernel.numpy(), (3, 2, 0, 1))
    expected = correlate_valid(pad_hw(x.astype(np.float64), 1), kernel_oihw * he) + layer.bias.numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # the stored kernel is N(0, 1): equalized learning rate keeps unit-scale parameters
    assert abs(layer.kernel.numpy().std() - 1.0) < 0.2
    assert len(layer.trainable_variables) == 2  # the scale is a constant, not a weight


def test_equalized_layers_preserve_he_variance():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(256, 400)).astype(np.float32)
    dense = EqualizedDense(300, seed=2)
    y = dense(x).numpy()
    np.testing.assert_allclose(y, x @ dense.kernel.numpy() * math.sqrt(2.0 / 400), rtol=1e-4, atol=1e-4)
    assert np.var(y) == pytest.approx(2.0, rel=0.1)  # He: Var(out) = gain^2 Var(in)
    linear = EqualizedDense(300, gain=1.0, seed=2)
    assert np.var(linear(x).numpy()) == pytest.approx(1.0, rel=0.1)


def test_trainable_scale_is_wscale():
    layer = EqualizedConv2D(2, 1, padding=0, trainable_scale=True, seed=0)
    x = np.random.default_rng(5).normal(size=(1, 3, 3, 4)).astype(np.float32)
    layer.build(x.shape)
    assert layer.scale.numpy()[0] == pytest.approx(math.sqrt(2.0 / 4))
    layer.scale.assign([3.0])
    layer.bias.assign([1.0, -1.0])
    expected = np.einsum("nhwi,io->nhwo", x, layer.kernel.numpy()[0, 0]) * 3.0 + np.array([1.0, -1.0])
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert len(layer.trainable_variables) == 3


def test_pixel_norm_against_numpy():
    x = np.random.default_rng(6).normal(size=(2, 3, 3, 7)).astype(np.float32) * 5
    expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(PixelNorm()(x).numpy(), expected, rtol=1e-5)


def minibatch_stddev_numpy(x, group_size):
    n = x.shape[0]
    g = min(group_size, n)
    m = n // g
    out_feature = np.zeros((n,) + x.shape[1:3] + (1,))
    for subgroup in range(m):
        members = [subgroup + j * m for j in range(g)]  # strided grouping
        values = x[members].astype(np.float64)
        std = np.sqrt(values.var(axis=0) + 1e-8)
        out_feature[members] = std.mean()
    return np.concatenate([x, out_feature], axis=-1)


@pytest.mark.parametrize("batch,group", [(8, 4), (2, 4), (6, 3)])
def test_minibatch_stddev_against_numpy(batch, group):
    x = np.random.default_rng(batch).normal(size=(batch, 4, 4, 3)).astype(np.float32)
    got = MinibatchStdDev(group)(x).numpy()
    np.testing.assert_allclose(got, minibatch_stddev_numpy(x, group), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="divisible"):
        MinibatchStdDev(4)(np.zeros((6, 4, 4, 2), np.float32))


# ----------------------------------------------------------------- PGGAN


def test_pggan_channel_ladder_at_1024_matches_the_original():
    ladder = [models.pggan_num_filters(level) for level in range(9)]
    assert ladder == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert models.pggan_num_levels(1024) == 9
    with pytest.raises(ValueError, match="power of two"):
        models.pggan_num_levels(96)
    g = PGGANGenerator.from_original_layout()
    spec = g.original_state_dict_spec()
    assert len(spec) == 3 * 19
    assert spec["features.0.conv.weight"] == (512, 512, 4, 4)
    assert spec["features.8.conv.weight"] == (256, 512, 3, 3)
    assert spec["features.17.conv.weight"] == (16, 16, 3, 3)
    assert spec["output.conv.weight"] == (3, 16, 1, 1)
    assert spec["features.3.wscale.scale"] == (1,) and spec["features.3.wscale.b"] == (512,)
    assert g.output_shape == (1024, 1024, 3) and g.latent_dim == 512
    assert g.latent_distribution == "normal"


def test_pggan_fade_in_generator():
    g = small_pggan()
    z = g.sample_latent(2, seed=11)
    g.level = 1
    low = g.network(z).numpy()  # 8x8 at alpha = 1
    g.level = 2
    g.set_alpha(0.0)
    faded_out = g.network(z).numpy()
    np.testing.assert_allclose(faded_out, low.repeat(2, axis=1).repeat(2, axis=2), atol=1e-5)
    g.set_alpha(1.0)
    new_level = g.network(z).numpy()
    h = tf.reshape(z, [-1, 1, 1, 16])
    for block in g.network.features[:6]:
        h = block(h)
    np.testing.assert_allclose(new_level, g.network.to_rgb[2](h).numpy(), atol=1e-5)
    g.set_alpha(0.3)
    np.testing.assert_allclose(g.network(z).numpy(), 0.7 * faded_out + 0.3 * new_level, atol=1e-5)
    assert g.output_shape == (16, 16, 3)
    with pytest.raises(ValueError, match="level"):
        g.level = 4
    with pytest.raises(ValueError, match="alpha"):
        g.set_alpha(1.5)


def test_pggan_alpha_changes_without_retracing():
    g = small_pggan()
    g.level = 1
    z = tf.constant(g.sample_latent(2, seed=12))
    traces = []

    @tf.function
    def generate(latents):
        traces.append(1)
        return g(latents)

    g.set_alpha(0.0)
    first = generate(z).numpy()
    g.set_alpha(1.0)
    second = generate(z).numpy()
    assert len(traces) == 1
    assert not np.allclose(first, second)


def test_pggan_fade_in_discriminator():
    d = PGGANDiscriminatorNetwork(16, fmap_base=64, fmap_max=16)
    x = np.random.default_rng(13).normal(size=(4, 16, 16, 3)).astype(np.float32)
    pooled = x.reshape(4, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    d.level = 1
    low = d(pooled).numpy()
    d.level = 2
    d.set_alpha(0.0)
    np.testing.assert_allclose(d(x).numpy(), low, rtol=1e-4, atol=1e-5)
    d.set_alpha(1.0)
    assert d(x).shape == (4, 1)
    with pytest.raises(ValueError, match=r"\[n, 16, 16, 3\]"):
        d(pooled)


def test_wgan_gp_on_linear_critic_has_known_norm():
    rng = np.random.default_rng(14)
    weights = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)

    def critic(images):
        return tf.reduce_sum(images * weights, axis=[1, 2, 3])[:, None]

    real = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    fake = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    penalty = models.gradient_penalty(critic, real, fake, seed=[1, 2])
    assert float(penalty) == pytest.approx((np.linalg.norm(weights) - 1.0) ** 2, rel=1e-4)
    unit = weights / np.linalg.norm(weights)
    def unit_critic(images):
        return tf.reduce_sum(images * unit, axis=[1, 2, 3])

    assert float(models.gradient_penalty(unit_critic, real, fake, seed=[1, 2])) < 1e-8
    with pytest.raises(ValueError, match="seed"):
        models.gradient_penalty(critic, real, fake)


def test_wgan_gp_on_quadratic_critic_with_given_interpolation():
    rng = np.random.default_rng(15)
    real = rng.normal(size=(4, 3, 3, 1)).astype(np.float32)
    fake = rng.normal(size=(4, 3, 3, 1)).astype(np.float32)
    u = np.array([0.0, 0.25, 0.5, 1.0], np.float32)

    def critic(images):  # D(x) = ||x||^2 / 2, grad D = x
        return 0.5 * tf.reduce_sum(tf.square(images), axis=[1, 2, 3])

    x_hat = real + u[:, None, None, None] * (fake - real)
    norms = np.linalg.norm(x_hat.reshape(4, -1), axis=1)
    penalty = models.gradient_penalty(critic, real, fake, interpolation_weights=u)
    assert float(penalty) == pytest.approx(np.mean((norms - 1.0) ** 2), rel=1e-5)


def test_wgan_gp_loss_terms():
    real = np.array([[1.0], [3.0]], np.float32)
    fake = np.array([[-2.0], [0.0]], np.float32)
    loss = models.wgan_gp_discriminator_loss(real, fake, penalty=0.5)
    # E[fake] - E[real] + 10 * 0.5 + 1e-3 * E[real^2]
    assert float(loss) == pytest.approx(-1.0 - 2.0 + 5.0 + 1e-3 * 5.0)
    assert float(models.wgan_generator_loss(fake)) == pytest.approx(1.0)


def test_pggan_critic_gradient_penalty_is_differentiable():
    d = PGGANDiscriminatorNetwork(8, fmap_base=32, fmap_max=8)
    rng = np.random.default_rng(16)
    real, fake = (rng.normal(size=(4, 8, 8, 3)).astype(np.float32) for _ in range(2))
    with tf.GradientTape() as tape:
        penalty = models.gradient_penalty(d, real, fake, seed=[0, 1])
    gradients = tape.gradient(penalty, d.trainable_variables)
    assert sum(grad is not None for grad in gradients) > 0


# ----------------------------------------------------------------- original PGGAN state dict


def random_original_state_dict(generator, seed=0):
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in generator.original_state_dict_spec().items():
        if key.endswith(".scale"):
            state[key] = rng.uniform(0.05, 0.3, size=shape).astype(np.float32)
        else:
            state[key] = rng.normal(size=shape).astype(np.float32) * (0.3 if key.endswith(".b") else 1.0)
    return state


def original_block_numpy(x, state, prefix, padding, upsample, activation=True):
    """The PyTorch NormConvBlock / NormUpscaleConvBlock / output block, in numpy (NHWC)."""
    x = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-8)
    if upsample:
        x = x.repeat(2, axis=1).repeat(2, axis=2)
    y = correlate_valid(pad_hw(x, padding), state[f"{prefix}.conv.weight"].astype(np.float64))
    y = y * state[f"{prefix}.wscale.scale"][0] + state[f"{prefix}.wscale.b"]
    return leaky(y) if activation else y


def test_original_layout_keys_follow_the_pytorch_module_names():
    g = small_original_pggan()
    keys = list(g.original_state_dict_spec())
    assert keys[:3] == ["features.0.conv.weight", "features.0.wscale.scale", "features.0.wscale.b"]
    assert keys[-3:] == ["output.conv.weight", "output.wscale.scale", "output.wscale.b"]
    assert len(keys) == 3 * (2 * 3 + 1)  # 16x16: three levels of two blocks, plus output
    # WScale scales are trainable (IAGAN fine-tunes every generator parameter)
    assert len(g.trainable_variables) == len(keys)
    with pytest.raises(ValueError, match="top level"):
        g.level = 0


def test_load_original_state_dict_matches_numpy_blocks():
    g = small_original_pggan()
    state = random_original_state_dict(g)
    g.load_original_state_dict(state)
    rng = np.random.default_rng(17)

    # one up-sampling block (features.2: PN, nearest x2, 3x3 conv pad 1, WScale, leaky)
    x = rng.normal(size=(2, 4, 4, 8))
    got = g.network.features[2](x.astype(np.float32)).numpy()
    expected_block = original_block_numpy(x, state, "features.2", 1, True)
    np.testing.assert_allclose(got, expected_block, rtol=1e-4, atol=1e-4)

    # the whole network: 4x4 conv with padding 3 on the 1x1 latent, ..., output block, no tanh
    z = g.sample_latent(2, seed=18).astype(np.float64)
    h = z[:, None, None, :]
    for index in range(6):
        padding, upsample = (3, False) if index == 0 else (1, index % 2 == 0)
        h = original_block_numpy(h, state, f"features.{index}", padding, upsample)
    expected = original_block_numpy(h, state, "output", 0, False, activation=False)
    native = g.network(z.astype(np.float32)).numpy()
    np.testing.assert_allclose(native, expected, rtol=1e-3, atol=1e-4)
    unit = np.clip((expected + 1) / 2, 0, 1)
    np.testing.assert_allclose(g(z.astype(np.float32)).numpy(), unit, atol=1e-4)


def test_load_original_state_dict_refuses_bad_dicts_and_assigns_nothing():
    g = small_original_pggan()
    z = g.sample_latent(1, seed=19)
    before = g(z).numpy()
    good = random_original_state_dict(g, seed=1)

    missing = dict(good)
    del missing["features.3.wscale.b"]
    with pytest.raises(ValueError, match="missing keys.*features.3.wscale.b"):
        g.load_original_state_dict(missing)

    extra = dict(good, **{"features.9.conv.weight": np.zeros((1, 1, 1, 1), np.float32)})
    with pytest.raises(ValueError, match="unexpected keys.*features.9.conv.weight"):
        g.load_original_state_dict(extra)

    wrong = dict(good)
    wrong["features.1.conv.weight"] = np.zeros((8, 8, 1, 3), np.float32)
    with pytest.raises(ValueError, match=r"features.1.conv.weight.*\(8, 8, 3, 3\)"):
        g.load_original_state_dict(wrong)
    np.testing.assert_array_equal(g(z).numpy(), before)

    with pytest.raises(ValueError, match="original layout"):
        small_pggan().load_original_state_dict(good)
