"""The igan estimators that ship with tfinverse: they load, match their task, and beat the
naive baseline they are reported against, on held-out samples scored independently."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from scipy.ndimage import median_filter
from skimage.metrics import peak_signal_noise_ratio

from tfinverse.models.igan import load_igan_export, task_metadata
from tfinverse.pretrained import SHIPPED_IGAN_ESTIMATORS, shipped_igan_estimator_path
from tfinverse.tasks.igan_tasks import evaluation_batches, get_task

SAMPLES = 100


def naive_baseline(task_name, y):
    """The baseline REPRODUCTION.md compares with: a 3x3 median filter for CAPTCHAs, else the observation."""
    if task_name == "captcha":
        return median_filter(y, size=(1, 3, 3, 1), mode="reflect")
    return y


def dataset_psnr(estimate, truth):
    # skimage's PSNR of the whole set at once is the PSNR of the mean squared error.
    return peak_signal_noise_ratio(truth.astype(np.float64), estimate.astype(np.float64), data_range=1.0)


@pytest.mark.parametrize("task_name", sorted(SHIPPED_IGAN_ESTIMATORS))
def test_shipped_estimator_beats_its_naive_baseline(task_name):
    task = get_task(task_name)
    separate, metadata = load_igan_export(shipped_igan_estimator_path(task_name))
    expected = task_metadata(task)
    assert {key: metadata[key] for key in ("name", "image_size", "channels")} == {
        key: expected[key] for key in ("name", "image_size", "channels")}
    data = evaluation_batches(task, n=SAMPLES, seed=0)  # the held-out split
    y, x = data["y"], data["x"]
    components, cleans = zip(*(separate(y[k:k + 25]) for k in range(0, len(y), 25)))
    component, clean = np.concatenate(components), np.concatenate(cleans)
    assert clean.shape == x.shape and np.all(np.isfinite(clean))
    np.testing.assert_allclose(clean, np.maximum(y - component, 0.0), atol=1e-5)  # X = clip(Y - Z, 0, inf)
    assert dataset_psnr(clean, x) > dataset_psnr(naive_baseline(task_name, y), x)


def test_there_is_no_estimator_for_a_task_that_ships_none():
    from tfinverse.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="no igan estimator ships for task 'toy2d'"):
        shipped_igan_estimator_path("toy2d")
