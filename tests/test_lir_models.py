"""LIR's networks, custom layers, background module and VGG perceptual backbone against
independent NumPy / SciPy references."""

import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from tfinverse.errors import InputError
from tfinverse.losses.features import BackboneMissingError
from tfinverse.models import lir


@pytest.fixture(scope="module")
def nets():
    return lir.build_lir_networks(channels=3, seed=1)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("channels,size", [(3, (64, 64)), (1, (48, 80))])
def test_encoder_and_decoder_shapes(channels, size):
    h, w = size
    x = tf.random.uniform((2, h, w, channels), seed=0)
    enc = lir.build_content_encoder(channels, seed=0)
    noise = lir.build_noise_encoder(channels, seed=0)
    code, noise_code = enc(x), noise(x)
    assert code.shape == (2, h // 4, w // 4, 256)
    assert noise_code.shape == (2, h // 4, w // 4, 256)  # spatial, not a vector
    dec_cont = lir.build_content_decoder(channels, seed=0)
    dec_recs = lir.build_recs_decoder(channels, seed=0)
    out_c = dec_cont(code)
    out_r = dec_recs(tf.concat([code, noise_code], axis=-1))
    assert out_c.shape == out_r.shape == (2, h, w, channels)
    assert np.abs(out_c.numpy()).max() <= 1.0  # tanh


def test_decoder_widths_and_norms():
    dec_recs = lir.build_recs_decoder(3, seed=0)
    kernels = [dec_recs.get_layer(f"dec_recs_up{i}_conv").kernel.shape for i in range(2)]
    assert kernels == [(5, 5, 512, 256), (5, 5, 256, 128)]
    assert dec_recs.get_layer("dec_recs_out_conv").kernel.shape == (7, 7, 128, 3)
    assert isinstance(dec_recs.get_layer("dec_recs_up0_ln"), lir.LIRLayerNorm)
    dec_cont = lir.build_content_decoder(1, seed=0)
    assert dec_cont.get_layer("dec_cont_up1_conv").kernel.shape == (5, 5, 128, 64)
    assert dec_cont.get_layer("dec_cont_out_conv").kernel.shape == (7, 7, 64, 1)


def test_discriminator_shapes(nets):
    x = tf.random.uniform((2, 64, 64, 3), seed=1)
    outs = nets.dis_a(x)
    assert [tuple(o.shape) for o in outs] == [(2, 4, 4, 1), (2, 2, 2, 1), (2, 1, 1, 1)]
    widths = [nets.dis_a.get_layer(f"dis_a_s0_l{i}_conv").kernel.shape[-1] for i in range(4)]
    assert widths == [64, 128, 256, 512]
    code = nets.enc_cont_a(x)
    assert nets.dis_content(code).shape == (2, 1, 1, 1)
    assert nets.dis_content.get_layer("dis_content_l0_conv").kernel.shape == (3, 3, 256, 256)
    single = lir.build_image_discriminator(1, name="d", seed=0, **lir.DISCRIMINATOR_CONFIGS["noise2self"])
    outs = lir.scale_outputs(single(tf.zeros((1, 64, 64, 1))))
    assert lir.scale_outputs(nets.dis_b(x))[2].shape == (2, 1, 1, 1)
    assert len(outs) == 1 and outs[0].shape == (1, 4, 4, 1)
    assert single.get_layer("d_s0_l0_conv").kernel.shape == (4, 4, 1, 256)


def test_restorer_keeps_any_multiple_of_four(nets):
    x = tf.random.uniform((1, 36, 52, 3), seed=2)
    assert nets.restore(x).shape == (1, 36, 52, 3)


# ----------------------------------------------------------------------------- layers vs NumPy


def test_layer_norm_matches_numpy_reference():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 5, 6, 4)) * 3 + 2).astype(np.float32)
    layer = lir.LIRLayerNorm(seed=0)
    layer.build(x.shape)
    gamma = layer.gamma.numpy()
    assert gamma.min() >= 0 and gamma.max() <= 1 and np.ptp(gamma) > 0  # U(0, 1)
    assert np.all(layer.beta.numpy() == 0)
    beta = rng.normal(size=4).astype(np.float32)
    layer.beta.assign(beta)
    flat = x.reshape(3, -1).astype(np.float64)
    mean = flat.mean(1)[:, None, None, None]
    std = flat.std(1, ddof=1)[:, None, None, None]  # unbiased
    expected = (x - mean) / (std + 1e-5) * gamma + beta
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    # Keras' LayerNormalization (biased variance, eps under the root, last axis) differs.
    keras_ln = keras.layers.LayerNormalization(axis=[1, 2, 3])(x).numpy()
    assert np.abs(keras_ln - (x - mean) / (std + 1e-5)).max() > 1e-3


