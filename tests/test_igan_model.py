"""igan networks: TF1 resizing against numpy, the estimator and discriminator layouts,
the forward models (clean estimate, dual mapping, toy affine maps) and the SavedModel export."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse.models import igan
from tfinverse.tasks.igan_tasks import get_task


# ----------------------------------------------------------------------------- numpy references
def tf1_bilinear_reference(images, out_h, out_w):
    """TF1 bilinear sampling: output i reads input i * in / out, upper neighbour clamped."""
    images = np.asarray(images, np.float64)
    n, h, w, c = images.shape
    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        fy = i * h / out_h
        y0 = int(np.floor(fy))
        y1, dy = min(y0 + 1, h - 1), fy - y0
        for j in range(out_w):
            fx = j * w / out_w
            x0 = int(np.floor(fx))
            x1, dx = min(x0 + 1, w - 1), fx - x0
            top = images[:, y0, x0] * (1 - dx) + images[:, y0, x1] * dx
            bottom = images[:, y1, x0] * (1 - dx) + images[:, y1, x1] * dx
            out[:, i, j] = top * (1 - dy) + bottom * dy
    return out


def keys_cubic(x, a=-0.75):
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def tf1_bicubic_reference(images, out_h, out_w):
    """TF1 bicubic: sample at i * in / out, Keys kernel a = -0.75, indices clamped; TF reads
    the kernel from a 1024-entry table, so the fraction is rounded to 1/1024."""
    images = np.asarray(images, np.float64)
    n, h, w, c = images.shape

    def taps(i, size_in, size_out):
        f = i * size_in / size_out
        i0 = int(np.floor(f))
        t = np.rint((f - i0) * 1024) / 1024
        idx = [min(max(i0 + k, 0), size_in - 1) for k in (-1, 0, 1, 2)]
        wts = [keys_cubic(1 + t), keys_cubic(t), keys_cubic(1 - t), keys_cubic(2 - t)]
        return idx, wts

    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        yi, yw = taps(i, h, out_h)
        for j in range(out_w):
            xi, xw = taps(j, w, out_w)
            for a, wa in zip(yi, yw):
                for b, wb in zip(xi, xw):
                    out[:, i, j] += wa * wb * images[:, a, b]
    return out


# ----------------------------------------------------------------------------- resizing
def test_bilinear_resize_matches_tf1_sampling_not_tf2():
    images = np.random.default_rng(0).random((2, 4, 5, 3)).astype(np.float32)
    for out_h, out_w in ((8, 10), (7, 3), (4, 5)):
        got = igan.resize_bilinear_tf1(images, (out_h, out_w)).numpy()
        np.testing.assert_allclose(got, tf1_bilinear_reference(images, out_h, out_w), atol=1e-5)
    # TF2's half-pixel resize differs, so the test above really checks the TF1 convention.
    tf2 = tf.image.resize(images, (8, 10), method="bilinear").numpy()
    assert np.abs(tf2 - tf1_bilinear_reference(images, 8, 10)).max() > 0.05


def test_bilinear_x2_keeps_even_pixels_and_averages_between():
    # Closed form of x2 TF1 upsampling: even outputs copy inputs, odd ones average neighbours.
    row = np.array([0.0, 1.0, 4.0, 9.0], np.float32).reshape(1, 1, 4, 1)
    got = igan.resize_bilinear_tf1(row, (1, 8)).numpy().ravel()
    np.testing.assert_allclose(got, [0, 0.5, 1, 2.5, 4, 6.5, 9, 9])


def test_bicubic_resize_matches_tf1_and_is_identity_at_same_size():
    images = np.random.default_rng(1).random((1, 5, 6, 2)).astype(np.float32)
    got = igan.resize_bicubic_tf1(images, (8, 9)).numpy()
    np.testing.assert_allclose(got, tf1_bicubic_reference(images, 8, 9), atol=1e-5)
    assert np.array_equal(igan.resize_bicubic_tf1(images, (5, 6)).numpy(), images)


def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[batch, height, width, channels\]"):
        igan.resize_bilinear_tf1(np.zeros((4, 4, 1), np.float32), 8)
    with pytest.raises(ValueError, match="positive"):
        igan.resize_bilinear_tf1(np.zeros((1, 4, 4, 1), np.float32), (0, 4))
    with pytest.raises(ValueError, match="bilinear"):
        igan.TF1Resize(8, method="nearest")


# ----------------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def unmixing_estimator():
    return igan.build_igan_estimator(32, 3, add_input_mean=True, extra_convs=True, seed=0)


def _convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def _bns(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_estimator_layout_follows_the_original(unmixing_estimator):
    convs = _convs(unmixing_estimator)
    # encoder 4 x 3, decoder 4 x 2, extra 2, output 1
    assert len(convs) == 12 + 8 + 2 + 1
    for conv in convs:
        assert conv.kernel_size == (4, 4) and conv.padding == "same" and not conv.use_bias
        assert isinstance(conv.kernel_initializer, keras.initializers.GlorotUniform)
    assert [c.filters for c in convs[:-1]] == [64] * 22 and convs[-1].filters == 3
    assert [c.strides[0] for c in convs].count(2) == 4
    assert [c.name for c in convs if c.strides[0] == 2] == [f"enc{i}_down_conv" for i in range(1, 5)]
    bns = _bns(unmixing_estimator)
    assert len(bns) == len(convs)
    for bn in bns:
        assert bn.momentum == 0.999 and bn.epsilon == 1e-3 and bn.center and not bn.scale
    # every conv is followed by BN then ReLU, including the output conv
    relus = [layer for layer in unmixing_estimator.layers if isinstance(layer, keras.layers.ReLU)]
    assert len(relus) == len(convs)
    assert unmixing_estimator.get_layer("output_relu") is not None


def test_decoder_adds_the_matching_encoder_outputs(unmixing_estimator):
    # dec1 (S/8) + enc3, dec2 (S/4) + enc2, dec3 (S/2) + enc1; the full-size block adds none.
    for level, encoder in ((1, 3), (2, 2), (3, 1)):
        add = unmixing_estimator.get_layer(f"dec{level}_skip")
        sources = sorted(t._keras_history[0].name for t in add.input)
        assert sources == sorted([f"dec{level}_up", f"enc{encoder}_down_relu"])
        assert add.output.shape[1] == 32 // 2 ** (4 - level)
    with pytest.raises(ValueError):
        unmixing_estimator.get_layer("dec4_skip")
    assert unmixing_estimator.get_layer("dec4_up").output.shape[1:3] == (32, 32)
    assert unmixing_estimator.get_layer("enc4_down_relu").output.shape[1:3] == (2, 2)


def test_input_mean_is_the_channel_mean_of_y(unmixing_estimator):
    y = np.random.default_rng(2).random((2, 32, 32, 3)).astype(np.float32) * 2
    probe = keras.Model(unmixing_estimator.input, unmixing_estimator.get_layer("input_mean").output)
    np.testing.assert_allclose(probe(y).numpy(), y.mean(axis=-1, keepdims=True), rtol=1e-6)
    add = unmixing_estimator.get_layer("add_input_mean")
    assert sorted(t._keras_history[0].name for t in add.input) == ["dec4_up", "input_mean"]


def test_decoder_upsampling_is_tf1_bilinear(unmixing_estimator):
    before = unmixing_estimator.get_layer("dec2_2_relu").output
    after = unmixing_estimator.get_layer("dec2_up").output
    probe = keras.Model(unmixing_estimator.input, [before, after])
    y = np.random.default_rng(3).random((1, 32, 32, 3)).astype(np.float32)
    low, high = (t.numpy() for t in probe(y))
    assert low.shape[1:3] == (4, 4) and high.shape[1:3] == (8, 8)
    np.testing.assert_allclose(high, tf1_bilinear_reference(low, 8, 8), atol=1e-5)


def test_estimator_outputs_nonnegative_component(unmixing_estimator):
    y = np.random.default_rng(4).random((2, 32, 32, 3)).astype(np.float32) * 2
    z = unmixing_estimator(y, training=True).numpy()
    assert z.shape == y.shape and z.dtype == np.float32
    assert z.min() >= 0 and np.isfinite(z).all() and z.max() > 0


def test_residual_estimator_predicts_the_clean_image():
    model = igan.build_igan_estimator(16, 1, component_is_residual=True, add_input_mean=True, seed=0, filters=8)
    assert model.get_layer("residual") is not None
    with pytest.raises(ValueError):
        model.get_layer("extra_1_conv")
    y = np.random.default_rng(5).normal(size=(2, 16, 16, 1)).astype(np.float32)
    z = model(y).numpy()
    f = keras.Model(model.input, model.get_layer("output_relu").output)(y).numpy()
    np.testing.assert_allclose(z, y - f, atol=1e-6)  # Z = Y - F
    x = igan.clean_from_component(y, z).numpy()
    np.testing.assert_allclose(x, f, atol=1e-5)  # X_gen = clip(F, 0) = F


def test_working_size_resizes_in_and_out():
    model = igan.build_igan_estimator(24, 1, working_size=16, filters=8, seed=0)
    assert model.output_shape == (None, 24, 24, 1)
    assert model.get_layer("input_resize").output.shape[1:3] == (16, 16)
    assert model.get_layer("enc4_down_relu").output.shape[1:3] == (1, 1)


def test_estimator_rejects_sizes_it_cannot_halve_four_times():
    with pytest.raises(ValueError, match="multiple of 16"):
        igan.build_igan_estimator(40, 1)


def test_estimators_for_tasks_use_the_task_switches():
    denoising = igan.build_estimator_for_task(get_task("denoising"), seed=0)
    names = {layer.name for layer in denoising.network.layers}
    assert {"residual", "input_mean"} <= names and "extra_1_conv" not in names
    assert denoising.input_shape == (64, 64, 1) and denoising.kind == "image"
    captcha = igan.build_estimator_for_task(get_task("captcha"), seed=0)
    names = {layer.name for layer in captcha.network.layers}
    assert "extra_1_conv" in names and "input_mean" not in names and "residual" not in names
    assert captcha.input_shape == (128, 128, 1)
    toy = igan.build_estimator_for_task(get_task("toy2d"), seed=0)
    assert toy.kind == "points" and toy.input_shape == (2,)
    assert toy.metadata["name"] == "toy2d"


def test_estimator_rejects_observations_of_another_shape():
    estimator = igan.IganEstimator(igan.build_igan_estimator(16, 1, filters=8, seed=0))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        estimator(np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="kind"):
        igan.IganEstimator(estimator.network, kind="audio")


# ----------------------------------------------------------------------------- discriminators
def test_discriminator_layout():
    d = igan.build_igan_discriminator(32, 3, seed=0)
    convs = _convs(d)
    assert [c.filters for c in convs] == [32, 64, 64, 64, 128, 128, 128, 256, 256, 256]
    assert [c.strides[0] for c in convs] == [2, 1, 1, 2, 1, 1, 2, 1, 1, 2]
    for conv in convs:
        assert conv.kernel_size == (4, 4) and not conv.use_bias and conv.padding == "same"
    for bn in _bns(d):
        assert bn.momentum == 0.999 and bn.epsilon == 1e-3 and not bn.scale
    leaky = [layer for layer in d.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(leaky) == 10 and all(np.isclose(layer.negative_slope, 0.2) for layer in leaky)
    dense = d.get_layer("logit")
    assert dense.units == 1 and dense.use_bias and dense.activation is keras.activations.linear
    assert d.get_layer("flatten").output.shape[-1] == 2 * 2 * 256
    logits = d(np.random.default_rng(6).random((3, 32, 32, 3)).astype(np.float32), training=True)
    assert logits.shape == (3, 1) and np.isfinite(logits.numpy()).all()


def test_discriminator_leaky_relu_slope():
    layer = igan.build_igan_discriminator(16, 1, seed=0).get_layer("block0_down_lrelu")
    values = np.array([-2.0, -0.5, 0.0, 1.5], np.float32)
    np.testing.assert_allclose(layer(values).numpy(), np.where(values > 0, values, 0.2 * values))


def test_discriminators_for_a_task_are_independent():
    d1, d2 = igan.build_discriminators_for_task(get_task("toy2d"), seed=3)
    assert d1.input_shape == (None, 2) and d2.output_shape == (None, 1)
    assert not np.allclose(d1.get_layer("hidden1").kernel.numpy(), d2.get_layer("hidden1").kernel.numpy())


# ----------------------------------------------------------------------------- forward models
def test_clean_estimate_clips_only_negatives_and_dual_mapping_adds():
    y = np.array([1.5, 0.2, -0.3, 0.9], np.float32)
    z = np.array([0.3, 0.5, 0.1, -0.4], np.float32)
    np.testing.assert_allclose(igan.clean_from_component(y, z).numpy(), [1.2, 0.0, 0.0, 1.3], atol=1e-6)
    x2 = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    np.testing.assert_allclose(igan.observation_from_component(x2, z).numpy(), [0.4, 0.7, 0.4, 0.0], atol=1e-6)


def test_point_maps_match_numpy_and_invert_each_other():
    rng = np.random.default_rng(7)
    y = rng.normal(size=(5, 2)).astype(np.float32)
    z = rng.normal(size=(5, 6)).astype(np.float32)
    z[:, [0, 3]] += 2.0  # keep M well conditioned
    expected = np.stack([z[i, :4].reshape(2, 2) @ y[i] + z[i, 4:] for i in range(5)])
    mapped = igan.apply_point_map(y, z).numpy()
    np.testing.assert_allclose(mapped, expected, rtol=1e-5, atol=1e-5)
    back = igan.invert_point_map(mapped, z).numpy()
    np.testing.assert_allclose(back, y, rtol=1e-4, atol=1e-4)
    solved = np.stack([np.linalg.solve(z[i, :4].reshape(2, 2), mapped[i] - z[i, 4:]) for i in range(5)])
    np.testing.assert_allclose(back, solved, rtol=1e-4, atol=1e-4)
    # a singular M gives finite points
    singular = np.array([[1, 2, 2, 4, 0, 0]], np.float32)
    assert np.isfinite(igan.invert_point_map(np.ones((1, 2), np.float32), singular).numpy()).all()
    with pytest.raises(ValueError, match=r"\[batch, 6\]"):
        igan.apply_point_map(y, z[:, :4])


def test_point_estimator_starts_at_the_identity():
    estimator = igan.IganEstimator(igan.build_igan_point_estimator(seed=0), kind="points")
    y = np.random.default_rng(8).normal(size=(6, 2)).astype(np.float32)
    z, x = estimator.separate(y)
    assert z.shape == (6, 6)
    np.testing.assert_allclose(x.numpy(), y, atol=1e-6)
    np.testing.assert_allclose(estimator.observation_from(y, z).numpy(), y, atol=1e-6)
    d = igan.build_igan_point_discriminator(seed=0)
    assert d(y).shape == (6, 1)


# ----------------------------------------------------------------------------- export
def test_export_round_trip(tmp_path):
    network = igan.build_igan_estimator(16, 1, add_input_mean=True, filters=8, seed=0)
    estimator = igan.IganEstimator(network, metadata={"name": "denoising", "image_size": 16})
    # make the moving statistics non-trivial so inference mode is really exercised
    y = np.random.default_rng(9).random((4, 16, 16, 1)).astype(np.float32)
    for _ in range(3):
        network(y, training=True)
    path = igan.export_igan_estimator(estimator, tmp_path / "model", extra_metadata={"gan_model": "ls"})
    separate, metadata = igan.load_igan_export(path)
    z, x = separate(y)
    z_ref, x_ref = estimator.separate(y, training=False)
    np.testing.assert_allclose(z, z_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(x, np.maximum(y - z_ref.numpy(), 0), atol=1e-5)
    assert metadata["gan_model"] == "ls" and metadata["input_shape"] == [16, 16, 1] and metadata["kind"] == "image"
    assert json.loads((tmp_path / "model" / "igan.json").read_text())["name"] == "denoising"
    with pytest.raises(FileExistsError, match="overwrite"):
        igan.export_igan_estimator(estimator, tmp_path / "model")
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        igan.load_igan_export(tmp_path)
