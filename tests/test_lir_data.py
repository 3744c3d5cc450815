"""LIR's data: unpaired folder checks and streams, the photograph split, the offline
low-dose CT pipeline, the .npy loader, and the Poisson preset against scikit-image."""

import hashlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfinverse import data
from tfinverse.data import ct, unpaired
from tfinverse.errors import InputError
from tfinverse.operators.noise import get_noise
from tfinverse.tasks import lir as lir_settings


def _psnr(a, b, data_range=1.0):
    return 10 * np.log10(data_range ** 2 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def _write(folder, name, value, size=(70, 80), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = np.clip(value * 255 + rng.integers(-3, 4, size=(*size, 3)), 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / name), image)


@pytest.fixture()
def folders(tmp_path):
    noisy, clean = tmp_path / "noisy", tmp_path / "clean"
    for i in range(3):
        _write(noisy, f"n{i}.png", 0.2, seed=i)
        _write(clean, f"c{i}.png", 0.8, seed=10 + i)
    return noisy, clean


# ----------------------------------------------------------------------------- settings


def test_settings_module_imports_nothing_heavy():
    code = "import sys, json, tfinverse.tasks.lir; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}
    assert not loaded & {"tensorflow", "keras", "skimage", "cv2", "matplotlib"}


def test_settings_values():
    w = lir_settings.LOSS_WEIGHTS
    assert (w["recon_x"], w["recon_kl"], w["recon_x_cyc"], w["recon_kl_cyc"], w["vgg"], w["background"],
            w["content"], w["gan"]) == (10, 0.01, 10, 0.01, 1, 5, 1, 1)
    assert lir_settings.learning_rate_at(99_999) == 1e-4 and lir_settings.learning_rate_at(200_000) == 2.5e-5
    assert lir_settings.NOISE_PRESETS["gaussian50"]["sigma"] == 50 / 255


# ----------------------------------------------------------------------------- photographs


def test_photo_split_is_by_source_image_and_disjoint():
    for channels in (1, 3):
        names = [set(unpaired.photo_names(s, channels)) for s in ("noisy", "clean", "test")]
        assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    sets = {s: data.load_arrays("lir_photos", split=s) for s in ("noisy", "clean", "test")}
    assert [len(sets[s]) for s in ("noisy", "clean", "test")] == [677, 616, 82]  # as documented
    # About equally bright sets: the clean set's brightness is what a translation learns.
    means = [float(sets[s].mean()) for s in ("noisy", "clean", "test")]
    assert max(means) - min(means) < 0.06, means
    assert sets["noisy"].shape[1:] == (64, 64, 3) and sets["noisy"].max() <= 1.0
    hashes = {s: {hashlib.sha1(p.tobytes()).hexdigest() for p in a} for s, a in sets.items()}
    assert not (hashes["noisy"] & hashes["clean"] or hashes["noisy"] & hashes["test"]
                or hashes["clean"] & hashes["test"])
    grey = unpaired.lir_photos("noisy", channels=1)
    assert grey.shape[-1] == 1 and len(grey) == 1404
    whole = unpaired.lir_test_photos(3)
    assert [im.shape for im in whole] == [(300, 451, 3), (400, 600, 3)]


def test_poisson_preset_matches_skimage_random_noise():
    from skimage.util import random_noise

    image = np.random.default_rng(0).integers(0, 256, size=(128, 128)).astype(np.uint8) / 255.0
    peak = lir_settings.skimage_poisson_peak(image)
    assert peak == 256.0
    reference = np.stack([random_noise(image, mode="poisson", rng=s) for s in range(8)])
    preset = dict(lir_settings.NOISE_PRESETS["poisson"])
    noise = get_noise(preset.pop("name"), **preset)
    ours = np.stack([noise(tf.constant(image, tf.float32), seed=s).numpy() for s in range(8)])
    ref_err, our_err = reference - image, ours - image
    assert abs(ref_err.var() / our_err.var() - 1) < 0.03  # same noise level
    assert abs(ref_err.mean() - our_err.mean()) < 1e-3
    assert ours.min() >= 0 and ours.max() <= 1  # clipped, like scikit-image
    # A half-peak model would be clearly noisier: the test can tell the peaks apart.
    half = get_noise("poisson", peak=128.0, clip=True)(tf.constant(image, tf.float32), seed=0).numpy() - image
    assert half.var() / ref_err.var() > 1.5


# ----------------------------------------------------------------------------- folders


def test_good_folders_pass(folders):
    noisy, clean = unpaired.check_unpaired_folders(*folders)
    assert len(noisy) == len(clean) == 3


def test_same_or_nested_folders_refused(folders, tmp_path):
    noisy, _ = folders
    for pair in ((noisy, noisy), (tmp_path, noisy), (noisy, tmp_path)):
        with pytest.raises(InputError) as info:
            unpaired.check_unpaired_folders(*pair)
        assert "\n" not in str(info.value)


def test_shared_files_refused(folders):
    noisy, clean = folders
    _write(clean, "n0.png", 0.8, seed=99)  # same name as a noisy file: a paired set
    with pytest.raises(InputError, match="same name"):
        unpaired.check_unpaired_folders(noisy, clean)
    (clean / "n0.png").unlink()
    (clean / "copy.png").write_bytes((noisy / "n1.png").read_bytes())  # same image, renamed
    with pytest.raises(InputError, match="identical contents"):
        unpaired.check_unpaired_folders(noisy, clean, allow_same_names=True)


def test_small_images_refused(folders):
    noisy, clean = folders
    _write(clean, "small.png", 0.8, size=(63, 200))
    with pytest.raises(InputError, match="63x200, smaller than the 64x64 crop"):
        unpaired.check_unpaired_folders(noisy, clean)


def test_folder_source_streams_unpaired_crops(folders):
    noisy, clean = folders
    ds = data.load("unpaired_folders", noisy_dir=str(noisy), clean_dir=str(clean), batch_size=4,
                   repeat=True, seed=3)
    x_noisy, x_clean = next(iter(ds))
    assert x_noisy.shape == x_clean.shape == (4, 64, 64, 3)
    assert abs(float(tf.reduce_mean(x_noisy)) - 0.2) < 0.02 and abs(float(tf.reduce_mean(x_clean)) - 0.8) < 0.02


def test_unpaired_stream_crops_flips_and_seeds():
    rng = np.random.default_rng(1)
    noisy = rng.uniform(size=(6, 80, 72, 1)).astype(np.float32) * 0.5
    clean = 0.5 + rng.uniform(size=(5, 80, 72, 1)).astype(np.float32) * 0.5
    batches = list(unpaired_take(unpaired.unpaired_stream(noisy, clean, batch_size=4, seed=2), 3))
    for a, b in batches:
        assert a.shape == b.shape == (4, 64, 64, 1)
        assert a.max() <= 0.5 and b.min() >= 0.5  # each stream reads its own source
    again = list(unpaired_take(unpaired.unpaired_stream(noisy, clean, batch_size=4, seed=2), 3))
    np.testing.assert_array_equal(batches[0][0], again[0][0])
    other = list(unpaired_take(unpaired.unpaired_stream(noisy, clean, batch_size=4, seed=5), 1))
    assert not np.array_equal(batches[0][0], other[0][0])
    # Every crop is a (possibly flipped) window of some source image.
    crop = batches[0][0][0, ..., 0]
    found = flipped = False
    for image in noisy[..., 0]:
        for r in range(17):
            for c in range(9):
                window = image[r:r + 64, c:c + 64]
                found |= np.array_equal(window, crop)
                flipped |= np.array_equal(window[:, ::-1], crop)
    assert found or flipped


def unpaired_take(ds, n):
    for a, b in ds.take(n):
        yield a.numpy(), b.numpy()


# ----------------------------------------------------------------------------- CT


def test_ct_round_trip_of_a_clean_phantom_is_accurate():
    values, head = ct._phantom(0, 1000, 128)
    hu = ct.phantom_to_hu(values, head)
    recon = ct.simulate_fbp(hu, [None], np.random.default_rng(0))[0]
    assert _psnr(ct.hu_to_slice(recon), ct.hu_to_slice(hu)) > 32.0  # measured 33.6 dB


def test_ct_low_dose_is_noisier_than_full_dose():
    values, head = ct._phantom(0, 1001, 128)
    hu = ct.phantom_to_hu(values, head)
    rng = np.random.default_rng(1)
    noiseless, full, low = ct.simulate_fbp(hu, [None, ct.FULL_DOSE_I0, ct.FULL_DOSE_I0 * ct.LOW_DOSE_FRACTION], rng)
    to_window = ct.display_window
    full_psnr = _psnr(to_window(ct.hu_to_slice(full)), to_window(ct.hu_to_slice(noiseless)))
    low_psnr = _psnr(to_window(ct.hu_to_slice(low)), to_window(ct.hu_to_slice(noiseless)))
    # A quarter of the photons: about 4x the noise variance, i.e. about 6 dB.
    assert 4.5 < full_psnr - low_psnr < 7.5
    # Visibly noisy in the display window (documented 26.8 dB low vs full at these settings).
    low_vs_full = _psnr(to_window(ct.hu_to_slice(low)), to_window(ct.hu_to_slice(full)))
    assert 23.0 < low_vs_full < 30.0


def test_ct_sets_are_disjoint_and_in_range():
    kwargs = dict(image_size=64, train_count=3, seed=4)
    noisy = ct.ct_phantoms("noisy", **kwargs)
    clean = ct.ct_phantoms("clean", **kwargs)
    truth = ct.ct_phantoms("test_truth", count=3, **kwargs)
    test_noisy = ct.ct_phantoms("test_noisy", count=3, **kwargs)
    assert noisy.shape == clean.shape == truth.shape == (3, 64, 64, 1)
    for array in (noisy, clean, truth):
        assert array.min() >= 0 and array.max() <= 1 and array.dtype == np.float32
    # Different phantoms differ far more than the noise of one phantom at two doses.
    pair_gap = np.abs(test_noisy - truth).mean()
    for a, b in ((noisy, clean), (noisy, truth), (clean, truth)):
        gaps = [np.abs(x - y).mean() for x in a for y in b]
        assert min(gaps) > 2 * pair_gap
    # Registered, and the same seed gives the same slices.
    again = data.load_arrays("ct_phantoms", split="noisy", image_size=64, train_count=3, seed=4)
    np.testing.assert_array_equal(again, noisy)


def test_display_window_formula():
    stored = np.array([0.0, 860 / 3000, 1060 / 3000, 1260 / 3000, 1.0])
    np.testing.assert_allclose(ct.display_window(stored), [0, 0, 0.5, 1, 1], atol=1e-6)


def test_ct_npy_folders(tmp_path):
    noisy, clean = tmp_path / "quarter", tmp_path / "full"
    noisy.mkdir()
    clean.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(noisy / f"q{i}.npy", rng.uniform(size=(40, 48)).astype(np.float32))
        np.save(clean / f"f{i}.npy", rng.uniform(size=(40, 48, 1)).astype(np.float32))
    slices = next(iter(data.load("ct_npy", split="clean", noisy_dir=str(noisy), clean_dir=str(clean),
                                 batch_size=2)))
    assert slices.shape == (2, 40, 48, 1)
    with pytest.raises(InputError):
        data.load("ct_npy", split="noisy", noisy_dir=str(noisy), clean_dir=str(noisy))
    np.save(noisy / "hu.npy", rng.uniform(-1000, 1000, size=(40, 48)))
    with pytest.raises(InputError, match=r"expected \[0, 1\] slices"):
        data.load("ct_npy", split="noisy", noisy_dir=str(noisy), clean_dir=str(clean))
