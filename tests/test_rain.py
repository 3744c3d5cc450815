"""Synthetic rain streaks: determinism, orientation, density and the screen blend."""

import numpy as np
import pytest
from scipy import ndimage

from tfinverse.data import rain


def _streak_angle_degrees(layer):
    """Streak direction from the structure tensor (scipy Sobel gradients), degrees from vertical.

    Gradients point across the streaks, so the streak direction is the eigenvector of the
    smallest eigenvalue of the summed gradient outer products.
    """
    gx = ndimage.sobel(layer.astype(np.float64), axis=1)  # d/dcolumn (x, to the right)
    gy = ndimage.sobel(layer.astype(np.float64), axis=0)  # d/drow (y, downwards)
    tensor = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    eigenvalues, eigenvectors = np.linalg.eigh(tensor)
    vx, vy = eigenvectors[:, 0]  # smallest eigenvalue first
    if vy < 0:
        vx, vy = -vx, -vy  # point downwards: angle in (-90, 90]
    return np.degrees(np.arctan2(vx, vy))


def test_layer_shape_range_and_determinism():
    a = rain.render_rain_streaks((48, 80), seed=3)
    b = rain.render_rain_streaks((48, 80), seed=3)
    c = rain.render_rain_streaks((48, 80), seed=4)
    assert a.shape == (48, 80) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.2
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("angle", [-35.0, 0.0, 15.0, 40.0])
def test_streaks_follow_the_requested_angle(angle):
    layer = rain.render_rain_streaks(
        (160, 160), density=0.08, angle_degrees=angle, length=20, blur=5, seed=1, angle_jitter_degrees=0.0
    )
    assert _streak_angle_degrees(layer) == pytest.approx(angle, abs=3.0)


def test_positive_angle_puts_the_lower_end_to_the_right():
    # One long streak without jitter: its bottom-most pixels lie right of its top-most ones.
    layer = rain.render_rain_streaks(
        (100, 100), density=0.004, angle_degrees=30, length=40, blur=0, seed=2,
        angle_jitter_degrees=0.0, length_jitter=0.0,
    )
    labels, count = ndimage.label(layer > 0.3)
    assert count >= 1
    sizes = ndimage.sum(np.ones_like(layer), labels, range(1, count + 1))
    rows, cols = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    assert cols[rows == rows.max()].mean() > cols[rows == rows.min()].mean()


def test_density_scales_the_covered_fraction():
    def covered(density):
        fractions = [
            np.mean(rain.render_rain_streaks((128, 128), density=density, blur=0, seed=s) > 0.1) for s in range(4)
        ]
        return float(np.mean(fractions))

    low, high, dense = covered(0.02), covered(0.04), covered(0.3)
    assert rain.render_rain_streaks((32, 32), density=0.0, seed=0).max() == 0.0
    # Sparse streaks rarely overlap: doubling the density doubles the covered area.
    assert 1.6 < high / low < 2.3
    assert dense > 4 * high


def test_motion_blur_kernel_is_a_normalised_line():
    identity = rain.motion_blur_kernel(0, 10.0)
    np.testing.assert_array_equal(identity, np.ones((1, 1), np.float32))
    vertical = rain.motion_blur_kernel(7, 0.0)
    assert vertical.shape == (7, 7)
    assert vertical.sum() == pytest.approx(1.0, abs=1e-6)
    # A vertical motion spreads weight along the central column (antialiasing touches its
    # two neighbours), centred on the middle pixel.
    columns = vertical.sum(axis=0)
    assert columns[3] > 0.6 and columns[[0, 1, 5, 6]].sum() == 0
    assert np.sum(columns * np.arange(7)) == pytest.approx(3.0, abs=0.05)
    assert np.sum(vertical.sum(axis=1) * np.arange(7)) == pytest.approx(3.0, abs=0.05)
    assert _streak_angle_degrees(np.pad(rain.motion_blur_kernel(15, 30.0), 4)) == pytest.approx(30.0, abs=4.0)


def test_screen_blend_matches_its_closed_form():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(2, 9, 7, 3)).astype(np.float32)
    layer = rng.uniform(size=(2, 9, 7)).astype(np.float32)
    rainy = rain.screen_blend(clean, layer)
    np.testing.assert_allclose(rainy, 1 - (1 - clean) * (1 - layer[..., None]), atol=1e-6)
    np.testing.assert_allclose(rain.screen_blend(clean, np.zeros((2, 9, 7))), clean, atol=0)
    np.testing.assert_allclose(rain.screen_blend(clean, np.ones((2, 9, 7, 1))), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W\]"):
        rain.screen_blend(clean, np.zeros((2, 9, 8)))


def test_add_rain_gives_non_negative_components_deterministically():
    rng = np.random.default_rng(1)
    clean = rng.uniform(size=(3, 32, 32, 3)).astype(np.float32)
    rainy, same_clean = rain.add_rain(clean, seed=5, density=0.1)
    again, _ = rain.add_rain(clean, seed=5, density=0.1)
    np.testing.assert_array_equal(same_clean, clean)
    np.testing.assert_array_equal(rainy, again)
    component = rainy - clean
    assert component.min() >= 0 and rainy.max() <= 1.0
    # Grey rain: the layer behind each pixel is the same in every channel.
    layer = component / (1 - clean)
    np.testing.assert_allclose(layer[..., 0], layer[..., 2], atol=1e-4)
    # Different images get different streaks.
    assert not np.allclose(layer[0, ..., 0], layer[1, ..., 0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": (0, 5)}, "shape"),
        ({"shape": (8, 8), "thickness": 0}, "thickness"),
        ({"shape": (8, 8), "brightness": 1.5}, "brightness"),
        ({"shape": (8, 8), "density": -0.1}, "density"),
        ({"shape": (8, 8), "blur": 2.5}, "blur"),
        ({"shape": (8, 8), "length_jitter": 1.0}, "length_jitter"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rain.render_rain_streaks(**kwargs)


def test_add_rain_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        rain.add_rain(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rain.add_rain(np.full((1, 8, 8, 3), 2.0))
