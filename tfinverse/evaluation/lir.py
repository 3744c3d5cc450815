"""LIR's held-out test set and its scores, shared by ``train_lir.py`` and ``deploy_lir.py``.

The test set is the one ``deploy_lir.py`` scores: the held-out photographs (scikit-image's
chelsea and coffee, never in a training split, or a folder of clean images) made noisy with
the run's noise from the original's test seed and stored as 8-bit values, as the original's
noisy test files; or held-out low-dose / full-dose CT phantom pairs. ``train_lir.py
--eval-every N`` restores the same images during training, so its ``eval/psnr`` curve ends
at the number ``deploy_lir.py`` reports for the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfinverse.tasks import lir as settings

__all__ = ["held_out_pairs", "restoration_scores", "DEFAULT_CT_TEST_COUNT"]

#: Held-out CT phantom pairs scored by default.
DEFAULT_CT_TEST_COUNT = 8


def held_out_pairs(
    noise: str,
    sigma_255: float = settings.DEFAULT_SIGMA_255,
    seed: int = settings.TEST_SEED,
    images: Optional[str] = None,
    num_images: Optional[int] = None,
    ct_count: int = DEFAULT_CT_TEST_COUNT,
    ct_size: int = settings.CT_IMAGE_SIZE,
) -> Tuple[List[str], List[np.ndarray], List[np.ndarray]]:
    """The held-out test set of a noise kind.

    Args:
      noise: ``"gaussian"``, ``"poisson"`` or ``"ct"``.
      sigma_255: Gaussian standard deviation in 8-bit units.
      seed: the noise seed (image ``k`` uses ``[seed, k]``; the original's test seed 10).
      images: a folder of clean test images instead of the offline photographs (not for CT).
      num_images: keep only the first N pairs.
      ct_count: CT: how many held-out phantom pairs.
      ct_size: CT: slice side in pixels.

    Returns:
      ``(names, clean, noisy)``: lists of float32 ``[H, W, C]`` images in [0, 1] (grey
      folder images are repeated to 3 channels; CT slices have 1).

    Raises:
      tfinverse.errors.MissingPathError: ``images`` is not a folder.
    """
    if noise == "ct":
        from tfinverse.data.ct import ct_phantoms

        clean = ct_phantoms("test_clean", count=ct_count, image_size=ct_size)
        noisy = ct_phantoms("test_noisy", count=ct_count, image_size=ct_size)
        pairs = [(f"phantom{i}", c, n) for i, (c, n) in enumerate(zip(clean, noisy))]
    else:
        from tfinverse.operators.noise import get_noise

        if images:
            from tfinverse.data.folders import list_images, read_image
            from tfinverse.errors import MissingPathError

            root = Path(images).expanduser()
            if not root.is_dir():
                raise MissingPathError(f"--images {images} does not exist")
            files = list_images(str(root))
            names = [Path(f).stem for f in files]
            clean = [np.asarray(read_image(str(root / f)), np.float32) for f in files]
            clean = [np.repeat(c, 3, -1) if c.shape[-1] == 1 else c[..., :3] for c in clean]
        else:
            from tfinverse.data.unpaired import lir_test_photos, photo_names

            names, clean = list(photo_names("test")), lir_test_photos()
        model = get_noise(**settings.noise_spec(noise, sigma_255))
        pairs = []
        for index, (name, image) in enumerate(zip(names, clean)):
            noisy = np.asarray(model(image[None], seed=[seed, index]))[0]
            # stored as 8-bit files, as the original's noisy test images
            pairs.append((name, image, np.round(np.clip(noisy, 0, 1) * 255.0).astype(np.float32) / 255.0))
    if num_images is not None:
        pairs = pairs[:num_images]
    return ([p[0] for p in pairs], [np.asarray(p[1], np.float32) for p in pairs],
            [np.asarray(p[2], np.float32) for p in pairs])


def restoration_scores(estimate, reference, ct: bool) -> Dict[str, float]:
    """PSNR and SSIM of one image in the original's convention and on floats.

    Args:
      estimate: ``[H, W, C]`` restored image (clipped to [0, 1] here).
      reference: ``[H, W, C]`` clean image in [0, 1].
      ct: CT slices: PSNR data range 1 and SSIM data range 2 on the floats (the original's CT
        convention); otherwise both on 8-bit values (PSNR data range 255, 7x7 SSIM).

    Returns:
      ``psnr_original``, ``ssim_original``, ``psnr_float``, ``ssim_float`` (data range 1).
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    estimate = np.clip(np.asarray(estimate, np.float64), 0, 1)
    reference = np.asarray(reference, np.float64)
    axis = -1 if reference.shape[-1] == 3 else None
    if reference.shape[-1] == 1:
        estimate, reference = estimate[..., 0], reference[..., 0]
    if ct:
        original = {"psnr_original": peak_signal_noise_ratio(reference, estimate, data_range=settings.CT_PSNR_DATA_RANGE),
                    "ssim_original": structural_similarity(reference, estimate, data_range=settings.CT_SSIM_DATA_RANGE,
                                                           win_size=settings.PHOTO_SSIM_WINDOW, channel_axis=axis)}
    else:
        e8, r8 = (np.round(a * 255.0).astype(np.uint8) for a in (estimate, reference))
        original = {"psnr_original": peak_signal_noise_ratio(r8, e8, data_range=settings.PHOTO_PSNR_DATA_RANGE),
                    "ssim_original": structural_similarity(r8, e8, data_range=settings.PHOTO_PSNR_DATA_RANGE,
                                                           win_size=settings.PHOTO_SSIM_WINDOW, channel_axis=axis)}
    return {**{k: float(v) for k, v in original.items()},
            "psnr_float": float(peak_signal_noise_ratio(reference, estimate, data_range=1.0)),
            "ssim_float": float(structural_similarity(reference, estimate, data_range=1.0,
                                                      win_size=settings.PHOTO_SSIM_WINDOW, channel_axis=axis))}
