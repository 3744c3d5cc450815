"""Metrics against independent references: scikit-image, closed forms and mir_eval."""

import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tfinverse import metrics


def sk_psnr(x, y, data_range=1.0):
    return np.array([peak_signal_noise_ratio(a, b, data_range=data_range) for a, b in zip(x, y)])


def sk_ssim(x, y, data_range=1.0):
    return np.array(
        [
            structural_similarity(
                a,
                b,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=data_range,
                channel_axis=-1,
            )
            for a, b in zip(x, y)
        ]
    )


def random_pair(shape, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    y = np.clip(x + noise * rng.standard_normal(shape), 0.0, 1.0)
    return x, y


def natural_pairs():
    """Patches of skimage's camera (grey) and astronaut (RGB) with noise and blur."""
    rng = np.random.default_rng(1)
    camera = skdata.camera().astype(np.float64) / 255.0
    astronaut = skdata.astronaut().astype(np.float64) / 255.0
    grey = np.stack([camera[100:164, 200:264], camera[300:364, 50:114]])[..., None]
    rgb = np.stack([astronaut[30:94, 180:244], astronaut[200:264, 100:164]])
    pairs = []
    for clean in (grey, rgb):
        noisy = np.clip(clean + 0.05 * rng.standard_normal(clean.shape), 0.0, 1.0)
        blurred = ndimage.gaussian_filter(clean, sigma=(0, 1.2, 1.2, 0))
        pairs += [(clean, noisy), (clean, blurred)]
    return pairs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 32, 40, 3), (2, 17, 23, 1)])
def test_psnr_matches_skimage_on_random_images(shape, dtype):
    x, y = random_pair(shape)
    x, y = x.astype(dtype), y.astype(dtype)
    got = metrics.psnr(x, y).numpy()
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, sk_psnr(x, y), atol=1e-4, rtol=0)


def test_psnr_and_ssim_match_skimage_on_natural_images():
    for clean, distorted in natural_pairs():
        psnr_value = metrics.psnr(clean, distorted).numpy()
        ssim_value = metrics.ssim(clean, distorted).numpy()
        np.testing.assert_allclose(psnr_value, sk_psnr(clean, distorted), atol=1e-4)
        np.testing.assert_allclose(ssim_value, sk_ssim(clean, distorted), atol=1e-3)


def test_psnr_and_ssim_of_uint8_images_with_data_range_255():
    x, y = random_pair((2, 24, 24, 3), seed=3)
    x8 = np.round(x * 255).astype(np.uint8)
    y8 = np.round(y * 255).astype(np.uint8)
    np.testing.assert_allclose(metrics.psnr(x8, y8, data_range=255).numpy(), sk_psnr(x8, y8, 255), atol=1e-4)
    np.testing.assert_allclose(
        metrics.ssim(x8, y8, data_range=255).numpy(),
        sk_ssim(x8.astype(np.float64), y8.astype(np.float64), 255),
        atol=1e-3,
    )


@pytest.mark.parametrize("shape", [(3, 32, 32, 3), (2, 20, 28, 1)])
def test_ssim_matches_skimage_on_random_images(shape):
    x, y = random_pair(shape, seed=2, noise=0.2)
    got = metrics.ssim(x, y).numpy()
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, sk_ssim(x, y), atol=1e-3)


def test_ssim_data_range_enters_the_constants():
    x, y = random_pair((2, 32, 32, 3), seed=4, noise=0.3)
    np.testing.assert_allclose(
        metrics.ssim(x, y, data_range=metrics.AMBIENT_VAE_GAN_SSIM_DATA_RANGE).numpy(),
        sk_ssim(x, y, data_range=2.0),
        atol=1e-3,
    )
    # A larger range inflates the stabilisers, so noisy images score higher.
    wide, narrow = metrics.ssim(x, y, data_range=2.0).numpy(), metrics.ssim(x, y, data_range=1.0).numpy()
    assert np.all(wide > narrow + 1e-3)
    np.testing.assert_allclose(metrics.ssim(x, x).numpy(), 1.0, atol=1e-6)


def test_ambient_vae_gan_ssim_matches_skimage_defaults_with_range_two():
    for clean, distorted in natural_pairs()[:3]:
        # skimage's defaults: 7x7 uniform window, sample covariance.
        expected = [
            structural_similarity(a, b, data_range=2.0, channel_axis=-1) for a, b in zip(clean, distorted)
        ]
        got = metrics.ambient_vae_gan_ssim(clean, distorted).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert metrics.AMBIENT_VAE_GAN_SSIM_DATA_RANGE == 2.0


def test_mse_is_the_per_image_mean_square():
    rng = np.random.default_rng(5)
    x = rng.random((4, 8, 9, 2))
    offsets = np.array([0.0, 0.1, -0.2, 0.05])
    got = metrics.mse(x, x + offsets[:, None, None, None]).numpy()
    np.testing.assert_allclose(got, offsets**2, rtol=1e-10)


def test_dataset_psnr_closed_form():
    # Constant offsets d_i give per-image MSE d_i^2, so the set PSNR is
    # 10 log10(R^2 / mean(d_i^2)), not the mean of the per-image PSNRs.
    rng = np.random.default_rng(6)
    x = rng.random((4, 16, 16, 3)) * 200.0
    offsets = np.array([1.0, 2.0, 5.0, 10.0])
    y = x + offsets[:, None, None, None]
    expected = 10.0 * np.log10(255.0**2 / np.mean(offsets**2))
    got = float(metrics.dataset_psnr(x, y, data_range=255.0))
    assert got == pytest.approx(expected, abs=1e-6)
    per_image = 10.0 * np.log10(255.0**2 / offsets**2)
    assert got < per_image.mean() - 1.0
    np.testing.assert_allclose(metrics.psnr(x, y, data_range=255.0).numpy(), per_image, atol=1e-6)


