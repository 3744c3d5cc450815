"""CAPTCHA images and CAPTCHA audio made with the ``captcha`` package, as igan used them.

**Images.** A pair is one CAPTCHA drawn twice: the *clean* image holds only the four
characters (DroidSansMono at sizes 42/50/56 on a 160x60 canvas, the ``captcha`` package's
own character placement, rotation and warping); the *noisy* image is a copy of it with 30
dots of width 3 and one arc drawn in the text colour, then PIL's ``SMOOTH`` filter. Both
are preprocessed alike: one RGB band is kept, inverted (``1 - x / 255``, so ink is bright
and paper dark) and resized to 128x128. The clean image is smoothed with the same filter,
as the original's ``generate_image_pair`` did (so ``Z = Y - X`` holds the dots and the arc,
not the filter's softening of the characters); ``smooth_clean=False`` keeps it sharp.

Channel layout: the original kept one random RGB band; whether its networks then saw one
channel or a replicated three is not published. Here every image is ``[H, W, 1]``;
``load("captcha", channels=3)`` replicates the band into three identical channels.

The ``captcha`` package draws its randomness from :mod:`secrets`, which cannot be seeded.
To make pairs reproducible, its drawing functions are re-bound here to a seeded stand-in
for ``secrets`` (a thread-local proxy for a numpy ``Generator``), so the package's own
drawing code runs unchanged and nothing global is modified.

**Audio.** igan separated 2.5 s, 8 kHz audio CAPTCHA fragments of four spoken characters
from their background noise. :func:`make_audio_mixture` builds one such fragment the way
the package's ``AudioCaptcha`` builds its body: each voice is slowed by a factor in
[0.9, 1.2] and scaled by a gain in [0.8, 1.2] (the package's ``change_speed`` and
``change_sound`` on 8-bit samples), voices are separated by gaps; the background is low
white noise plus reversed voices (factor [0.8, 1.6], gain [0.2, 0.6], gaps up to 0.1 s).
Unlike the package, which mixes 8-bit samples with a non-linear formula, the two tracks
are added in float so that the mixture is exactly the sum of the returned components.

Example::

    from tfinverse.data import captcha
    noisy, clean = captcha.make_captcha_pairs(16, seed=0)          # [16, 128, 128, 1] each
    fragment = captcha.make_audio_mixture(seed=0)                  # 2.5 s at 8 kHz
    fragment.mixture, fragment.speech, fragment.noise
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import string
import threading
import types
import wave
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from tfinverse.data.registry import register_source

__all__ = [
    "CAPTCHA_CHARACTERS",
    "CAPTCHA_SAMPLE_RATE",
    "CaptchaRendering",
    "AudioMixture",
    "render_captcha",
    "preprocess_captcha",
    "captcha_pair",
    "make_captcha_pairs",
    "captcha_source",
    "load_voice_clips",
    "make_audio_mixture",
    "make_audio_mixtures",
]

#: The characters of igan's image CAPTCHAs: digits and uppercase letters.
CAPTCHA_CHARACTERS = string.digits + string.ascii_uppercase

#: Sample rate of the ``captcha`` package's voices and of igan's audio CAPTCHAs (Hz).
CAPTCHA_SAMPLE_RATE = 8000

SeedLike = Union[int, Sequence[int], np.random.SeedSequence]

_SPLIT_STREAMS = {"train": 0, "test": 1}
_DEFAULT_NUM_SAMPLES = {"train": 5000, "test": 1000}
_CV2_INTERPOLATION = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}


# --------------------------------------------------------------------------- seeding


class _SeededSecrets:
    """Stands in for the :mod:`secrets` module inside the ``captcha`` package's drawing code.

    Each thread sets its own numpy ``Generator`` with :meth:`use`; the three functions the
    package calls draw from it with the same ranges as :mod:`secrets`.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def use(self, rng: np.random.Generator):
        previous = getattr(self._local, "rng", None)
        self._local.rng = rng
        try:
            yield
        finally:
            self._local.rng = previous

    @property
    def _rng(self) -> np.random.Generator:
        rng = getattr(self._local, "rng", None)
        if rng is None:
            raise RuntimeError("seeded captcha drawing used outside its generator scope")
        return rng

    def randbelow(self, n: int) -> int:
        return int(self._rng.integers(n))

    def randbits(self, k: int) -> int:
        return int(self._rng.integers(0, 1 << k, dtype=np.uint64))

    def choice(self, seq):
        return seq[int(self._rng.integers(len(seq)))]


