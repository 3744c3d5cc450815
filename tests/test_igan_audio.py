"""The STFT front end and the audio CAPTCHA task of igan."""

import warnings

import numpy as np
import pytest

from tfinverse.data import captcha
from tfinverse.tasks import audio, igan_tasks

SAMPLES = 20000  # 2.5 s at 8 kHz


def _numpy_stft(signal, n_fft=254, hop=157):
    """Centred STFT with zero padding and a periodic Hann window, written out with numpy."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(signal.astype(np.float64), n_fft // 2)
    n_frames = 1 + len(signal) // hop
    frames = np.stack([padded[t * hop : t * hop + n_fft] * window for t in range(n_frames)], axis=1)
    return np.fft.rfft(frames, axis=0), window


@pytest.fixture(scope="module")
def clips():
    return captcha.make_audio_mixtures(2, seed=7)


def test_a_2_5_second_clip_is_a_128x128_image(clips):
    mixture = clips[0]
    magnitudes, phases = audio.stft_magnitude(mixture)
    assert magnitudes.shape == (2, 128, 128, 1) and phases.shape == (2, 128, 128, 1)
    assert magnitudes.dtype == np.float32 and phases.dtype == np.float32
    assert magnitudes.min() >= 0 and magnitudes.max() <= 1
    assert np.all(np.abs(phases) <= np.pi + 1e-6)


def test_magnitudes_and_phases_match_a_numpy_stft(clips):
    signal = clips[0][1]
    reference, window = _numpy_stft(signal)
    magnitudes, phases = audio.stft_magnitude(signal, log_gain=0)
    np.testing.assert_allclose(magnitudes[0, ..., 0], np.abs(reference) / window.sum(), atol=1e-6)
    strong = np.abs(reference) > 1e-2 * np.abs(reference).max()
    phase_error = np.angle(np.exp(1j * (phases[0, ..., 0] - np.angle(reference))))
    assert np.max(np.abs(phase_error[strong])) < 1e-3


def test_log_compression_closed_form_for_a_bin_centred_sine():
    # A sine of amplitude A exactly on bin k has |S| = A sum(w) / 2 in every interior frame.
    k, amplitude, gain = 32, 0.8, 100.0
    t = np.arange(SAMPLES)
    sine = amplitude * np.sin(2 * np.pi * k * t / 254)
    linear, _ = audio.stft_magnitude(sine, log_gain=0)
    compressed, _ = audio.stft_magnitude(sine, log_gain=gain)
    interior = slice(2, -2)
    np.testing.assert_allclose(linear[0, k, interior, 0], amplitude / 2, rtol=1e-4)
    expected = np.log1p(gain * amplitude / 2) / np.log1p(gain)
    np.testing.assert_allclose(compressed[0, k, interior, 0], expected, rtol=1e-4)
    # The compression is inverted exactly.
    raw = np.random.default_rng(0).uniform(0, 127, size=(5, 7))
    back = audio.image_to_magnitude(audio.magnitude_to_image(raw, log_gain=gain), log_gain=gain)
    np.testing.assert_allclose(back, raw, rtol=1e-5)


@pytest.mark.parametrize("log_gain", [0.0, 100.0])
def test_round_trip_with_the_true_phase_is_near_perfect(clips, log_gain):
    mixture = clips[0]
    magnitudes, phases = audio.stft_magnitude(mixture, log_gain=log_gain)
    rebuilt = audio.istft_with_phase(magnitudes, phases, length=SAMPLES, log_gain=log_gain)
    assert rebuilt.shape == mixture.shape and rebuilt.dtype == np.float32
    error = rebuilt - mixture
    snr = 10 * np.log10(np.sum(mixture**2) / np.sum(error**2))
    assert snr > 80.0


@pytest.mark.parametrize("rate", [16000, 44100, 8000.5])
def test_other_sample_rates_are_refused(clips, rate):
    with pytest.raises(ValueError, match="8000"):
        audio.stft_magnitude(clips[0], sample_rate=rate)
    with pytest.raises(ValueError, match="8000"):
        audio.istft_with_phase(np.zeros((1, 128, 128, 1)), np.zeros((1, 128, 128, 1)), sample_rate=rate)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        audio.stft_magnitude(np.zeros((2, 3, 400)))
    with pytest.raises(ValueError, match=r"\[batch, bins, frames, 1\]"):
        audio.istft_with_phase(np.zeros((1, 128, 128, 1)), np.zeros((1, 128, 127, 1)))
    with pytest.raises(ValueError, match="bins"):
        audio.istft_with_phase(np.zeros((1, 64, 128, 1)), np.zeros((1, 64, 128, 1)))
    with pytest.raises(ValueError, match="hop_length"):
        audio.stft_magnitude(np.zeros(400), hop_length=0)


def test_training_batches_are_subadditive_spectrogram_triples():
    batch = next(iter(igan_tasks.training_batches("audio_captcha", batch_size=2, seed=3)))
    arrays = {key: value.numpy() for key, value in batch.items()}
    for value in arrays.values():
        assert value.shape == (2, 128, 128, 1) and value.dtype == np.float32
        assert value.min() >= 0 and value.max() <= 1
    # |S + N| <= |S| + |N| and log1p compression is subadditive, so y <= x + component.
    assert np.all(arrays["y"] <= arrays["x"] + arrays["component"] + 1e-5)
    # ... with equality only approximately: the mixture is not the sum of the images.
    assert np.mean(np.abs(arrays["y"] - arrays["x"] - arrays["component"])) > 1e-3
    assert not np.allclose(arrays["x2"], arrays["x"]) and not np.allclose(arrays["x3"], arrays["x2"])


def test_evaluation_data_and_scores():
    # One-second clips keep BSS Eval quick; the scores do not depend on the image size.
    task = igan_tasks.get_task("audio_captcha", duration=1.0)
    data = igan_tasks.evaluation_batches(task, n=2, seed=1)
    assert data["speech_waveform"].shape == (2, 8000)
    np.testing.assert_allclose(data["mixture_waveform"], data["speech_waveform"] + data["noise_waveform"], atol=1e-6)
    np.testing.assert_allclose(data["x"], audio.stft_magnitude(data["speech_waveform"])[0], atol=1e-6)
    np.testing.assert_allclose(data["phase"], audio.stft_magnitude(data["mixture_waveform"])[1], atol=1e-6)

    # Oracle magnitudes, except a silent noise estimate for the second clip.
    component_est = data["component"].copy()
    component_est[1] = 0.0
    rows = igan_tasks.evaluate(
        task, data["y"], data["x"], data["component"], data["x"], component_est, audio_reference=data
    )
    table = {(r["method"], r["target"]): r for r in rows}
    assert table[("igan", "clean")]["psnr"] == np.inf
    assert table[("mixture", "clean")]["psnr"] < 40
    # The mixture baseline equals BSS Eval of the mixture against each true source.
    import mir_eval.separation

    expected = []
    for clip in range(2):
        references = np.stack([data["speech_waveform"][clip], data["noise_waveform"][clip]]).astype(np.float64)
        mixture = np.stack([data["mixture_waveform"][clip]] * 2).astype(np.float64)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"mir_eval\.separation", category=FutureWarning)
            sdr = mir_eval.separation.bss_eval_sources(references, mixture, compute_permutation=False)[0]
        expected.append(sdr)
    expected = np.mean(expected, axis=0)
    assert table[("mixture", "speech (waveform)")]["sdr"] == pytest.approx(expected[0], abs=1e-6)
    assert table[("mixture", "noise (waveform)")]["sdr"] == pytest.approx(expected[1], abs=1e-6)
    assert table[("mixture", "speech (waveform)")]["n"] == 2
    # The clip with a silent estimate cannot be scored and is counted as such.
    oracle_speech = table[("igan", "speech (waveform)")]
    assert (oracle_speech["n"], oracle_speech["n_unscored"]) == (1, 1)
    # Oracle magnitudes with the mixture phase separate far better than the mixture.
    assert oracle_speech["sdr"] > table[("mixture", "speech (waveform)")]["sdr"] + 5
    # The reference row: the true magnitudes with the mixture's phase, on every clip, whatever the
    # estimates; equal to BSS Eval of the inverse STFTs.
    speech_hat, noise_hat = (
        audio.istft_with_phase(data[key], data["phase"], length=8000) for key in ("x", "component")
    )
    expected = []
    for clip in range(2):
        references = np.stack([data["speech_waveform"][clip], data["noise_waveform"][clip]]).astype(np.float64)
        estimates = np.stack([speech_hat[clip], noise_hat[clip]]).astype(np.float64)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"mir_eval\.separation", category=FutureWarning)
            expected.append(mir_eval.separation.bss_eval_sources(references, estimates, compute_permutation=False)[:3])
    expected = np.mean(expected, axis=0)  # [sdr/sir/sar, source]
    for source, name in enumerate(("speech", "noise")):
        ceiling = table[("true magnitudes", f"{name} (waveform)")]
        assert (ceiling["n"], ceiling["n_unscored"]) == (2, 0)
        assert [ceiling[key] for key in ("sdr", "sir", "sar")] == pytest.approx(expected[:, source], abs=1e-6)
    assert ("true magnitudes", "clean") not in table  # no image rows: they would score the truth itself


def test_evaluate_needs_the_reference_and_8_khz():
    y = np.zeros((1, 128, 128, 1), np.float32)
    with pytest.raises(ValueError, match="audio_reference"):
        igan_tasks.evaluate("audio_captcha", y, y, y, y, y)
    with pytest.raises(ValueError, match="8000"):
        igan_tasks.evaluate("audio_captcha", y, y, y, y, y, sample_rate=16000, audio_reference={})