def test_identical_images_have_infinite_psnr():
    x, _ = random_pair((2, 8, 8, 1))
    assert np.all(np.isposinf(metrics.psnr(x, x).numpy()))


def test_metrics_work_inside_tf_function_with_unknown_batch():
    spec = tf.TensorSpec([None, 16, 16, 3], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def scores(x, y):
        return (
            metrics.psnr(x, y),
            metrics.ssim(x, y),
            metrics.dataset_psnr(x, y),
            metrics.ambient_vae_gan_ssim(x, y),
        )

    x, y = random_pair((3, 16, 16, 3), seed=7)
    x, y = x.astype(np.float32), y.astype(np.float32)
    psnr_value, ssim_value, set_psnr, ambient = scores(x, y)
    np.testing.assert_allclose(psnr_value.numpy(), sk_psnr(x, y), atol=1e-4)
    np.testing.assert_allclose(ssim_value.numpy(), sk_ssim(x, y), atol=1e-3)
    expected_set_psnr = 10 * np.log10(1 / np.mean((x.astype(np.float64) - y) ** 2))
    assert float(set_psnr) == pytest.approx(expected_set_psnr, abs=1e-4)
    assert ambient.shape == (3,)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        scores(bad, y)


IMAGE_METRICS = [metrics.mse, metrics.psnr, metrics.dataset_psnr, metrics.ssim, metrics.ambient_vae_gan_ssim]


@pytest.mark.parametrize("fn", IMAGE_METRICS)
def test_image_metrics_reject_bad_input(fn):
    x, y = random_pair((2, 16, 16, 3))
    with pytest.raises(ValueError, match="same shape"):
        fn(x, y[:, :, :8])
    with pytest.raises(ValueError, match=r"\[batch, height, width, channels\]"):
        fn(x[0], y[0])
    for bad_value in (np.nan, np.inf):
        bad = y.copy()
        bad[1, 3, 4, 0] = bad_value
        with pytest.raises(ValueError, match="NaN or Inf"):
            fn(x, bad)
        with pytest.raises(ValueError, match="NaN or Inf"):
            fn(bad, x)


def test_data_range_must_be_positive():
    x, y = random_pair((1, 16, 16, 1))
    for fn in (metrics.psnr, metrics.dataset_psnr, metrics.ssim):
        with pytest.raises(ValueError, match="data_range"):
            fn(x, y, data_range=0.0)
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.ambient_vae_gan_ssim(x[:, :5, :5], y[:, :5, :5])


def two_source_mixture():
    rate = 8000
    t = np.arange(rate // 4) / rate
    rng = np.random.default_rng(8)
    tone = np.sin(2 * np.pi * 440.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t))
    noise = ndimage.gaussian_filter1d(rng.standard_normal(t.size), 3.0)
    references = np.stack([tone, noise / noise.std() * 0.5])
    # Estimates with some leakage and artefacts, given in swapped order.
    estimates = np.stack(
        [
            references[1] + 0.1 * references[0] + 0.02 * rng.standard_normal(t.size),
            references[0] + 0.05 * references[1] + 0.02 * rng.standard_normal(t.size),
        ]
    )
    return references, estimates


def test_bss_eval_matches_a_direct_mir_eval_call():
    import mir_eval.separation

    references, estimates = two_source_mixture()
    result = metrics.bss_eval(references, estimates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(references, estimates)
    np.testing.assert_allclose(result.sdr, sdr)
    np.testing.assert_allclose(result.sir, sir)
    np.testing.assert_allclose(result.sar, sar)
    np.testing.assert_array_equal(result.permutation, perm)
    np.testing.assert_array_equal(result.permutation, [1, 0])
    # Leakage of 0.1 and 0.05 of an equally loud source bounds SIR near 20 and 26 dB.
    assert np.all(result.sir > 15) and np.all(np.isfinite(result.sir))


def test_bss_eval_single_source_has_infinite_sir():
    references, estimates = two_source_mixture()
    result = metrics.bss_eval(references[0], estimates[1])
    assert result.sir.shape == (1,) and np.isposinf(result.sir[0])
    assert np.isfinite(result.sdr[0]) and result.sdr[0] > 10


def test_bss_eval_rejects_bad_input():
    references, estimates = two_source_mixture()
    with pytest.raises(ValueError, match="same shape"):
        metrics.bss_eval(references, estimates[:, :-1])
    with pytest.raises(ValueError, match=r"\[n_sources, n_samples\]"):
        metrics.bss_eval(references[None], estimates[None])
    bad = estimates.copy()
    bad[0, 10] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        metrics.bss_eval(references, bad)
    silent = references.copy()
    silent[1] = 0.0
    with pytest.raises(ValueError, match="silent"):
        metrics.bss_eval(silent, estimates)


def test_bss_eval_without_mir_eval_names_the_audio_extra(monkeypatch):
    references, estimates = two_source_mixture()
    monkeypatch.setitem(sys.modules, "mir_eval", None)
    monkeypatch.setitem(sys.modules, "mir_eval.separation", None)
    with pytest.raises(ImportError, match=r"pip install tfinverse\[audio\]"):
        metrics.bss_eval(references, estimates)