def _avg_pool_reference(x, k=3, s=2, p=1):
    n, h, w, c = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - p, j * s - p
            rows = [r for r in range(r0, r0 + k) if 0 <= r < h]
            cols = [q for q in range(c0, c0 + k) if 0 <= q < w]
            out[:, i, j] = x[:, rows][:, :, cols].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (1, 7, 10, 2)])
def test_avg_pool_excludes_padding(shape):
    x = np.random.default_rng(1).uniform(size=shape).astype(np.float32) + 1.0
    got = lir.AvgPoolExcludePad(3, 2, 1)(x).numpy()
    np.testing.assert_allclose(got, _avg_pool_reference(x), rtol=1e-6)
    # Counting the padding would pull the border windows toward 0.
    assert got[0, 0, 0, 0] > 1.0


def test_reflection_pad_matches_numpy():
    x = np.arange(2 * 5 * 6 * 2, dtype=np.float32).reshape(2, 5, 6, 2)
    got = lir.ReflectionPad2D(3)(x).numpy()
    np.testing.assert_array_equal(got, np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect"))
    assert got[0, 3, 2, 0] == x[0, 0, 1, 0]  # the edge pixel is not repeated


def test_resblock_identity_path_and_no_activation_after_add():
    enc = lir.build_content_encoder(3, seed=3)
    x = tf.random.uniform((2, 32, 32, 3), seed=3)
    probe = keras.Model(enc.input, [enc.get_layer("enc_cont_down1_relu").output,
                                    enc.get_layer("enc_cont_res0_add").output])
    conv = enc.get_layer("enc_cont_res0_b_conv")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    before, after = probe(x, training=False)
    np.testing.assert_allclose(after.numpy(), before.numpy(), atol=1e-6)  # zero residual -> identity
    # No ReLU after the add: the code takes negative values.
    assert enc(x, training=False).numpy().min() < 0


def test_batch_norm_has_pytorch_settings(nets):
    bn = nets.enc_cont_a.get_layer("enc_cont_a_c7s1_bn")
    assert bn.epsilon == 1e-5 and abs(bn.momentum - 0.9) < 1e-9 and bn.unbiased_moving_variance


def test_initialisation_statistics(nets):
    kernel = nets.enc_cont_a.get_layer("enc_cont_a_res0_a_conv").kernel.numpy()
    expected = np.sqrt(2.0 / (3 * 3 * 256))
    assert abs(kernel.std() / expected - 1) < 0.02
    assert abs(kernel.mean()) < 0.05 * expected
    assert np.abs(kernel).max() > 3.5 * expected  # untruncated normal, like PyTorch's
    dis_kernel = nets.dis_b.get_layer("dis_b_s0_l2_conv").kernel.numpy()
    assert abs(dis_kernel.std() / 0.02 - 1) < 0.02
    content = nets.dis_content.get_layer("dis_content_l1_conv").kernel.numpy()
    assert abs(content.std() / 0.02 - 1) < 0.02
    for model in (nets.enc_cont_a, nets.dec_cont_b, nets.dis_a):
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):
                assert not np.any(layer.bias.numpy()), layer.name
    # Different networks get different draws.
    a = nets.enc_cont_a.get_layer("enc_cont_a_c7s1_conv").kernel.numpy()
    b = nets.enc_cont_b.get_layer("enc_cont_b_c7s1_conv").kernel.numpy()
    assert not np.allclose(a, b)


def test_layer_names_are_stable():
    first = [layer.name for layer in lir.build_content_decoder(3, seed=0).layers]
    second = [layer.name for layer in lir.build_content_decoder(3, seed=5).layers]
    assert first == second and first[1] == "dec_cont_res0_a_pad"


# ----------------------------------------------------------------------------- background module


