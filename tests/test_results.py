"""Result writers: PNG content read back with OpenCV, table round trips, overwrite policy."""

import csv
import json
import math
import os

import cv2
import numpy as np
import pytest

from tfinverse.utils import results


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"OpenCV could not read {path}"
    return image[:, :, ::-1] if image.ndim == 3 else image


def leftover_temp_files(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp") or name.startswith(".")]


def test_save_png_round_trip_grey_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((9, 13, 3))
    results.save_png(tmp_path / "rgb.png", rgb)
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgb.png"), np.round(rgb * 255).astype(np.uint8))
    grey = rng.random((7, 5, 1)) * 1.4 - 0.2  # out-of-range values are clipped
    results.save_png(tmp_path / "grey.png", grey)
    back = read_rgb(tmp_path / "grey.png")
    assert back.shape == (7, 5)
    np.testing.assert_array_equal(back, np.round(np.clip(grey[..., 0], 0, 1) * 255).astype(np.uint8))
    assert leftover_temp_files(tmp_path) == []


def test_save_png_rejects_bad_images(tmp_path):
    with pytest.raises(ValueError, match=r"\[height, width, 3\]"):
        results.save_png(tmp_path / "a.png", np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        results.save_png(tmp_path / "b.png", np.full((4, 4), np.nan))
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_image_grid_upscales_small_images_with_nearest_neighbour(tmp_path):
    rng = np.random.default_rng(1)
    low_res = rng.random((4, 4, 3))
    high_res = rng.random((32, 32, 3))
    grey = np.full((32, 32), 0.5)
    path = tmp_path / "grid.png"
    results.save_image_grid(path, [[low_res, high_res, grey]], scale=2, padding=4)
    grid = read_rgb(path)
    # No text: padding + 3 cells of 64 px + padding between them.
    assert grid.shape == (4 + 64 + 4, 4 + 3 * (64 + 4), 3)
    first = grid[4:68, 4:68]
    expected_low = np.kron(np.round(low_res * 255).astype(np.uint8), np.ones((16, 16, 1), np.uint8))
    np.testing.assert_array_equal(first, expected_low)
    second = grid[4:68, 72:136]
    expected_high = np.kron(np.round(high_res * 255).astype(np.uint8), np.ones((2, 2, 1), np.uint8))
    np.testing.assert_array_equal(second, expected_high)
    third = grid[4:68, 140:204]
    assert np.all(third == 128)  # the grey image is replicated into RGB
    # Padding stays white.
    assert np.all(grid[:4] == 255) and np.all(grid[:, 68:72] == 255)


def locate(grid, patch):
    """Top-left corner of the one place where ``patch`` appears pixel for pixel in ``grid``."""
    height, width = patch.shape[:2]
    # Candidates: where the patch's first pixel matches; each is then compared whole.
    candidates = np.argwhere(grid[: grid.shape[0] - height + 1, : grid.shape[1] - width + 1] == patch[0, 0])
    found = [(y, x) for y, x in candidates if np.array_equal(grid[y : y + height, x : x + width], patch)]
    assert len(found) == 1, f"the image should appear exactly once in the grid, unchanged; found {len(found)}"
    return found[0]


def test_image_grid_with_titles_and_captions_draws_text_in_its_bands(tmp_path):
    rng = np.random.default_rng(2)
    images = [rng.random((16, 16)) * 0.5 + 0.25 for _ in range(3)]
    rows = [[images[0], images[1]], [images[2], None]]
    path = tmp_path / "grid.png"
    results.save_image_grid(
        path,
        rows,
        row_labels=["noisy", "clean"],
        col_labels=["input", "output (\u03c3=0.1)"],
        captions=[["PSNR 23.41 dB", "SSIM 0.82"]],
        scale=4,
    )
    grid = read_rgb(path)
    assert grid.ndim == 2  # all images grey: a grey PNG
    cells = [np.kron(np.round(image * 255), np.ones((4, 4))) for image in images]
    (top0, left0), (top1, left1), (top2, left2) = (locate(grid, cell) for cell in cells)
    assert top0 == top1 and left0 == left2 and left1 > left0 + 64 and top2 > top0 + 64
    # Row labels to the left of the images, titles above, captions between the rows.
    assert left0 > 20 and np.any(grid[top0 : top0 + 64, :left0] < 100)
    assert top0 > 8 and np.any(grid[:top0, left0 : left0 + 64] < 100)
    assert np.any(grid[top0 + 64 : top2, left0 : left0 + 64] < 100)
    # The blank cell (row 2, column 2) stays white.
    assert np.all(grid[top2 : top2 + 64, left1 : left1 + 64] == 255)


def test_image_grid_rejects_bad_layouts(tmp_path):
    image = np.zeros((8, 8))
    with pytest.raises(ValueError, match="row_labels"):
        results.save_image_grid(tmp_path / "a.png", [[image]], row_labels=["a", "b"])
    with pytest.raises(ValueError, match="single image"):
        results.save_image_grid(tmp_path / "a.png", [image])
    with pytest.raises(ValueError, match="empty"):
        results.save_image_grid(tmp_path / "a.png", [])
    with pytest.raises(ValueError, match="scale"):
        results.save_image_grid(tmp_path / "a.png", [[image]], scale=0)


def test_markdown_table_layout():
    rows = [
        {"method": "CSGM", "psnr": 23.4123, "ssim": 0.823456},
        {"method": "IA|GAN", "psnr": float("inf"), "time": 12},
    ]
    text = results.markdown_table(rows)
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 4
    cells = [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines]
    assert cells[0] == ["method", "psnr", "ssim", "time"]
    assert cells[2] == ["CSGM", "23.41", "0.8235", ""]
    assert cells[3] == ["IA\\|GAN", "inf", "", "12"]
    # Text left-aligned, numbers right-aligned.
    assert cells[1][0].endswith("-") and all(rule.endswith(":") for rule in cells[1][1:])
    assert len({len(line) for line in lines}) == 1  # padded so the raw text lines up
    custom = results.markdown_table(rows, columns=["psnr", "method"], floatfmt={"psnr": ".1f"})
    assert custom.splitlines()[2].split("|")[1].strip() == "23.4"
    with pytest.raises(ValueError, match="list of dicts"):
        results.markdown_table([["a", 1]])


def test_write_table_round_trips_csv_and_json(tmp_path):
    rows = [
        {"method": "CSGM", "psnr": 23.412345678901234, "ssim": np.float32(0.82), "steps": np.int64(1800)},
        {"method": "IAGAN", "psnr": float("inf"), "steps": 300, "note": "a, \"quoted\" text"},
    ]
    markdown = results.write_table(tmp_path, "table", rows)
    assert (tmp_path / "table.md").read_text() == markdown
    assert markdown == results.markdown_table(rows)

    with open(tmp_path / "table.csv", newline="") as handle:
        back = list(csv.DictReader(handle))
    assert list(back[0]) == ["method", "psnr", "ssim", "steps", "note"]
    assert float(back[0]["psnr"]) == rows[0]["psnr"]
    assert back[0]["ssim"] == "0.82" and np.float32(back[0]["ssim"]) == rows[0]["ssim"]
    assert int(back[0]["steps"]) == 1800 and back[0]["note"] == ""
    assert math.isinf(float(back[1]["psnr"])) and back[1]["note"] == rows[1]["note"]

    loaded = json.loads((tmp_path / "table.json").read_text())
    assert loaded[0] == {"method": "CSGM", "psnr": rows[0]["psnr"], "ssim": 0.82, "steps": 1800}
    assert loaded[1]["psnr"] == "inf" and "ssim" not in loaded[1]
    assert leftover_temp_files(tmp_path) == []


def test_writers_refuse_to_overwrite_without_the_flag(tmp_path):
    rows = [{"a": 1}]
    results.write_table(tmp_path, "t", rows)
    (tmp_path / "t.json").write_text("keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        results.write_table(tmp_path, "t", [{"a": 2}])
    assert (tmp_path / "t.json").read_text() == "keep"
    results.write_table(tmp_path, "t", [{"a": 2}], overwrite=True)
    assert json.loads((tmp_path / "t.json").read_text()) == [{"a": 2}]

    # A refusal on one file leaves the others of the set unwritten.
    (tmp_path / "u.md").write_text("x")
    with pytest.raises(FileExistsError):
        results.write_table(tmp_path, "u", rows)
    assert not (tmp_path / "u.csv").exists() and not (tmp_path / "u.json").exists()

    image = np.zeros((4, 4))
    results.save_png(tmp_path / "i.png", image)
    with pytest.raises(FileExistsError, match="--overwrite"):
        results.save_png(tmp_path / "i.png", np.ones((4, 4)))
    assert np.all(read_rgb(tmp_path / "i.png") == 0)
    results.save_png(tmp_path / "i.png", np.ones((4, 4)), overwrite=True)
    assert np.all(read_rgb(tmp_path / "i.png") == 255)
    with pytest.raises(FileExistsError, match="--overwrite"):
        results.save_image_grid(tmp_path / "i.png", [[image]])
    with pytest.raises(ValueError, match="file stem"):
        results.write_table(tmp_path, "sub/t", rows)


def test_atomic_write_leaves_no_partial_or_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "folder" / "out.txt"
    results.atomic_write_text(target, "first")
    assert target.read_text() == "first"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not the private mode of a temp file
    results.atomic_write_bytes(target, b"second", overwrite=True)
    assert target.read_bytes() == b"second"

    # A crash while writing the temporary file keeps the old content and cleans up.
    def failing_fsync(_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write_bytes(target, b"third" * 1000, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write_bytes(tmp_path / "deep" / "new.txt", b"x")
    monkeypatch.undo()
    assert target.read_bytes() == b"second"
    assert not (tmp_path / "deep" / "new.txt").exists()
    assert os.listdir(target.parent) == ["out.txt"]
    with pytest.raises(TypeError):
        results.atomic_write_bytes(target, "text", overwrite=True)