_SECRETS = _SeededSecrets()


def _rebind(fn, namespace: dict):
    # Same code object, but its global `secrets` now resolves to the seeded stand-in.
    if "secrets" not in fn.__code__.co_names:
        raise RuntimeError(
            f"captcha.image.{fn.__name__} no longer draws from `secrets`; this version of the "
            "captcha package is not supported (tested with 0.7.1)"
        )
    bound = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    bound.__kwdefaults__ = fn.__kwdefaults__
    return bound


@functools.lru_cache(maxsize=1)
def _seeded_drawing():
    """The package's ImageCaptcha subclass and ``random_color`` re-bound to the seeded stand-in."""
    import captcha.image as captcha_image

    namespace = dict(vars(captcha_image))
    namespace["secrets"] = _SECRETS
    base = captcha_image.ImageCaptcha
    methods = {
        "_draw_character": _rebind(base._draw_character, namespace),
        "create_captcha_image": _rebind(base.create_captcha_image, namespace),
        "create_noise_dots": staticmethod(_rebind(base.create_noise_dots, namespace)),
        "create_noise_curve": staticmethod(_rebind(base.create_noise_curve, namespace)),
    }
    seeded_class = type("SeededImageCaptcha", (base,), methods)
    return seeded_class, _rebind(captcha_image.random_color, namespace)


@functools.lru_cache(maxsize=8)
def _captcha_drawer(width: int, height: int, font_sizes: Tuple[int, ...]):
    seeded_class, _ = _seeded_drawing()
    drawer = seeded_class(width=width, height=height, font_sizes=font_sizes)
    _ = drawer.truefonts  # load the fonts once, not per image
    return drawer


def _size_hw(size) -> Tuple[int, int]:
    if np.isscalar(size):
        side = _check_count(size, "size")
        return side, side
    if len(size) != 2:
        raise ValueError(f"size must be an int or (height, width), got {size!r}")
    return _check_count(size[0], "size"), _check_count(size[1], "size")


def _as_generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _child_generators(seed: SeedLike, n: int):
    # One independent stream per sample: the first k samples do not depend on n.
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(child) for child in root.spawn(n)]


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


# --------------------------------------------------------------------------- images


class CaptchaRendering(NamedTuple):
    """One CAPTCHA drawn clean and noisy, before preprocessing.

    Attributes:
      clean: uint8 ``[height, width, 3]``, characters only.
      noisy: uint8 ``[height, width, 3]``, the clean image plus dots and arc, smoothed.
      noise_mask: bool ``[height, width]``, pixels the dots and arc were drawn on
        (before smoothing, which spreads them by one pixel).
      text: the characters drawn.
      text_color: RGBA of the characters and of the noise.
      background_color: RGB of the paper.
    """

    clean: np.ndarray
    noisy: np.ndarray
    noise_mask: np.ndarray
    text: str
    text_color: Tuple[int, ...]
    background_color: Tuple[int, ...]


