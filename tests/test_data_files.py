"""File-backed sources: image folders, CelebA's layout, rain pairs and tfds copies, built
from PNGs written into tmp_path (offline only) and checked against cv2 and numpy."""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfinverse import data  # noqa: E402
from tfinverse.data import folders, tfds_sources  # noqa: E402
from tfinverse.data.registry import DatasetUnavailableError  # noqa: E402


def _write(path, rgb):
    """Writes an RGB (or grey) uint8/uint16 array losslessly as PNG, whatever the name says."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    encoded.tofile(path)


def _images(seed, n, shape=(12, 10, 3)):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _all(ds):
    return [np.asarray(x) for x in ds.as_numpy_iterator()]


def _rows(images):
    return {np.ascontiguousarray(im, np.float32).tobytes() for im in images}


# ---------------------------------------------------------------------------- folder


@pytest.fixture()
def image_folder(tmp_path):
    """23 distinct images in nested folders plus files that must be ignored."""
    images = _images(0, 23)
    names = [f"{'a/' if i % 3 == 0 else 'b/c/' if i % 3 == 1 else ''}img{i:02d}.png" for i in range(23)]
    for name, image in zip(names, images):
        _write(str(tmp_path / name), image)
    (tmp_path / "notes.txt").write_text("not an image")
    _write(str(tmp_path / ".hidden" / "x.png"), images[0])
    order = np.argsort(names)  # sorted relative paths
    return tmp_path, images[order]


def test_folder_reads_sorted_paths_and_holds_out_every_tenth(image_folder):
    root, expected = image_folder
    everything = _all(data.load("folder", "all", data_dir=str(root), batch_size=None, shuffle=False))
    assert len(everything) == 23
    assert everything[0].dtype == np.float32 and everything[0].shape == (12, 10, 3)
    np.testing.assert_allclose(np.stack(everything), expected / 255.0, atol=1e-7)
    test = np.stack(_all(data.load("folder", "test", data_dir=str(root), batch_size=None, shuffle=False)))
    train = np.stack(_all(data.load("folder", "train", data_dir=str(root), batch_size=None, shuffle=False)))
    np.testing.assert_allclose(test, expected[[9, 19]] / 255.0, atol=1e-7)
    assert len(train) == 21 and not _rows(train) & _rows(test)
    assert _rows(train) | _rows(test) == _rows(expected / 255.0)


def test_folder_shuffle_is_seeded_complete_and_reshuffled(image_folder):
    root, expected = image_folder

    def two_epochs(seed, cache=False):
        ds = data.load("folder", "all", data_dir=str(root), batch_size=23, seed=seed, repeat=True, cache=cache)
        it = iter(ds)
        return next(it).numpy(), next(it).numpy()

    a1, a2 = two_epochs(5)
    b1, _ = two_epochs(5)
    c1, _ = two_epochs(6)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, c1)
    assert not np.array_equal(a1, a2)
    assert _rows(a1) == _rows(a2) == _rows(expected / 255.0)
    d1, d2 = two_epochs(5, cache=True)
    np.testing.assert_array_equal(d1, two_epochs(5, cache=True)[0])
    assert not np.array_equal(d1, d2) and _rows(d1) == _rows(d2) == _rows(expected / 255.0)


def test_folder_resizes_with_cv2_area_and_converts_channels(tmp_path):
    colour = _images(1, 1, (20, 16, 3))[0]
    grey = _images(2, 1, (20, 16))[0]
    deep = np.random.default_rng(3).integers(0, 65536, (20, 16), dtype=np.uint16)
    _write(str(tmp_path / "0_colour.png"), colour)
    _write(str(tmp_path / "1_grey.png"), grey)
    _write(str(tmp_path / "2_deep.png"), deep)
    raw = _all(data.load("folder", "all", data_dir=str(tmp_path), batch_size=None, shuffle=False))
    np.testing.assert_allclose(raw[1], np.repeat(grey[..., None], 3, -1) / 255.0, atol=1e-7)
    np.testing.assert_allclose(raw[2][..., 0], deep / 65535.0, atol=1e-7)
    small = _all(data.load("folder", "all", data_dir=str(tmp_path), image_size=(10, 8), batch_size=None,
                           shuffle=False))
    reference = cv2.resize(colour.astype(np.float32) / 255.0, (8, 10), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(small[0], reference, atol=1e-6)
    luma = _all(data.load("folder", "all", data_dir=str(tmp_path), channels=1, batch_size=None, shuffle=False))
    expected_luma = (colour.astype(np.float64) / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(luma[0][..., 0], expected_luma, atol=1e-6)
    np.testing.assert_allclose(luma[1][..., 0], grey / 255.0, atol=1e-6)


def test_folder_errors_name_the_problem(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetUnavailableError, match=f"(?s){missing}.*Expected layout") as info:
        data.load("folder", data_dir=str(missing))
    assert isinstance(info.value, FileNotFoundError)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DatasetUnavailableError, match="no .png/.jpg/.jpeg/.bmp images"):
        data.load("folder", data_dir=str(tmp_path / "empty"))
    few = tmp_path / "few"
    for i, image in enumerate(_images(4, 3)):
        _write(str(few / f"{i}.png"), image)
    with pytest.raises(ValueError, match="'test' split .* is empty"):
        data.load("folder", "test", data_dir=str(few))
    (few / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(tf.errors.OpError, match="cannot decode image file .*broken.png"):
        _all(data.load("folder", "all", data_dir=str(few), batch_size=4))
    with pytest.raises(ValueError, match="cannot decode image file .*broken.png"):
        folders.read_image(str(few / "broken.png"))


def test_default_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TFINVERSE_DATA_DIR", str(tmp_path))
    assert data.registry.default_data_dir("rain") == os.path.join(str(tmp_path), "rain")
    with pytest.raises(DatasetUnavailableError, match=os.path.join(str(tmp_path), "images")):
        data.load("folder")


# ---------------------------------------------------------------------------- celeba


def _celeba(root, images_dir=("img_align_celeba",), partition="list_eval_partition.txt", csv=False):
    faces = _images(7, 5, (218, 178, 3))
    codes = [0, 0, 1, 2, 0]
    names = [f"{i + 1:06d}.jpg" for i in range(5)]  # PNG content: compared exactly
    for name, face in zip(names, faces):
        _write(os.path.join(root, *images_dir, name), face)
    lines = ["image_id,partition"] + [f"{n},{c}" for n, c in zip(names, codes)] if csv else [
        f"{n} {c}" for n, c in zip(names, codes)]
    path = os.path.join(root, partition)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return faces


def test_celeba_folder_partition_and_center_crop(tmp_path):
    faces = _celeba(str(tmp_path))
    train = _all(data.load("celeba_folder", "train", data_dir=str(tmp_path), batch_size=None, shuffle=False))
    assert len(train) == 3 and train[0].shape == (108, 108, 3)
    # the centre 108 x 108 square of a 218 x 178 face: rows 55..162, columns 35..142
    expected = faces[[0, 1, 4], 55:163, 35:143] / 255.0
    np.testing.assert_allclose(np.stack(train), expected, atol=1e-7)
    (valid,) = _all(data.load("celeba_folder", "valid", data_dir=str(tmp_path), batch_size=None))
    (test,) = _all(data.load("celeba_folder", "test", data_dir=str(tmp_path), batch_size=None,
                             center_crop=None))
    np.testing.assert_allclose(valid, faces[2, 55:163, 35:143] / 255.0, atol=1e-7)
    np.testing.assert_allclose(test, faces[3] / 255.0, atol=1e-7)
    batch = next(iter(data.load("celeba_folder", "all", data_dir=str(tmp_path), image_size=64, batch_size=5)))
    assert batch.shape == (5, 64, 64, 3) and batch.dtype == tf.float32
    assert data.info("celeba_folder").interpolation == "bilinear"


@pytest.mark.parametrize(
    "images_dir, partition, csv",
    [
        (("Img", "img_align_celeba"), os.path.join("Eval", "list_eval_partition.txt"), False),
        (("img_align_celeba", "img_align_celeba"), "list_eval_partition.csv", True),
    ],
)
def test_celeba_folder_other_mirror_layouts(tmp_path, images_dir, partition, csv):
    faces = _celeba(str(tmp_path), images_dir, partition, csv)
    (test,) = _all(data.load("celeba_folder", "test", data_dir=str(tmp_path), batch_size=None))
    np.testing.assert_allclose(test, faces[3, 55:163, 35:143] / 255.0, atol=1e-7)


def test_celeba_folder_errors(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="(?s)img_align_celeba/.*list_eval_partition.txt"):
        data.load("celeba_folder", data_dir=str(tmp_path / "absent"))
    _celeba(str(tmp_path))
    os.remove(tmp_path / "list_eval_partition.txt")
    with pytest.raises(DatasetUnavailableError, match="no list_eval_partition.txt"):
        data.load("celeba_folder", "train", data_dir=str(tmp_path))
    assert len(_all(data.load("celeba_folder", "all", data_dir=str(tmp_path), batch_size=None))) == 5
    with pytest.raises(tf.errors.OpError, match="000001.jpg is 218x178, smaller than center_crop=300"):
        _all(data.load("celeba_folder", "all", data_dir=str(tmp_path), center_crop=300, shuffle=False))
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n999999.jpg 0\n")
    with pytest.raises(DatasetUnavailableError, match="missing .*999999.jpg"):
        data.load("celeba_folder", "train", data_dir=str(tmp_path))


def test_tfds_and_folder_center_crops_agree():
    image = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    for size in (108, 101):
        ours = tfds_sources._center_crop(tf.constant(image), size).numpy()
        np.testing.assert_array_equal(ours, folders.center_crop_image(image, size))
    np.testing.assert_array_equal(folders.center_crop_image(image, 108), image[55:163, 35:143])


# ---------------------------------------------------------------------------- rain pairs


def _pairs(seed, n, shape=(8, 6, 3)):
    clean = _images(seed, n, shape)
    return 255 - clean, clean  # rainy = inverted clean: pairing stays checkable after shuffles


def test_rain_pairs_side_by_side_default_and_left(tmp_path):
    rainy, clean = _pairs(0, 12)
    for i in range(12):
        _write(str(tmp_path / f"{i:03d}.png"), np.concatenate([clean[i], rainy[i]], axis=1))
    assert data.info("rain_pairs").kind == "pairs"
    pairs = _all(data.load("rain_pairs", "train", data_dir=str(tmp_path), batch_size=None, shuffle=False))
    assert len(pairs) == 11  # position 9 is test
    keep = [i for i in range(12) if i != 9]
    np.testing.assert_allclose(np.stack([p[0] for p in pairs]), rainy[keep] / 255.0, atol=1e-7)
    np.testing.assert_allclose(np.stack([p[1] for p in pairs]), clean[keep] / 255.0, atol=1e-7)
    ((left_rainy, left_clean),) = _all(data.load("rain_pairs", "test", data_dir=str(tmp_path), batch_size=None,
                                                 rainy_half="left"))
    np.testing.assert_allclose(left_rainy, clean[9] / 255.0, atol=1e-7)
    np.testing.assert_allclose(left_clean, rainy[9] / 255.0, atol=1e-7)
    observed, truth = next(iter(data.load("rain_pairs", "all", data_dir=str(tmp_path), image_size=4,
                                          batch_size=12, seed=1)))
    assert observed.shape == truth.shape == (12, 4, 4, 3)
    np.testing.assert_allclose(observed.numpy(), 1.0 - truth.numpy(), atol=1e-5)  # pairs stay together
    reference = cv2.resize(clean[0].astype(np.float32) / 255.0, (4, 4), interpolation=cv2.INTER_AREA)
    unshuffled = next(iter(data.load("rain_pairs", "all", data_dir=str(tmp_path), image_size=4, batch_size=12,
                                     shuffle=False)))
    np.testing.assert_allclose(unshuffled[1][0].numpy(), reference, atol=1e-6)


def test_rain_pairs_split_folders(tmp_path):
    rainy, clean = _pairs(1, 5)
    for i in range(5):
        folder = "training" if i < 3 else "test_syn"
        _write(str(tmp_path / folder / f"{i}.png"), np.concatenate([clean[i], rainy[i]], axis=1))
    train = _all(data.load("rain_pairs", "train", data_dir=str(tmp_path), batch_size=None, shuffle=False))
    test = _all(data.load("rain_pairs", "test", data_dir=str(tmp_path), batch_size=None, shuffle=False))
    assert len(train) == 3 and len(test) == 2
    np.testing.assert_allclose(np.stack([p[1] for p in test]), clean[3:] / 255.0, atol=1e-7)


def test_rain_pairs_two_folders_match_by_name(tmp_path):
    rainy, clean = _pairs(2, 4)
    for i in range(4):
        _write(str(tmp_path / "rainy" / f"{i}.png"), rainy[i])
        _write(str(tmp_path / "clean" / f"{i}.bmp"), clean[i])
    pairs = _all(data.load("rain_pairs", "all", data_dir=str(tmp_path), batch_size=None, shuffle=False))
    np.testing.assert_allclose(np.stack([p[0] for p in pairs]), rainy / 255.0, atol=1e-7)
    np.testing.assert_allclose(np.stack([p[1] for p in pairs]), clean / 255.0, atol=1e-7)
    _write(str(tmp_path / "rainy" / "extra.png"), rainy[0])
    with pytest.raises(ValueError, match="no partner .*extra"):
        data.load("rain_pairs", "all", data_dir=str(tmp_path))


def test_rain_pairs_errors(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="(?s)rain_pairs: no folder .*side-by-side"):
        data.load("rain_pairs", data_dir=str(tmp_path / "absent"))
    _write(str(tmp_path / "odd.png"), _images(3, 1, (8, 7, 3))[0])
    with pytest.raises(tf.errors.OpError, match="odd.png is 7 pixels wide"):
        _all(data.load("rain_pairs", "all", data_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="rainy_half"):
        data.load("rain_pairs", "all", data_dir=str(tmp_path), rainy_half="top")
    with pytest.raises(DatasetUnavailableError, match="no folder .*rainy"):
        data.load("rain_pairs", "all", data_dir=str(tmp_path), layout="folders")


# ---------------------------------------------------------------------------- tfds


@pytest.mark.parametrize("name, tfds_name", [("mnist", "mnist"), ("celeb_a", "celeb_a"), ("voc", "voc")])
def test_tfds_without_copy_fails_fast_with_instructions(tmp_path, name, tfds_name):
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError) as info:
        data.load(name, "train", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10.0
    message = str(info.value)
    assert os.path.join(str(tmp_path), tfds_name) in message
    assert "download=True" in message and "--download" in message


def test_tfds_reports_unprepared_versions(tmp_path):
    (tmp_path / "cifar10" / "1.0.0").mkdir(parents=True)
    with pytest.raises(DatasetUnavailableError, match=r"found \['1.0.0'\]"):
        data.load("cifar10", "test", data_dir=str(tmp_path))
    with pytest.raises(TypeError, match="takes no option"):
        data.load("cifar10", "test", data_dir=str(tmp_path), center_crop=5)


def test_tfds_pipeline_with_mocked_copy(tmp_path):
    import tensorflow_datasets as tfds

    policy = tfds.testing.MockPolicy.USE_CODE
    with tfds.testing.mock_data(num_examples=6, policy=policy):
        batches = list(data.load("mnist", "test", data_dir=str(tmp_path), download=True, image_size=32,
                                 batch_size=4, seed=0))
        assert [b.shape for b in batches] == [(4, 32, 32, 1), (2, 32, 32, 1)]
        values = np.concatenate([b.numpy() for b in batches])
        assert values.dtype == np.float32 and values.min() >= 0.0 and values.max() <= 1.0
        faces = next(iter(data.load("celeb_a", "valid", data_dir=str(tmp_path), download=True, batch_size=2)))
        assert faces.shape == (2, 108, 108, 3)
        whole = next(iter(data.load("celeb_a", "valid", data_dir=str(tmp_path), download=True, batch_size=2,
                                    center_crop=None)))
        assert whole.shape == (2, 218, 178, 3)
