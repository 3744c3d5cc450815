"""Tests of tfinverse.data.captcha: image CAPTCHA pairs and audio CAPTCHA mixtures."""

import os
import string
import wave

import numpy as np
import pytest
import scipy.ndimage as ndimage
import soundfile

from tfinverse.data import captcha
from tfinverse.data import registry

# PIL's SMOOTH filter: a 3x3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13; border pixels are copied.
SMOOTH_KERNEL = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float64) / 13.0


def smooth_reference(image_uint8):
    image = image_uint8.astype(np.float64)
    out = np.stack([ndimage.correlate(image[..., c], SMOOTH_KERNEL) for c in range(3)], axis=-1)
    out = np.floor(out + 0.5)
    out[0], out[-1], out[:, 0], out[:, -1] = image[0], image[-1], image[:, 0], image[:, -1]
    return out.astype(np.int64)


def package_voice(char):
    import captcha as captcha_package

    path = os.path.join(os.path.dirname(captcha_package.__file__), "data", char, "default.wav")
    samples, rate = soundfile.read(path, dtype="float64")
    return samples, rate


# ------------------------------------------------------------------ images


def test_render_shapes_text_and_colours():
    r = captcha.render_captcha(np.random.default_rng(0))
    assert r.clean.shape == r.noisy.shape == (60, 160, 3)
    assert r.clean.dtype == r.noisy.dtype == np.uint8
    assert r.noise_mask.shape == (60, 160) and r.noise_mask.dtype == bool
    assert len(r.text) == 4 and set(r.text) <= set(string.digits + string.ascii_uppercase)
    assert all(238 <= v <= 255 for v in r.background_color)
    assert all(10 <= v <= 200 for v in r.text_color[:3]) and 220 <= r.text_color[3] <= 255
    # the clean image is mostly paper, and its darkest pixels are ink-coloured
    colours, counts = np.unique(r.clean.reshape(-1, 3), axis=0, return_counts=True)
    np.testing.assert_array_equal(colours[np.argmax(counts)], r.background_color)
    assert np.all(r.clean.reshape(-1, 3).min(axis=0) <= np.array(r.text_color[:3]) + 10)
    assert r.noise_mask.any()
    assert captcha.render_captcha(np.random.default_rng(0), text="XY").text == "XY"


def test_noise_alone_is_ink_dots_and_arc_then_smoothing():
    # With a blank text, the noisy image must be exactly: paper, ink where the mask says,
    # smoothed with PIL's kernel. This checks the noise colour, the mask and the filter.
    for seed in range(3):
        r = captcha.render_captcha(np.random.default_rng(seed), text=" ", smooth_clean=False)
        assert np.all(r.clean == np.array(r.background_color, np.uint8))
        raw = np.where(r.noise_mask[..., None], np.array(r.text_color[:3]), np.array(r.background_color))
        np.testing.assert_array_equal(r.noisy, smooth_reference(raw.astype(np.uint8)))


def test_noisy_differs_from_clean_only_by_the_noise():
    for seed in range(4):
        r = captcha.render_captcha(np.random.default_rng(seed), smooth_clean=False)
        expected = smooth_reference(r.clean)
        near_noise = ndimage.binary_dilation(r.noise_mask, np.ones((3, 3), bool))
        diff = r.noisy.astype(np.int64) - expected
        # away from the noise: the noisy image is the smoothed clean image, exactly
        assert np.all(diff[~near_noise] == 0)
        # on the noise: ink was added, so the (raw) image is darker there
        assert diff[r.noise_mask].mean() < -20
        assert np.mean(diff[r.noise_mask] > 1) < 0.1


def test_clean_is_smoothed_by_default_as_igan_did_and_same_characters():
    plain = captcha.render_captcha(np.random.default_rng(5), smooth_clean=False)
    smoothed = captcha.render_captcha(np.random.default_rng(5))
    np.testing.assert_array_equal(plain.noisy, smoothed.noisy)
    np.testing.assert_array_equal(smoothed.clean, smooth_reference(plain.clean))
    assert plain.text == smoothed.text


def test_noise_counts_are_parameters():
    quiet = captcha.render_captcha(np.random.default_rng(1), n_dots=0, n_arcs=0)
    assert not quiet.noise_mask.any()
    np.testing.assert_array_equal(quiet.noisy, quiet.clean)  # both smoothed alike: no noise, no difference