def render_captcha(
    rng: np.random.Generator,
    text: Optional[str] = None,
    *,
    n_characters: int = 4,
    alphabet: str = CAPTCHA_CHARACTERS,
    width: int = 160,
    height: int = 60,
    font_sizes: Sequence[int] = (42, 50, 56),
    n_dots: int = 30,
    dot_width: int = 3,
    n_arcs: int = 1,
    smooth_clean: bool = True,
) -> CaptchaRendering:
    """Draws one CAPTCHA clean and noisy with the ``captcha`` package, seeded by ``rng``.

    The noisy image is a copy of the clean one with the noise drawn on top, so both hold
    the same characters at the same positions. Colours follow the package's defaults:
    paper RGB in [238, 255], ink RGB in [10, 200] with alpha in [220, 255].

    Args:
      rng: numpy ``Generator``; all randomness (text, colours, glyph placement, noise)
        is drawn from it.
      text: the characters to draw; None draws ``n_characters`` from ``alphabet``.
      n_characters: number of random characters (igan: 4).
      alphabet: characters to draw from (igan: digits and uppercase letters).
      width: canvas width in pixels (igan: 160).
      height: canvas height in pixels (igan: 60).
      font_sizes: DroidSansMono sizes, one picked per character (igan: 42, 50, 56).
      n_dots: number of noise dots (igan: 30).
      dot_width: line width of a dot (igan: 3).
      n_arcs: number of noise arcs (igan: 1).
      smooth_clean: also apply the smoothing filter to the clean image (igan: yes).

    Returns:
      A :class:`CaptchaRendering`.

    Raises:
      ValueError: empty text, or counts/sizes that are not positive.
    """
    from PIL import Image, ImageFilter

    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    for name, value in (("width", width), ("height", height), ("dot_width", dot_width)):
        _check_count(value, name)
    for name, value in (("n_dots", n_dots), ("n_arcs", n_arcs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    font_sizes = tuple(int(s) for s in font_sizes)
    if not font_sizes or min(font_sizes) < 1:
        raise ValueError(f"font_sizes must be positive integers, got {font_sizes}")
    if text is None:
        _check_count(n_characters, "n_characters")
        if not alphabet:
            raise ValueError("alphabet must not be empty")
        text = "".join(alphabet[i] for i in rng.integers(len(alphabet), size=n_characters))
    if not text:
        raise ValueError("text must not be empty")

    drawer = _captcha_drawer(int(width), int(height), font_sizes)
    _, random_color = _seeded_drawing()
    with _SECRETS.use(rng):
        background = random_color(238, 255)
        ink = random_color(10, 200, int(rng.integers(36)) + 220)
        clean = drawer.create_captcha_image(text, ink, background)
        noisy = clean.copy()
        # Replaying the same draws on a blank canvas marks where the noise went.
        noise_rng = copy.deepcopy(rng)
        drawer.create_noise_dots(noisy, ink, width=dot_width, number=n_dots)
        for _ in range(n_arcs):
            drawer.create_noise_curve(noisy, ink)
    mask = Image.new("L", clean.size, 0)
    with _SECRETS.use(noise_rng):
        drawer.create_noise_dots(mask, 255, width=dot_width, number=n_dots)
        for _ in range(n_arcs):
            drawer.create_noise_curve(mask, 255)
    noisy = noisy.filter(ImageFilter.SMOOTH)
    if smooth_clean:
        clean = clean.filter(ImageFilter.SMOOTH)
    return CaptchaRendering(
        clean=np.asarray(clean, dtype=np.uint8).copy(),
        noisy=np.asarray(noisy, dtype=np.uint8).copy(),
        noise_mask=np.asarray(mask) > 0,
        text=text,
        text_color=tuple(ink),
        background_color=tuple(background),
    )


def preprocess_captcha(
    image: np.ndarray,
    band: int,
    size: Optional[int] = 128,
    interpolation: str = "bilinear",
) -> np.ndarray:
    """igan's CAPTCHA preprocessing: keep one RGB band, invert, resize.

    Args:
      image: uint8 ``[H, W, 3]`` RGB image.
      band: 0, 1 or 2, the band kept.
      size: output side or ``(height, width)`` (igan: 128; the 160x60 canvas is stretched
        to a square); None keeps the canvas size.
      interpolation: cv2 interpolation for the resize. The original's choice is not
        published; bilinear is cv2's default.

    Returns:
      float32 ``[size, size, 1]`` in [0, 1], ``1 - band / 255`` (ink bright, paper dark).

    Raises:
      ValueError: ``image`` not uint8 ``[H, W, 3]``, ``band`` not 0-2, unknown interpolation
        or a bad ``size``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    if band not in (0, 1, 2):
        raise ValueError(f"band must be 0, 1 or 2, got {band!r}")
    if interpolation not in _CV2_INTERPOLATION:
        raise ValueError(f"interpolation must be one of {sorted(_CV2_INTERPOLATION)}, got {interpolation!r}")
    inverted = 1.0 - image[..., band].astype(np.float32) / 255.0
    if size is not None:
        import cv2

        height, width = _size_hw(size)
        inverted = cv2.resize(inverted, (width, height), interpolation=_CV2_INTERPOLATION[interpolation])
        inverted = np.clip(inverted, 0.0, 1.0)
    return inverted[..., None].astype(np.float32)


def captcha_pair(
    rng: np.random.Generator,
    size: Optional[int] = 128,
    band: Optional[int] = None,
    interpolation: str = "bilinear",
    **render_options,
) -> Tuple[np.ndarray, np.ndarray]:
    """One (noisy, clean) CAPTCHA pair, drawn and preprocessed as igan did.

    Args:
      rng: numpy ``Generator`` all randomness is drawn from.
      size: output side or ``(height, width)`` (igan: 128); None keeps the 160x60 canvas.
      band: the RGB band kept for both images; None draws one from ``rng`` (igan).
      interpolation: cv2 resize interpolation (not published; bilinear by default).
      **render_options: passed to :func:`render_captcha` (``text``, ``n_dots``, ...).

    Returns:
      ``(noisy, clean)``, float32 ``[size, size, 1]`` each, in [0, 1].
    """
    rendering = render_captcha(rng, **render_options)
    if band is None:
        band = int(rng.integers(3))
    return (
        preprocess_captcha(rendering.noisy, band, size, interpolation),
        preprocess_captcha(rendering.clean, band, size, interpolation),
    )


def make_captcha_pairs(
    n: int,
    seed: SeedLike = 0,
    size: Optional[int] = 128,
    **options,
) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` (noisy, clean) CAPTCHA pairs, deterministic for a seed.

    Sample ``i`` is drawn from the ``i``-th child of ``np.random.SeedSequence(seed)``, so the
    first ``k`` pairs are the same whatever ``n`` is.

    Args:
      n: number of pairs.
      seed: an int, a sequence of ints or a ``SeedSequence``.
      size: output side or ``(height, width)`` (igan: 128); None keeps the 160x60 canvas.
      **options: passed to :func:`captcha_pair`.

    Returns:
      ``(noisy, clean)``, float32 ``[n, size, size, 1]`` each, in [0, 1].

    Raises:
      ValueError: ``n`` not a positive integer.
    """
    n = _check_count(n)
    pairs = [captcha_pair(rng, size=size, **options) for rng in _child_generators(seed, n)]
    noisy = np.stack([p[0] for p in pairs])
    clean = np.stack([p[1] for p in pairs])
    return noisy, clean


@register_source(
    "captcha",
    kind="pairs",
    offline=True,
    splits=("train", "test"),
    description="igan CAPTCHA pairs (noisy with dots and arc, clean), 128x128, one band",
    interpolation="bilinear",
)
def captcha_source(
    split: str,
    num_samples: Optional[int] = None,
    data_seed: int = 0,
    image_size=128,
) -> Tuple[np.ndarray, np.ndarray]:
    """The registered ``captcha`` source: (noisy, clean) pairs drawn with the package.

    The train and test splits come from different seed streams
    (``SeedSequence([data_seed, 0])`` and ``SeedSequence([data_seed, 1])``). igan drew its
    training CAPTCHAs on the fly; the split sizes here are our choice.

    Args:
      split: ``"train"`` or ``"test"``.
      num_samples: number of pairs; None gives 5000 for train and 1000 for test (igan
        deployed on 1000 test samples).
      data_seed: seed of the draws (``load``'s own ``seed`` only shuffles).
      image_size: int or ``(height, width)``; ``load`` passes its own ``image_size`` here so
        the 160x60 canvas is resized once, straight to the requested size (igan: 128, also
        the size when ``load`` is given none).

    Returns:
      ``(noisy, clean)``, float32 ``[num_samples, height, width, 1]`` each, in [0, 1].

    Raises:
      ValueError: unknown split or a non-positive ``num_samples``.
    """
    if split not in _SPLIT_STREAMS:
        raise ValueError(f"captcha has splits {tuple(_SPLIT_STREAMS)}, not {split!r}")
    n = _DEFAULT_NUM_SAMPLES[split] if num_samples is None else _check_count(num_samples, "num_samples")
    seed = np.random.SeedSequence([int(data_seed), _SPLIT_STREAMS[split]])
    return make_captcha_pairs(n, seed, size=128 if image_size is None else image_size)


# --------------------------------------------------------------------------- audio


def _check_sample_rate(sample_rate) -> None:
    if sample_rate != CAPTCHA_SAMPLE_RATE:
        raise ValueError(
            f"sample_rate must be {CAPTCHA_SAMPLE_RATE}: the CAPTCHA voices and their 8-bit speed "
            f"and gain changes are defined at 8 kHz, got {sample_rate!r}"
        )


def _read_wav(path: str) -> Tuple[np.ndarray, int]:
    """A PCM wav file as a float32 mono waveform in [-1, 1] and its sample rate."""
    with wave.open(path, "rb") as handle:
        rate = handle.getframerate()
        width = handle.getsampwidth()
        channels = handle.getnchannels()
        frames = handle.readframes(handle.getnframes())
    if width == 1:  # 8-bit wav is unsigned, silence at 128
        samples = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(frames, f"<i{width}").astype(np.float32) / float(np.iinfo(dtype).max + 1)
    elif width == 3:
        raw = np.frombuffer(frames, np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        samples = value.astype(np.float32) / float(1 << 23)
    else:
        raise ValueError(f"{path}: unsupported wav sample width of {width} bytes")
    samples = samples.reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), rate


@functools.lru_cache(maxsize=4)
def _voice_clips_cached(voice_dir: str) -> Dict[str, np.ndarray]:
    from math import gcd

    if not os.path.isdir(voice_dir):
        raise ValueError(f"voice_dir {voice_dir!r} is not a directory of <character>/<clip>.wav")
    clips = {}
    for name in sorted(os.listdir(voice_dir)):
        folder = os.path.join(voice_dir, name)
        if len(name) != 1 or not os.path.isdir(folder):
            continue
        files = sorted(f for f in os.listdir(folder) if f.endswith(".wav"))
        if not files:
            continue
        samples, rate = _read_wav(os.path.join(folder, files[0]))
        if rate != CAPTCHA_SAMPLE_RATE:
            from scipy.signal import resample_poly

            common = gcd(CAPTCHA_SAMPLE_RATE, rate)
            samples = resample_poly(samples, CAPTCHA_SAMPLE_RATE // common, rate // common)
        samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
        samples.setflags(write=False)
        clips[name] = samples
    if not clips:
        raise ValueError(f"voice_dir {voice_dir!r} holds no <character>/<clip>.wav files")
    return clips


def _default_voice_dir() -> str:
    import captcha

    return os.path.join(os.path.dirname(captcha.__file__), "data")


def load_voice_clips(voice_dir: Optional[str] = None, sample_rate: int = CAPTCHA_SAMPLE_RATE) -> Dict[str, np.ndarray]:
    """The spoken characters of the ``captcha`` package (or of a voice folder) at 8 kHz.

    A voice folder holds one sub-folder per character with ``.wav`` files; the first file
    (by name) of each is used. Files at another rate are resampled to 8 kHz with
    ``scipy.signal.resample_poly``; stereo files are averaged to mono.

    Args:
      voice_dir: folder of ``<character>/<clip>.wav``; None uses the package's bundled voices
        (digits and uppercase letters, 8-bit 8 kHz recordings).
      sample_rate: must be 8000.

    Returns:
      A dict character -> float32 mono waveform in [-1, 1] at 8 kHz (fresh copies).

    Raises:
      ValueError: another sample rate, or a folder without voice clips.
    """
    _check_sample_rate(sample_rate)
    clips = _voice_clips_cached(os.path.abspath(voice_dir or _default_voice_dir()))
    return {c: w.copy() for c, w in clips.items()}


def _to_unsigned8(waveform: np.ndarray) -> bytearray:
    return bytearray(np.clip(np.round(waveform * 128.0 + 128.0), 0, 255).astype(np.uint8).tobytes())


def _from_unsigned8(body: bytearray) -> np.ndarray:
    return (np.frombuffer(bytes(body), np.uint8).astype(np.float32) - 128.0) / 128.0


def _twist(voice: bytearray, speed: float, gain: float) -> np.ndarray:
    """The package's speed then volume change on 8-bit samples, returned as float."""
    from captcha.audio import change_sound, change_speed

    return _from_unsigned8(change_sound(change_speed(voice, speed), gain))


def _add_at(track: np.ndarray, piece: np.ndarray, start: int) -> None:
    end = min(start + len(piece), len(track))
    if end > start:
        track[start:end] += piece[: end - start]


class AudioMixture(NamedTuple):
    """One audio CAPTCHA fragment and its two sources.

    Attributes:
      mixture: float32 ``[T]``, exactly ``speech + noise``, peak at most ``peak``.
      speech: float32 ``[T]``, the spoken characters.
      noise: float32 ``[T]``, white noise plus reversed voices.
      characters: the characters spoken, in order.
      onsets: the sample at which each spoken character starts.
      sample_rate: 8000.
    """

    mixture: np.ndarray
    speech: np.ndarray
    noise: np.ndarray
    characters: str
    onsets: Tuple[int, ...]
    sample_rate: int


def _check_range(name: str, value, lower: float = 0.0) -> Tuple[float, float]:
    low, high = (float(v) for v in value)
    if not (lower <= low <= high):
        raise ValueError(f"{name} must be (low, high) with {lower} <= low <= high, got {value!r}")
    return low, high


def make_audio_mixture(
    seed=0,
    n_pieces: int = 4,
    duration: Optional[float] = 2.5,
    *,
    sample_rate: int = CAPTCHA_SAMPLE_RATE,
    characters: str = string.digits,
    speed_range: Tuple[float, float] = (0.9, 1.2),
    gain_range: Tuple[float, float] = (0.8, 1.2),
    gap_range: Tuple[float, float] = (0.125, 0.25),
    noise_speed_range: Tuple[float, float] = (0.8, 1.6),
    noise_gain_range: Tuple[float, float] = (0.2, 0.6),
    noise_gap_max: float = 0.1,
    white_noise_level: int = 4,
    peak: float = 1.0,
    voice_dir: Optional[str] = None,
) -> AudioMixture:
    """One audio CAPTCHA fragment (speech over background noise) and its two sources.

    Speech: a gap, then ``n_pieces`` random voices each followed by a gap; each voice is
    stretched by a factor from ``speed_range`` (>1 is slower) and scaled by a gain from
    ``gain_range`` with the package's 8-bit ``change_speed``/``change_sound``. Noise: white
    noise of ``white_noise_level`` 8-bit steps plus back-to-back reversed voices
    (``noise_speed_range``, ``noise_gain_range``, gaps up to ``noise_gap_max`` seconds),
    as the package's ``AudioCaptcha`` makes its background. If the sum peaks above
    ``peak``, both tracks are scaled by the same factor.

    igan's audio code is not published: the voice alphabet (digits by default: early
    ``captcha`` releases shipped only digit voices, and four spoken digits fill about
    2.5 s), the gap range between voices, the fixed length with truncation, the additive
    float mixing and the peak scaling are our choices.

    Args:
      seed: int, sequence of ints, ``SeedSequence`` or numpy ``Generator``.
      n_pieces: number of spoken characters (igan: 4).
      duration: length in seconds (igan: about 2.5); the tracks are zero-padded or cut to
        it. None keeps the natural length (last gap included).
      sample_rate: must be 8000.
      characters: characters the spoken voices are drawn from (also the noise voices).
      speed_range: stretch factors of the voices (package: 0.9-1.2).
      gain_range: gains of the voices (package: 0.8-1.2).
      gap_range: silence before each voice and after the last, in seconds.
      noise_speed_range: stretch factors of the reversed noise voices (package: 0.8-1.6).
      noise_gain_range: gains of the reversed noise voices (package: 0.2-0.6).
      noise_gap_max: largest gap between noise voices, seconds (package: 0.1).
      white_noise_level: white-noise width in 8-bit steps (package: 4); 0 disables it.
      peak: largest absolute value of the mixture.
      voice_dir: folder of ``<character>/<clip>.wav``; None uses the package's voices.

    Returns:
      An :class:`AudioMixture`.

    Raises:
      ValueError: a sample rate other than 8000, characters without a voice, or invalid
        counts, durations or ranges.
    """
    _check_sample_rate(sample_rate)
    n_pieces = _check_count(n_pieces, "n_pieces")
    if duration is not None and not (np.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds or None, got {duration!r}")
    speed_low, speed_high = _check_range("speed_range", speed_range)
    gain_low, gain_high = _check_range("gain_range", gain_range)
    gap_low, gap_high = _check_range("gap_range", gap_range)
    noise_speed_low, noise_speed_high = _check_range("noise_speed_range", noise_speed_range)
    noise_gain_low, noise_gain_high = _check_range("noise_gain_range", noise_gain_range)
    if speed_low <= 0 or noise_speed_low <= 0:
        raise ValueError("speed factors must be positive")
    if noise_gap_max < 0 or white_noise_level < 0 or not peak > 0:
        raise ValueError("noise_gap_max and white_noise_level must be >= 0 and peak > 0")
    clips = load_voice_clips(voice_dir, sample_rate)
    missing = sorted(set(characters) - set(clips))
    if not characters or missing:
        raise ValueError(f"characters must be non-empty and have voices; no voice for {missing}, have {''.join(clips)}")
    voices = {c: _to_unsigned8(clips[c]) for c in set(characters)}
    alphabet = sorted(set(characters))
    rng = _as_generator(seed)
    rate = CAPTCHA_SAMPLE_RATE

    def gap() -> int:
        return int(round(rng.uniform(gap_low, gap_high) * rate))

    spoken = "".join(alphabet[i] for i in rng.integers(len(alphabet), size=n_pieces))
    pieces = [_twist(voices[c], rng.uniform(speed_low, speed_high), rng.uniform(gain_low, gain_high)) for c in spoken]
    onsets = []
    position = gap()
    for piece in pieces:
        onsets.append(position)
        position += len(piece) + gap()
    length = position if duration is None else int(round(duration * rate))

    speech = np.zeros(length, np.float32)
    for piece, onset in zip(pieces, onsets):
        _add_at(speech, piece, onset)

    if white_noise_level > 0:
        steps = rng.integers(0, white_noise_level, size=length) - white_noise_level // 2
        noise = steps.astype(np.float32) / 128.0
    else:
        noise = np.zeros(length, np.float32)
    position = 0
    while position < length:
        reversed_voice = voices[alphabet[int(rng.integers(len(alphabet)))]][::-1]
        piece = _twist(
            bytearray(reversed_voice),
            rng.uniform(noise_speed_low, noise_speed_high),
            rng.uniform(noise_gain_low, noise_gain_high),
        )
        _add_at(noise, piece, position)
        position += len(piece) + 1 + int(rng.integers(int(noise_gap_max * rate) + 1))

    largest = float(np.max(np.abs(speech + noise))) if length else 0.0
    if largest > peak:
        scale = np.float32(peak / largest)
        speech = speech * scale
        noise = noise * scale
    mixture = speech + noise
    return AudioMixture(mixture, speech, noise, spoken, tuple(onsets), rate)


def make_audio_mixtures(
    n: int,
    seed: SeedLike = 0,
    duration: float = 2.5,
    **options,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` audio CAPTCHA fragments of equal length, deterministic for a seed.

    Fragment ``i`` uses the ``i``-th child of ``np.random.SeedSequence(seed)``.

    Args:
      n: number of fragments.
      seed: an int, a sequence of ints or a ``SeedSequence``.
      duration: length in seconds (required: the fragments are stacked).
      **options: passed to :func:`make_audio_mixture`.

    Returns:
      ``(mixtures, speech, noise)``, float32 ``[n, round(duration * 8000)]`` each.

    Raises:
      ValueError: ``n`` not positive or ``duration`` None.
    """
    n = _check_count(n)
    if duration is None:
        raise ValueError("duration must be given to stack fragments of equal length")
    fragments = [make_audio_mixture(rng, duration=duration, **options) for rng in _child_generators(seed, n)]
    return tuple(np.stack([getattr(f, field) for f in fragments]) for field in ("mixture", "speech", "noise"))
