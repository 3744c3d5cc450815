"""Classical baselines against independent references (OpenCV, numpy FFT, scikit-image data)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
import pytest

from extras import requires_bm3d
from tfinverse.inversion import baselines
from tfinverse.operators.base import get
from tfinverse.operators.blur import UniformBlur
from tfinverse.operators.fourier import SubsampledFourier
from tfinverse.operators.identity import Identity
from tfinverse.operators.super_resolution import Decimate, SuperResolution


def test_bicubic_upsampling_matches_opencv():
    op = SuperResolution(image_shape=(32, 32, 3), factor=4)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    y = op(x).numpy()
    result = baselines.bicubic_upsampling(op, y)
    # OpenCV's INTER_CUBIC is Keys' kernel with a = -0.75, half-pixel centres, clamped borders.
    reference = np.stack([cv2.resize(image, (32, 32), interpolation=cv2.INTER_CUBIC) for image in y])
    np.testing.assert_allclose(result.x_hat, reference, atol=1e-5)
    assert result.history.shape == (0, 2) and result.latents is None
    residual = np.mean((op(reference).numpy() - y) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(result.best_objective, residual, rtol=1e-3, atol=1e-9)


def test_zero_filled_ifft_matches_numpy():
    op = SubsampledFourier(image_shape=(16, 16, 2), ratio=0.3, seed=1)
    x = np.random.default_rng(1).random((2, 16, 16, 2)).astype(np.float32)
    y = op(x).numpy()
    result = baselines.zero_filled_ifft(op, y)
    # Put the sampled coefficients back on the grid (flat index order), zeros elsewhere.
    rows, cols = np.nonzero(op.mask)
    reference = np.zeros_like(x)
    for b in range(2):
        for c in range(2):
            spectrum = np.zeros((16, 16), complex)
            spectrum[rows, cols] = y[b, :, c, 0] + 1j * y[b, :, c, 1]
            reference[b, :, :, c] = np.fft.ifft2(spectrum, norm="ortho").real
    np.testing.assert_allclose(result.x_hat, reference, atol=1e-5)
    # Direct check against the FFT of x: the sampled coefficients are kept exactly.
    spectrum_x = np.fft.fft2(np.moveaxis(x, -1, 1), norm="ortho")
    zero_filled = np.where(op.mask, spectrum_x, 0)
    direct = np.moveaxis(np.fft.ifft2(zero_filled, norm="ortho").real, 1, -1)
    np.testing.assert_allclose(result.x_hat, direct, atol=1e-5)


def test_observation_baseline_modes():
    blur = UniformBlur(image_shape=(16, 16, 1), kernel_size=3)
    x = np.random.default_rng(2).random((2, 16, 16, 1)).astype(np.float32)
    y = blur(x).numpy()
    result = baselines.observation_baseline(blur, y)
    assert result.extras["mode"] == "observation"
    np.testing.assert_array_equal(result.x_hat, y)

    decimate = Decimate(image_shape=(8, 8, 1), factor=2)
    y = decimate(x[:, :8, :8]).numpy()
    result = baselines.observation_baseline(decimate, y)
    assert result.extras["mode"] == "adjoint"
    zero_inserted = np.zeros((2, 8, 8, 1), np.float32)
    zero_inserted[:, ::2, ::2] = y
    np.testing.assert_array_equal(result.x_hat, zero_inserted)
    np.testing.assert_allclose(result.best_objective, 0.0, atol=1e-12)
    pinv = baselines.observation_baseline(decimate, y, mode="pinv")
    np.testing.assert_allclose(pinv.x_hat, zero_inserted, atol=1e-6)
    with pytest.raises(ValueError, match="adjoint"):
        baselines.observation_baseline(decimate, y, mode="observation")
    with pytest.raises(ValueError, match="mode"):
        baselines.observation_baseline(decimate, y, mode="median")


def test_compressed_sensing_adjoint_observation():
    op = get("compressed_sensing", image_shape=(8, 8, 1), m=20, seed=3)
    x = np.random.default_rng(3).random((2, 8, 8, 1)).astype(np.float32)
    y = op(x).numpy()
    result = baselines.observation_baseline(op, y, mode="adjoint")
    # The matrix read back column by column from the forward map on the unit basis.
    basis = np.eye(64, dtype=np.float32).reshape(64, 8, 8, 1)
    matrix = op(basis).numpy().T  # [m, n]
    np.testing.assert_allclose(result.x_hat.reshape(2, 64), y @ matrix, rtol=1e-4, atol=1e-5)


def camera_patch():
    import skimage.data

    return (skimage.data.camera()[96:160, 224:288] / 255.0).astype(np.float32)


def astronaut_patch():
    import skimage.data

    return (skimage.data.astronaut()[40:104, 180:244] / 255.0).astype(np.float32)


@requires_bm3d
@pytest.mark.parametrize("colour", [False, True])
def test_bm3d_lowers_the_error_of_a_noisy_natural_patch(colour):
    clean = astronaut_patch()[None] if colour else camera_patch()[None, ..., None]
    sigma = 0.1
    noisy = (clean + sigma * np.random.default_rng(4).standard_normal(clean.shape)).astype(np.float32)
    result = baselines.bm3d_denoise(noisy, sigma, progress=False)
    assert result.x_hat.shape == clean.shape and result.x_hat.dtype == np.float32
    noisy_mse = np.mean((noisy - clean) ** 2)
    denoised_mse = np.mean((result.x_hat - clean) ** 2)
    assert noisy_mse == pytest.approx(sigma**2, rel=0.1)
    assert denoised_mse < 0.3 * noisy_mse
    own_residual = np.mean((result.x_hat - noisy) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(result.best_objective, own_residual, rtol=1e-4)
    assert result.extras["sigma"] == sigma


@pytest.mark.parametrize("rate", [2.0, 5.0, 20.0])
def test_inverse_anscombe_is_unbiased_where_the_algebraic_inverse_is_not(rate):
    # E[anscombe(Poisson(rate))] by summing the Poisson pmf (an independent closed form).
    from scipy.stats import poisson

    counts = np.arange(0, int(rate * 6 + 40))
    expected = float(np.sum(poisson.pmf(counts, rate) * baselines.anscombe(counts)))
    assert baselines.inverse_anscombe(expected) == pytest.approx(rate, rel=0.01)
    algebraic = (expected / 2.0) ** 2 - 0.375
    assert abs(algebraic - rate) > 0.1  # the bias the exact inverse removes (0.12-0.25 here)
    # Variance stabilisation: the transformed counts' variance is close to 1.
    variance = float(np.sum(poisson.pmf(counts, rate) * (baselines.anscombe(counts) - expected) ** 2))
    assert variance == pytest.approx(1.0, abs=0.2 if rate < 5 else 0.05)
    # Below anscombe(0) = 1.2247 the series would diverge: those values are zero counts.
    assert baselines.inverse_anscombe(np.array([0.0, 0.5, 1.2])).tolist() == [0.0, 0.0, 0.0]


def test_bm3d_poisson_checks_its_peak_before_bm3d(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)
    for peak in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="peak"):
            baselines.bm3d_poisson_denoise(np.zeros((1, 16, 16, 1), np.float32), peak)
    with pytest.raises(ValueError, match="NaN"):
        baselines.bm3d_poisson_denoise(np.full((1, 16, 16, 1), np.nan, np.float32), 30.0)


@requires_bm3d
def test_bm3d_poisson_beats_the_noisy_image_and_plain_bm3d_at_one_sigma():
    clean = astronaut_patch()[None]
    peak = 30.0
    noisy = (np.random.default_rng(5).poisson(peak * clean) / peak).astype(np.float32)
    result = baselines.bm3d_poisson_denoise(noisy, peak, progress=False)
    assert result.x_hat.shape == clean.shape and result.x_hat.dtype == np.float32
    noisy_mse = np.mean((noisy - clean) ** 2)
    stabilised_mse = np.mean((result.x_hat - clean) ** 2)
    # One Gaussian sigma for the whole image: the noise's average standard deviation.
    plain = baselines.bm3d_denoise(noisy, float(np.sqrt(np.mean(clean) / peak)), progress=False)
    assert stabilised_mse < 0.3 * noisy_mse
    assert stabilised_mse < np.mean((plain.x_hat - clean) ** 2)
    assert result.extras["peak"] == peak


def test_bm3d_missing_package_names_the_extra_and_the_licence(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)
    noisy = np.full((1, 16, 16, 1), 0.5, np.float32)
    with pytest.raises(ImportError, match=r"pip install tfinverse\[bm3d\]") as info:
        baselines.bm3d_denoise(noisy, 0.1, progress=False)
    assert "non-commercial" in str(info.value)


def test_bad_input_raises_value_error_before_any_work(monkeypatch):
    # bm3d is made unimportable: a ValueError (not an ImportError) shows the input is checked first.
    monkeypatch.setitem(sys.modules, "bm3d", None)
    with pytest.raises(ValueError, match=r"\[batch, H, W, 1\].*\[batch, H, W, 3\]"):
        baselines.bm3d_denoise(np.zeros((1, 16, 16, 2), np.float32), 0.1)
    with pytest.raises(ValueError, match=r"\[batch, H, W, 1\]"):
        baselines.bm3d_denoise(np.zeros((8, 8), np.float32), 0.1)
    nan = np.zeros((1, 16, 16, 1), np.float32)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        baselines.bm3d_denoise(nan, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        baselines.bm3d_denoise(np.zeros((1, 16, 16, 1), np.float32), 0.0)
    # Too small for BM3D's 8x8 blocks (exactly 8x8 would crash the bm3d package).
    for size in [(7, 16), (8, 8)]:
        with pytest.raises(ValueError, match=">= 8 pixels"):
            baselines.bm3d_denoise(np.zeros((1,) + size + (3,), np.float32), 0.1)

    sr = SuperResolution(image_shape=(16, 16, 1), factor=4)
    with pytest.raises(ValueError, match=r"\[batch, 4, 4, 1\]"):
        baselines.bicubic_upsampling(sr, np.zeros((1, 16, 16, 1), np.float32))
    inf = np.zeros((1, 4, 4, 1), np.float32)
    inf[0, 1, 1, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        baselines.bicubic_upsampling(sr, inf)
    identity = Identity((16, 16, 1))
    with pytest.raises(ValueError, match="super-resolution"):
        baselines.bicubic_upsampling(identity, np.zeros((1, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match="Fourier"):
        baselines.zero_filled_ifft(identity, np.zeros((1, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        baselines.observation_baseline(identity, np.zeros((1, 16, 16), np.float32))


# ---------------------------------------------------------------- Ambient VAE-GAN's non-learned row
def _ambient_drop_problem():
    """Lossy images, their masks (one channel of image 0 and one of image 2 have no hole), fill values."""
    rng = np.random.default_rng(5)
    x = rng.random((3, 12, 10, 3)).astype(np.float32)
    mask = (rng.random(x.shape) >= 0.5).astype(np.float32) * 2.0  # drop_independent p = 0.5, rescaled
    mask[0, :, :, 1] = 2.0
    mask[2, :, :, 0] = 1.0
    return x * mask, mask


@pytest.mark.parametrize("zero_level", [0.0, 0.5])
def test_non_learned_blur_matches_scipy_and_skips_channels_without_holes(zero_level):
    from scipy import ndimage

    y, mask = _ambient_drop_problem()
    result = baselines.non_learned_ambient(y, "drop_independent", mask, zero_level=zero_level)
    expected = np.empty_like(y)
    for i in range(y.shape[0]):
        for c in range(y.shape[-1]):
            if mask[i, :, :, c].min() > 0:
                expected[i, :, :, c] = y[i, :, :, c]
            else:  # 5x5 (radius 2 = truncate 2 sigma), sigma 1, padded with the zero level
                expected[i, :, :, c] = ndimage.gaussian_filter(
                    y[i, :, :, c].astype(np.float64), 1.0, mode="constant", cval=zero_level, truncate=2.0)
    np.testing.assert_allclose(result.x_hat, np.clip(expected, 0, 1), atol=1e-5)
    assert result.extras["kind"] == "blur"
    np.testing.assert_array_equal(result.extras["blurred_channels"],
                                  [[True, False, True], [True, True, True], [False, True, True]])
    assert result.history.shape == (0, 3) and result.latents is None
    np.testing.assert_allclose(result.best_objective, np.mean((result.x_hat - y) ** 2, axis=(1, 2, 3)), rtol=1e-5)


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")  # scipy, 1 channel: padded, as documented
@pytest.mark.parametrize("channels, window", [(3, (3, 3, 3)), (1, (3, 3, 3)), (1, (3, 3, 1))])
@pytest.mark.parametrize("zero_level", [0.0, 0.5])
def test_non_learned_median_matches_scipy_medfilt(channels, window, zero_level):
    from scipy import signal

    rng = np.random.default_rng(6)
    y = (rng.random((2, 9, 11, channels)) + 0.2 * rng.standard_normal((2, 9, 11, channels))).astype(np.float32)
    result = baselines.non_learned_ambient(y, "add_noise", zero_level=zero_level, median_size=window)
    # scipy.signal.medfilt pads with zeros in all three axes (the original ran it on H x W x C).
    expected = np.stack([signal.medfilt(image - zero_level, list(window)) + zero_level for image in y])
    np.testing.assert_allclose(result.x_hat, np.clip(expected, 0, 1), atol=1e-6)
    assert result.extras["kind"] == "median" and result.extras["median_size"] == window


def test_non_learned_bad_input():
    y, mask = _ambient_drop_problem()
    with pytest.raises(ValueError, match="kind must be one of"):
        baselines.non_learned_ambient(y, "inpaint")
    with pytest.raises(ValueError, match="mask must have the shape of y"):
        baselines.non_learned_ambient(y, "blur", mask[:2])
    with pytest.raises(ValueError, match="odd"):
        baselines.non_learned_ambient(y, "median", median_size=(3, 2, 3))
    with pytest.raises(ValueError, match="NaN"):
        baselines.non_learned_ambient(np.full_like(y, np.nan), "blur")
    # Without masks every channel is blurred; clip=False keeps values outside [0, 1].
    unclipped = baselines.non_learned_ambient(y, "drop_patch", clip=False)
    assert unclipped.x_hat.max() > 1 and np.all(unclipped.extras["kind"] == "blur")