def test_render_is_deterministic_per_seed():
    a = captcha.render_captcha(np.random.default_rng(11))
    b = captcha.render_captcha(np.random.default_rng(11))
    c = captcha.render_captcha(np.random.default_rng(12))
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.noisy, b.noisy)
    assert not np.array_equal(a.noisy, c.noisy)


def test_preprocess_is_inverted_band_then_bilinear_resize():
    r = captcha.render_captcha(np.random.default_rng(0))
    native = captcha.preprocess_captcha(r.noisy, 2, size=None)
    np.testing.assert_allclose(native[..., 0], 1.0 - r.noisy[..., 2] / 255.0, atol=1e-7)
    out = captcha.preprocess_captcha(r.noisy, 1, size=128)
    assert out.shape == (128, 128, 1) and out.dtype == np.float32
    # bilinear with half-pixel centres and edge clamping, computed with scipy
    x = 1.0 - r.noisy[..., 1].astype(np.float64) / 255.0
    rows = (np.arange(128) + 0.5) * 60 / 128 - 0.5
    cols = (np.arange(128) + 0.5) * 160 / 128 - 0.5
    grid = np.meshgrid(rows, cols, indexing="ij")
    reference = ndimage.map_coordinates(x, grid, order=1, mode="nearest")
    np.testing.assert_allclose(out[..., 0], reference, atol=1e-5)


def test_captcha_pair_uses_one_band_for_both_images():
    seed = 3
    noisy, clean = captcha.captcha_pair(np.random.default_rng(seed), size=None)
    r = captcha.render_captcha(np.random.default_rng(seed))
    matches = [
        b
        for b in range(3)
        if np.allclose(noisy[..., 0], 1 - r.noisy[..., b] / 255.0, atol=1e-6)
        and np.allclose(clean[..., 0], 1 - r.clean[..., b] / 255.0, atol=1e-6)
    ]
    assert len(matches) >= 1
    noisy_fixed, _ = captcha.captcha_pair(np.random.default_rng(seed), size=None, band=0)
    np.testing.assert_allclose(noisy_fixed[..., 0], 1 - r.noisy[..., 0] / 255.0, atol=1e-6)


def test_make_pairs_shapes_ranges_determinism():
    noisy, clean = captcha.make_captcha_pairs(4, seed=7)
    assert noisy.shape == clean.shape == (4, 128, 128, 1)
    assert noisy.dtype == clean.dtype == np.float32
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0 and 0.0 <= clean.min() and clean.max() <= 1.0
    # inverted: paper is dark (< 0.07 after inversion), ink is bright
    assert np.median(clean) < 0.07 and clean.max() > 0.2
    # the noise adds ink: inverted noisy images are brighter on average
    assert np.all(noisy.mean(axis=(1, 2, 3)) > clean.mean(axis=(1, 2, 3)))
    again = captcha.make_captcha_pairs(4, seed=7)
    np.testing.assert_array_equal(noisy, again[0])
    np.testing.assert_array_equal(clean, again[1])
    prefix = captcha.make_captcha_pairs(2, seed=7)
    np.testing.assert_array_equal(prefix[0], noisy[:2])
    other = captcha.make_captcha_pairs(4, seed=8)
    assert not np.array_equal(other[1], clean)
    assert not np.array_equal(clean[0], clean[1])
    small = captcha.make_captcha_pairs(2, seed=7, size=64)
    assert small[0].shape == (2, 64, 64, 1)


def test_registered_source_splits_and_pipeline():
    src = registry.info("captcha")
    assert src.kind == "pairs" and src.offline and set(src.splits) == {"train", "test"}
    train = registry.load_arrays("captcha", "train", num_samples=3)
    test = registry.load_arrays("captcha", "test", num_samples=3)
    assert train[0].shape == test[1].shape == (3, 128, 128, 1)
    assert not any(np.array_equal(a, b) for a in train[1] for b in test[1])
    again = registry.load_arrays("captcha", "train", num_samples=3)
    np.testing.assert_array_equal(train[0], again[0])
    reseeded = registry.load_arrays("captcha", "train", num_samples=3, data_seed=1)
    assert not np.array_equal(reseeded[1], train[1])
    ds = registry.load("captcha", "test", image_size=64, channels=3, batch_size=2, num_samples=3, shuffle=False)
    noisy, clean = next(iter(ds))
    assert noisy.shape == (2, 64, 64, 3) and clean.shape == (2, 64, 64, 3)
    # one band replicated into three identical channels
    np.testing.assert_array_equal(clean[..., 0].numpy(), clean[..., 2].numpy())
    # load's image_size is drawn directly: the same pairs as make_captcha_pairs at that size
    direct = captcha.make_captcha_pairs(3, np.random.SeedSequence([0, 1]), size=64)
    np.testing.assert_allclose(clean[..., :1].numpy(), direct[1][:2], atol=1e-6)
    wide = registry.load_arrays("captcha", "test", image_size=(32, 48), num_samples=1)
    assert wide[0].shape == (1, 32, 48, 1)


