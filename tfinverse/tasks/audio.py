"""STFT front end of the audio CAPTCHA task: waveforms <-> [0, 1] magnitude images.

igan separated 2.5 s, 8 kHz audio CAPTCHA fragments in the time-frequency domain but never
published its STFT settings. The defaults here make a 2.5 s clip (20 000 samples) a
128x128 image: ``n_fft=254`` gives ``254 / 2 + 1 = 128`` frequency bins and, with centred
frames, ``hop_length=157`` gives ``1 + 20000 // 157 = 128`` frames. The window is a
periodic Hann window of ``n_fft`` samples; with this hop every sample is covered by a
non-zero window value, so the inverse STFT (least-squares overlap-add with window-sum
normalisation, librosa's ``istft``) inverts the forward one exactly.

**Scaling to [0, 1].** A magnitude ``|S|`` is divided by the window sum ``sum(w)``, which
bounds it by the signal's peak (``|S| <= sum(w) max|x|``), so ``m = |S| / sum(w)`` lies in
[0, 1] for waveforms in [-1, 1]. The image is then the log compression
``log1p(g m) / log1p(g)`` with gain ``g = log_gain`` (100 by default: about 40 dB of
dynamic range is spread over [0, 1]); ``log_gain=0`` keeps the linear ``m``. Both maps fix
0 and 1 and are inverted exactly by :func:`image_to_magnitude`.

**Additivity.** Magnitudes of a sum are not sums of magnitudes (``|S + N| <= |S| + |N|``,
with equality only where the two sources do not overlap in a time-frequency bin), and the
log compression is subadditive too. So the speech and noise images are approximations of
two sources adding up to the mixture image, good where speech and noise occupy different
bins. Waveforms are rebuilt from estimated magnitudes with the *mixture's* phase
(:func:`istft_with_phase`), the usual choice for magnitude-domain separation.

librosa (the audio extra) is imported inside the functions only.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "WINDOW",
    "LOG_GAIN",
    "check_sample_rate",
    "magnitude_to_image",
    "image_to_magnitude",
    "stft_magnitude",
    "istft_with_phase",
]

#: The only sample rate accepted (Hz): the CAPTCHA voices are 8 kHz recordings.
SAMPLE_RATE = 8000

#: FFT size (our choice; unpublished): 128 frequency bins.
N_FFT = 254

#: Hop between frames in samples (our choice; unpublished): 128 frames for 2.5 s at 8 kHz.
HOP_LENGTH = 157

#: Analysis and synthesis window (our choice; unpublished).
WINDOW = "hann"

#: Gain of the log compression of magnitudes (our choice; 0 means linear).
LOG_GAIN = 100.0


def check_sample_rate(sample_rate) -> None:
    """Raises unless ``sample_rate`` is 8000 Hz.

    Args:
      sample_rate: the rate to check.

    Raises:
      ValueError: any rate other than 8000 Hz.
    """
    if isinstance(sample_rate, bool) or sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"sample_rate must be {SAMPLE_RATE} Hz: the audio CAPTCHA voices and the STFT "
            f"settings of this task are defined at 8 kHz, got {sample_rate!r}; resample the "
            "audio to 8 kHz first"
        )


def _window_sum(n_fft: int, window: str) -> float:
    from scipy.signal import get_window

    # librosa uses scipy's periodic ("fftbins") windows of length n_fft.
    return float(np.sum(get_window(window, n_fft, fftbins=True)))


def _check_stft_settings(n_fft, hop_length, log_gain) -> None:
    if isinstance(n_fft, bool) or int(n_fft) != n_fft or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
    if isinstance(hop_length, bool) or int(hop_length) != hop_length or not 1 <= hop_length <= n_fft:
        raise ValueError(f"hop_length must be an integer in [1, n_fft={n_fft}], got {hop_length!r}")
    if not (np.isfinite(log_gain) and log_gain >= 0):
        raise ValueError(f"log_gain must be >= 0 (0 means linear magnitudes), got {log_gain!r}")


def magnitude_to_image(magnitude, n_fft: int = N_FFT, window: str = WINDOW, log_gain: float = LOG_GAIN) -> np.ndarray:
    """Raw STFT magnitudes -> [0, 1] images: ``log1p(g |S| / sum(w)) / log1p(g)``.

    Args:
      magnitude: non-negative STFT magnitudes of any shape.
      n_fft: FFT size (sets the window sum).
      window: window name (scipy/librosa).
      log_gain: gain ``g`` of the log compression; 0 gives ``|S| / sum(w)``.

    Returns:
      float32 array of the same shape; in [0, 1] for waveforms in [-1, 1].
    """
    scaled = np.asarray(magnitude, np.float64) / _window_sum(n_fft, window)
    if log_gain > 0:
        scaled = np.log1p(log_gain * scaled) / np.log1p(log_gain)
    return scaled.astype(np.float32)


def image_to_magnitude(image, n_fft: int = N_FFT, window: str = WINDOW, log_gain: float = LOG_GAIN) -> np.ndarray:
    """Inverse of :func:`magnitude_to_image`; negative image values count as 0.

    Args:
      image: magnitude images (any shape).
      n_fft: FFT size.
      window: window name.
      log_gain: gain of the log compression (as used forward).

    Returns:
      float64 raw STFT magnitudes of the same shape.
    """
    scaled = np.maximum(np.asarray(image, np.float64), 0.0)
    if log_gain > 0:
        scaled = np.expm1(scaled * np.log1p(log_gain)) / log_gain
    return scaled * _window_sum(n_fft, window)


def _as_waveforms(waveforms) -> Tuple[np.ndarray, bool]:
    array = np.asarray(waveforms)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"waveforms must be real numbers [batch, samples] or [samples], got dtype {array.dtype}")
    single = array.ndim == 1
    if single:
        array = array[None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"waveforms must have shape [batch, samples] or [samples], got {np.shape(waveforms)}")
    if not np.all(np.isfinite(array)):
        raise ValueError("waveforms contain NaN or Inf values")
    return array.astype(np.float32), single


def stft_magnitude(
    waveforms,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    window: str = WINDOW,
    log_gain: float = LOG_GAIN,
) -> Tuple[np.ndarray, np.ndarray]:
    """Magnitude images and phases of a batch of 8 kHz waveforms (librosa STFT, centred).

    Args:
      waveforms: float ``[batch, samples]`` (or ``[samples]``), nominally in [-1, 1].
      sample_rate: must be 8000.
      n_fft: FFT size; ``n_fft // 2 + 1`` frequency bins (254 -> 128).
      hop_length: hop between frames; ``1 + samples // hop_length`` frames (157 -> 128
        for 2.5 s).
      window: window name.
      log_gain: gain of the log compression (see the module docstring); 0 is linear.

    Returns:
      ``(magnitudes, phases)``: float32 ``[batch, n_fft // 2 + 1, frames, 1]`` images in
      [0, 1] (row 0 is the DC bin) and float32 phases in radians of the same shape.

    Raises:
      ValueError: a sample rate other than 8000, a bad waveform shape or bad settings.
    """
    import librosa

    check_sample_rate(sample_rate)
    _check_stft_settings(n_fft, hop_length, log_gain)
    signals, _ = _as_waveforms(waveforms)
    spectrum = librosa.stft(signals, n_fft=int(n_fft), hop_length=int(hop_length), window=window, center=True)
    images = magnitude_to_image(np.abs(spectrum), n_fft, window, log_gain)
    phases = np.angle(spectrum).astype(np.float32)
    return images[..., None], phases[..., None]


def istft_with_phase(
    magnitudes,
    phases,
    length: Optional[int] = None,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    window: str = WINDOW,
    log_gain: float = LOG_GAIN,
) -> np.ndarray:
    """Waveforms from magnitude images and phases (e.g. an estimate with the mixture's phase).

    Args:
      magnitudes: ``[batch, bins, frames, 1]`` (or ``[batch, bins, frames]``) images as made
        by :func:`stft_magnitude`; negative values count as 0.
      phases: radians, same shape.
      length: samples per output waveform; None gives ``hop_length * (frames - 1)``. Give
        the original length to get it back exactly.
      sample_rate: must be 8000.
      n_fft: FFT size (``bins`` must be ``n_fft // 2 + 1``).
      hop_length: hop between frames.
      window: window name.
      log_gain: gain of the log compression used forward.

    Returns:
      float32 ``[batch, length]``.

    Raises:
      ValueError: a sample rate other than 8000, mismatched or misshapen inputs, or bins
        that do not match ``n_fft``.
    """
    import librosa

    check_sample_rate(sample_rate)
    _check_stft_settings(n_fft, hop_length, log_gain)
    images = np.asarray(magnitudes)
    angles = np.asarray(phases)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if angles.ndim == 4 and angles.shape[-1] == 1:
        angles = angles[..., 0]
    if images.ndim != 3 or images.shape != angles.shape:
        raise ValueError(
            "magnitudes and phases must both have shape [batch, bins, frames, 1] (or [batch, bins, "
            f"frames]), got {np.shape(magnitudes)} and {np.shape(phases)}"
        )
    if images.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"magnitudes have {images.shape[1]} bins; n_fft={n_fft} needs {n_fft // 2 + 1}")
    if not (np.all(np.isfinite(images)) and np.all(np.isfinite(angles))):
        raise ValueError("magnitudes and phases must be finite")
    spectrum = image_to_magnitude(images, n_fft, window, log_gain) * np.exp(1j * angles.astype(np.float64))
    waveforms = librosa.istft(
        spectrum, hop_length=int(hop_length), n_fft=int(n_fft), window=window, center=True, length=length
    )
    return np.asarray(waveforms, np.float32)