def test_background_blur_matches_scipy():
    x = np.random.default_rng(4).uniform(size=(2, 40, 36, 3)).astype(np.float32)
    module = lir.BackgroundModule()
    for i, k in enumerate(lir.BACKGROUND_KERNEL_SIZES):
        reference = scipy.ndimage.gaussian_filter(x.astype(np.float64), sigma=(0, 25, 25, 0),
                                                  radius=(0, k // 2, k // 2, 0), mode="mirror")
        np.testing.assert_allclose(module.blur(x, i).numpy(), reference, atol=2e-6)


def test_background_loss_matches_formula():
    rng = np.random.default_rng(5)
    x_ab, x_a, x_ba, x_b = (rng.uniform(size=(2, 32, 32, 1)) for _ in range(4))
    expected = 0.0
    for k, w in zip((5, 9, 15), (0.25, 0.5, 1.0)):
        def blur(v):
            return scipy.ndimage.gaussian_filter(v, sigma=(0, 25, 25, 0), radius=(0, k // 2, k // 2, 0),
                                                 mode="mirror")
        expected += w * (np.abs(blur(x_ab) - blur(x_a)).mean() + np.abs(blur(x_ba) - blur(x_b)).mean())
    got = lir.background_loss(*(tf.constant(v, tf.float32) for v in (x_ab, x_a, x_ba, x_b)))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


# ----------------------------------------------------------------------------- VGG


def test_caffe_preprocessing_matches_numpy():
    rgb = np.random.default_rng(6).uniform(size=(2, 4, 5, 3)).astype(np.float32)
    expected = rgb[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])
    np.testing.assert_allclose(lir.caffe_preprocess(rgb).numpy(), expected, rtol=1e-5, atol=1e-4)
    grey = rgb[..., :1]
    expected_grey = np.repeat(grey, 3, axis=-1) * 255.0 - np.array([103.939, 116.779, 123.68])
    np.testing.assert_allclose(lir.caffe_preprocess(grey).numpy(), expected_grey, rtol=1e-5, atol=1e-4)


def test_instance_normalize_matches_numpy():
    x = np.random.default_rng(7).normal(size=(2, 6, 5, 3)).astype(np.float32) * 4 + 1
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(lir.instance_normalize(x).numpy(), (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    keras.utils.set_random_seed(8)
    vgg = keras.applications.VGG19(weights=None, include_top=False, input_shape=(None, None, 3))
    path = str(tmp_path_factory.mktemp("vgg") / "vgg19.weights.h5")
    vgg.save_weights(path)
    return vgg, path


def test_vgg_truncated_at_conv4_1_before_relu(vgg_file):
    vgg, path = vgg_file
    model = lir.build_vgg19_conv4_1(path)
    last = model.layers[-1]
    assert isinstance(last, keras.layers.Conv2D) and last.name == "block4_conv1"
    assert last.activation is keras.activations.linear
    assert model.get_layer("block3_conv4") is not None and model.get_layer("block3_pool") is not None
    x = lir.caffe_preprocess(tf.random.uniform((1, 32, 32, 3), seed=9))
    ours = model(x).numpy()
    keras_relu = keras.Model(vgg.input, vgg.get_layer("block4_conv1").output)(x).numpy()
    assert ours.shape == (1, 4, 4, 512) and ours.min() < 0
    np.testing.assert_allclose(np.maximum(ours, 0), keras_relu, rtol=1e-4, atol=1e-4)
    assert not model.trainable_weights


def test_perceptual_loss_with_and_without_weights(vgg_file):
    _, path = vgg_file
    loss = lir.lir_perceptual_loss(path)
    assert loss.available
    a = tf.random.uniform((2, 32, 32, 3), seed=10)
    assert float(loss(a, a)) == 0.0 and float(loss(a, 1.0 - a)) > 0.0
    missing = lir.lir_perceptual_loss(None)
    assert not missing.available and "\n" not in lir.VGG_UNAVAILABLE_MESSAGE
    with pytest.raises(BackboneMissingError):
        missing(a, a)


def test_wrong_vgg_weights_are_refused(tmp_path):
    vgg16 = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    wrong = str(tmp_path / "vgg16.weights.h5")
    vgg16.save_weights(wrong)
    tiny = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 3, name="block1_conv1")])
    legacy = str(tmp_path / "tiny.h5")
    tiny.save(legacy)  # legacy HDF5: tried by topology, then by layer name
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    for path in (wrong, legacy, str(junk)):
        with pytest.raises(InputError) as info:
            lir.build_vgg19_conv4_1(path)
        assert "\n" not in str(info.value) and "not a VGG19 weights file" in str(info.value)
    with pytest.raises(InputError):
        lir.build_vgg19_conv4_1(str(tmp_path / "absent.h5"))