def test_image_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="Generator"):
        captcha.render_captcha(0)
    with pytest.raises(ValueError, match="n_dots"):
        captcha.render_captcha(rng, n_dots=-1)
    with pytest.raises(ValueError, match="text"):
        captcha.render_captcha(rng, text="")
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        captcha.preprocess_captcha(np.zeros((60, 160), np.uint8), 0)
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        captcha.preprocess_captcha(np.zeros((60, 160, 3), np.float32), 0)
    with pytest.raises(ValueError, match="band"):
        captcha.preprocess_captcha(np.zeros((60, 160, 3), np.uint8), 3)
    with pytest.raises(ValueError, match="height, width"):
        captcha.preprocess_captcha(np.zeros((60, 160, 3), np.uint8), 0, size=(1, 2, 3))
    with pytest.raises(ValueError, match="interpolation"):
        captcha.preprocess_captcha(np.zeros((60, 160, 3), np.uint8), 0, interpolation="cubic")
    with pytest.raises(ValueError, match="positive integer"):
        captcha.make_captcha_pairs(0)
    with pytest.raises(ValueError, match="num_samples"):
        captcha.captcha_source("train", num_samples=0)
    with pytest.raises(ValueError, match="splits"):
        registry.load_arrays("captcha", "validation", num_samples=2)


# ------------------------------------------------------------------ audio


def test_voice_clips_match_the_package_files_at_8khz():
    clips = captcha.load_voice_clips()
    assert set(clips) == set(string.digits + string.ascii_uppercase)
    for char in "07AZ":
        expected, rate = package_voice(char)
        assert rate == 8000
        assert clips[char].dtype == np.float32 and clips[char].ndim == 1
        np.testing.assert_allclose(clips[char], expected, atol=1e-7)
    assert all(np.abs(w).max() <= 1.0 for w in clips.values())


def test_voice_clips_resample_other_rates(tmp_path):
    rate, seconds, freq = 16000, 0.5, 440.0
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    stereo = np.stack([tone, tone], axis=1)
    os.makedirs(tmp_path / "A")
    with wave.open(str(tmp_path / "A" / "clip.wav"), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((stereo * 32767).astype("<i2").tobytes())
    clips = captcha.load_voice_clips(str(tmp_path))
    assert set(clips) == {"A"}
    clip = clips["A"]
    assert len(clip) == 4000  # 0.5 s at 8 kHz
    spectrum = np.abs(np.fft.rfft(clip * np.hanning(len(clip))))
    peak_hz = np.argmax(spectrum) * 8000 / len(clip)
    assert abs(peak_hz - freq) <= 2.0
    np.testing.assert_allclose(np.abs(clip[500:-500]).max(), 0.5, atol=0.01)


def test_mixture_is_sum_of_components_at_8khz():
    m = captcha.make_audio_mixture(0)
    assert m.sample_rate == 8000
    assert m.mixture.shape == m.speech.shape == m.noise.shape == (20000,)
    assert m.mixture.dtype == np.float32
    np.testing.assert_array_equal(m.mixture, m.speech + m.noise)
    assert np.abs(m.mixture).max() <= 1.0
    assert len(m.characters) == 4 and set(m.characters) <= set(string.digits)
    assert len(m.onsets) == 4 and list(m.onsets) == sorted(m.onsets)
    # speech is silent before the first voice; noise is present throughout
    assert np.all(m.speech[: m.onsets[0]] == 0) and np.any(m.speech[m.onsets[0] : m.onsets[0] + 200] != 0)
    assert np.abs(m.noise[:4000]).max() > 0.05
    # deterministic per seed, different across seeds
    np.testing.assert_array_equal(m.mixture, captcha.make_audio_mixture(0).mixture)
    assert not np.array_equal(m.mixture, captcha.make_audio_mixture(1).mixture)


def test_speech_pieces_are_the_voices_placed_after_gaps():
    m = captcha.make_audio_mixture(
        3, speed_range=(1.0, 1.0), gain_range=(1.0, 1.0), noise_gain_range=(0.0, 0.0), white_noise_level=0,
        duration=None,
    )
    assert np.all(m.noise == 0)
    ends = []
    for char, onset in zip(m.characters, m.onsets):
        clip, _ = package_voice(char)
        np.testing.assert_allclose(m.speech[onset : onset + len(clip)], clip, atol=1e-7)
        ends.append(onset + len(clip))
    gaps = [m.onsets[0]] + [start - end for start, end in zip(m.onsets[1:], ends[:-1])] + [len(m.speech) - ends[-1]]
    assert all(1000 <= g <= 2000 for g in gaps)  # 1/8 to 1/4 s at 8 kHz


def test_speed_and_gain_of_the_voices():
    m = captcha.make_audio_mixture(
        4, speed_range=(1.2, 1.2), gain_range=(0.8, 0.8), white_noise_level=0, noise_gain_range=(0.0, 0.0),
        duration=None,
    )
    for i, (char, onset) in enumerate(zip(m.characters, m.onsets)):
        clip, _ = package_voice(char)
        stretched_length = int(len(clip) * 1.2)
        if i + 1 < len(m.onsets):
            assert 1000 <= m.onsets[i + 1] - onset - stretched_length <= 2000
        piece = m.speech[onset : onset + stretched_length]
        # slower by 1.2: the piece sampled at 1.2x spacing is the clip; gain 0.8 (8-bit truncation)
        positions = np.minimum((np.arange(len(clip)) * 1.2).astype(int), stretched_length - 1)
        np.testing.assert_allclose(piece[positions], 0.8 * clip, atol=1.01 / 128)


def test_background_is_reversed_voices():
    m = captcha.make_audio_mixture(
        5, white_noise_level=0, noise_speed_range=(1.0, 1.0), noise_gain_range=(1.0, 1.0), peak=10.0
    )
    clips = captcha.load_voice_clips()
    first = [c for c in string.digits if np.allclose(m.noise[: len(clips[c])], clips[c][::-1], atol=1e-7)]
    assert len(first) == 1


def test_peak_scaling_keeps_the_sum():
    m = captcha.make_audio_mixture(2, peak=0.25)
    np.testing.assert_allclose(np.abs(m.mixture).max(), 0.25, rtol=1e-5)
    np.testing.assert_array_equal(m.mixture, m.speech + m.noise)


def test_make_audio_mixtures_stacks_fragments():
    mixtures, speech, noise = captcha.make_audio_mixtures(3, seed=9, duration=1.0)
    assert mixtures.shape == speech.shape == noise.shape == (3, 8000)
    np.testing.assert_array_equal(mixtures, speech + noise)
    again = captcha.make_audio_mixtures(2, seed=9, duration=1.0)
    np.testing.assert_array_equal(again[0], mixtures[:2])
    assert not np.array_equal(mixtures[0], mixtures[1])


def test_audio_errors():
    with pytest.raises(ValueError, match="8000"):
        captcha.make_audio_mixture(0, sample_rate=16000)
    with pytest.raises(ValueError, match="8000"):
        captcha.load_voice_clips(sample_rate=22050)
    with pytest.raises(ValueError, match="no voice"):
        captcha.make_audio_mixture(0, characters="ab")
    with pytest.raises(ValueError, match="n_pieces"):
        captcha.make_audio_mixture(0, n_pieces=0)
    with pytest.raises(ValueError, match="duration"):
        captcha.make_audio_mixture(0, duration=-1.0)
    with pytest.raises(ValueError, match="gap_range"):
        captcha.make_audio_mixture(0, gap_range=(0.3, 0.1))
    with pytest.raises(ValueError, match="directory"):
        captcha.load_voice_clips("/nonexistent/voices")
    with pytest.raises(ValueError, match="duration"):
        captcha.make_audio_mixtures(2, duration=None)
