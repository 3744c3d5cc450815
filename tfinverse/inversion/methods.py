"""Inversion methods behind one call signature, and a registry of them by name.

The functions of :mod:`tfinverse.inversion` each take their own arguments (CSGM and IAGAN a
generator, IAGAN CSGM's latents, BM3D the noise level, back-projection another method's
result). This module wraps them in objects with one signature, so that a script loops over
methods instead of branching per method name::

    from tfinverse import inversion

    methods = [inversion.get("csgm", iterations=500), inversion.get("iagan", iterations=300),
               inversion.get("iagan-bp"), inversion.get("bicubic")]
    results = inversion.run_methods(methods, operator, y, generator=g, seed=0, noise_sigma=0.0)

Each method object holds its settings (the keyword arguments of the function it wraps, its
"preset"), says whether it applies to a problem (:meth:`InversionMethod.applies_to`, with a
reason when not), whether it needs a generator, and which method's result it starts from
(:attr:`InversionMethod.requires`). Calling it runs the wrapped function unchanged: the
numbers are those of the function called with the same settings and seed.

Registered methods, in run order (:func:`available_methods`): ``observation`` (the naive
estimate), ``bicubic``, ``ifft``, ``bm3d``, ``csgm``, ``iagan`` (from CSGM's latents),
``csgm-bp``, ``iagan-bp`` (back-projected CSGM / IAGAN) and ``dip``.

Methods that need a model of their own system besides a generator are registered too but
listed only by ``available_methods(model_specific=True)``: ``acsg`` (Ambient VAE-GAN's
baseline) needs the discriminator trained with the generator, passed as ``discriminator=``
(:attr:`InversionMethod.needs_discriminator`).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tfinverse.errors import unknown_name
from tfinverse.inversion import baselines
from tfinverse.inversion.acsg import acsg
from tfinverse.inversion.back_projection import back_project_result, has_approximate_pinv
from tfinverse.inversion.base import InversionResult
from tfinverse.inversion.csgm import CSGM_PRESETS, csgm
from tfinverse.inversion.dip import DIP_NOISY_ITERATION_FACTOR, dip, dip_iterations
from tfinverse.inversion.iagan import IAGAN_PRESETS, iagan, iagan_preset

__all__ = [
    "Applicability",
    "InversionMethod",
    "ObservationMethod",
    "BicubicMethod",
    "ZeroFilledIFFTMethod",
    "BM3DMethod",
    "CSGMMethod",
    "IAGANMethod",
    "BackProjectedMethod",
    "CSGMBackProjectedMethod",
    "IAGANBackProjectedMethod",
    "DIPMethod",
    "ACSGMethod",
    "register",
    "available_methods",
    "method_class",
    "get",
    "presets",
    "with_dependencies",
    "run_methods",
    "dip_levels_for",
]

# Arguments of the wrapped functions that are per call (the signature of InversionMethod),
# or set by the method itself, hence never settings.
_CALL_ARGUMENTS = ("generator", "operator", "y", "seed", "progress", "z_init", "sigma")


def _function_defaults(function: Callable, exclude: Iterable[str] = ()) -> Dict[str, Any]:
    """The keyword parameters of ``function`` with their defaults, minus the per-call ones."""
    skip = set(_CALL_ARGUMENTS) | set(exclude)
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in skip
    }


def dip_levels_for(side: int, most: int = 5) -> int:
    """The deepest DIP network, up to ``most`` levels, whose coarsest map is >= 2 pixels.

    Args:
      side: the smaller image side.
      most: the largest depth (5 in DIP).

    Returns:
      The number of encoder-decoder levels, at least 1.
    """
    levels, size = 0, side
    while levels < most and -(-size // 2) >= 2:
        size = -(-size // 2)
        levels += 1
    return max(levels, 1)


def _iterations_under_noise(iterations, noisy: bool, factor) -> Any:
    """``iterations`` when noiseless (the wrapped function checks it), else ``max(1, iterations // factor)``.

    The paper runs iterative methods shorter on noisy measurements so as not to fit the
    noise (IAGAN half, DIP a quarter); this is :func:`~tfinverse.inversion.dip.dip_iterations`'s rule.
    """
    if not noisy:
        return iterations
    for name, value in (("iterations", iterations), ("noisy_iteration_factor", factor)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return dip_iterations(int(iterations), True, int(factor))


@dataclasses.dataclass(frozen=True)
class Applicability:
    """Whether a method applies to a problem; false with the reason when it does not.

    Attributes:
      applies: True if the method can run on the problem.
      reason: why it cannot (empty when it can).
    """

    applies: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.applies


_APPLIES = Applicability(True)


def _does_not_apply(reason: str) -> Applicability:
    return Applicability(False, reason)


class InversionMethod:
    """An inversion method with one call signature; subclasses wrap one function.

    Construct it with its settings (the keyword arguments of the wrapped function, see
    :attr:`defaults`), then call it on problems::

        method = get("csgm", iterations=500, restarts=2)
        result = method(operator, y, generator=g, seed=0)

    Class attributes:
      name: the registry name (also the table's method name).
      needs_generator: the method takes a generative prior (``generator=``).
      requires: the name of the method whose result it starts from (passed as
        ``previous=``), or None.
      reports_history: the result's ``history`` is the method's own (False where it is the
        history of the method it starts from, e.g. back-projection).
      needs_discriminator: the method takes the feature map of a discriminator trained with
        the generator (``discriminator=``).
      model_specific: the method needs a model of its own system besides a generator (so
        :func:`available_methods` lists it only when asked to).
      defaults: the settings and their default values.

    Args:
      **settings: values for keys of :attr:`defaults`; the others keep their defaults.

    Raises:
      UnknownNameError: a key that is not a setting of this method (the message lists the
        valid ones).
    """

    name: ClassVar[str] = ""
    needs_generator: ClassVar[bool] = False
    requires: ClassVar[Optional[str]] = None
    reports_history: ClassVar[bool] = True
    needs_discriminator: ClassVar[bool] = False
    model_specific: ClassVar[bool] = False
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **settings):
        for key in settings:
            if key not in self.defaults:
                raise unknown_name("setting", key, self.defaults, where=f"inversion method {self.name}")
        self._settings = {**self.defaults, **settings}

    @property
    def settings(self) -> Dict[str, Any]:
        """A copy of the method's settings (defaults filled in)."""
        return dict(self._settings)

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"{type(self).__name__}({given})"

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        """Whether the method can run on measurements of ``operator`` with this noise level.

        Args:
          operator: the forward operator.
          noise_sigma: standard deviation of the measurement noise (0: noiseless).

        Returns:
          An :class:`Applicability`: truthy if it applies, else falsy with ``reason``.
        """
        return _APPLIES

    def __call__(
        self,
        operator,
        y,
        *,
        generator=None,
        seed: int = 0,
        progress: bool = True,
        noise_sigma: float = 0.0,
        previous: Optional[InversionResult] = None,
        discriminator=None,
    ) -> InversionResult:
        """Runs the method on one measurement batch.

        Args:
          operator: the forward operator.
          y: ``[N, *operator.out_shape]`` measurements.
          generator: the prior (:class:`tfinverse.models.Generator`); required when
            :attr:`needs_generator`, ignored otherwise.
          seed: seed of the method's random draws (restarts, network weights, ...).
          progress: show progress bars (on a terminal).
          noise_sigma: standard deviation of the noise in ``y`` (0 when noiseless); some
            methods need it (BM3D) or adapt to it (IAGAN and DIP run fewer iterations).
          previous: the result of the method named by :attr:`requires`, on the same ``y``.
          discriminator: for methods that :attr:`needs_discriminator`: the feature map of
            ``[0, 1]`` images (a callable, or an object with a ``features`` method such as
            :class:`~tfinverse.models.ambient.AmbientNetworks`); ignored by the others.

        Returns:
          The :class:`~tfinverse.inversion.base.InversionResult` of the wrapped function,
          with ``extras["method"]`` set to :attr:`name`.

        Raises:
          ValueError: the method does not apply (the message gives the reason), a missing
            generator or ``previous`` (or one from another method), a negative
            ``noise_sigma``, or whatever the wrapped function refuses.
        """
        noise_sigma = float(noise_sigma)
        if not np.isfinite(noise_sigma) or noise_sigma < 0:
            raise ValueError(f"noise_sigma must be a finite number >= 0, got {noise_sigma}")
        applicability = self.applies_to(operator, noise_sigma)
        if not applicability:
            raise ValueError(f"inversion method {self.name!r} does not apply: {applicability.reason}")
        if self.needs_generator and generator is None:
            raise ValueError(f"inversion method {self.name!r} needs a generative prior: pass generator=")
        if self.needs_discriminator and discriminator is None:
            raise ValueError(
                f"inversion method {self.name!r} needs the discriminator trained with the generator: pass discriminator="
            )
        if self.requires is not None:
            if previous is None:
                raise ValueError(
                    f"inversion method {self.name!r} starts from the result of {self.requires!r}: "
                    f"pass previous=<the {self.requires} result on the same y>"
                )
            # A result made by a method object names its method: catch a wrong one early.
            made_by = previous.extras.get("method")
            if made_by is not None and made_by != self.requires:
                raise ValueError(
                    f"inversion method {self.name!r} starts from a {self.requires!r} result, got one from {made_by!r}"
                )
        # Only methods that take a discriminator see the keyword (the others' run() is unchanged).
        extra = {"discriminator": discriminator} if self.needs_discriminator else {}
        result = self.run(operator, y, generator=generator, seed=seed, progress=progress,
                          noise_sigma=noise_sigma, previous=previous, **extra)
        result.extras["method"] = self.name
        return result

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        """Calls the wrapped function; the checks of :meth:`__call__` have passed."""
        raise NotImplementedError


# ---------------------------------------------------------------- registry
_METHODS: Dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: registers an :class:`InversionMethod` subclass under ``name``.

    Registration order is run order (:func:`available_methods`): register a method after
    the one it :attr:`~InversionMethod.requires`.

    Raises:
      ValueError: ``name`` is taken by another class, or the required method is not
        registered yet.
    """

    def decorator(cls: type) -> type:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"inversion method {name!r} is already registered to {_METHODS[name]}")
        if cls.requires is not None and cls.requires not in _METHODS:
            raise ValueError(f"register {cls.requires!r} before {name!r}, which starts from it")
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorator


def available_methods(model_specific: bool = False) -> Tuple[str, ...]:
    """The registered method names, in run order (every method after the one it starts from).

    Args:
      model_specific: also list the methods that need a model of their own system besides
        a generator (:attr:`InversionMethod.model_specific`, e.g. ``acsg``).
    """
    return tuple(name for name, cls in _METHODS.items() if model_specific or not cls.model_specific)


def method_class(name: str) -> type:
    """The class registered under ``name``.

    Raises:
      UnknownNameError: for an unknown name (the message lists the valid ones).
    """
    try:
        return _METHODS[name]
    except KeyError:
        raise unknown_name("inversion method", name, _METHODS) from None


def get(name: str, **preset) -> InversionMethod:
    """Builds a registered inversion method with its settings.

    Args:
      name: one of :func:`available_methods`.
      **preset: settings (the wrapped function's keyword arguments, e.g. ``iterations``);
        the others keep their defaults. ``get("csgm", **presets("csgm")["began"])`` gives
        the paper's settings.

    Returns:
      The method object.

    Raises:
      UnknownNameError: an unknown method or setting (the message lists the valid ones).
    """
    return method_class(name)(**preset)


def presets(name: str) -> Dict[str, Dict[str, Any]]:
    """The published settings of a method, by preset name (empty if there are none).

    ``csgm``: :data:`~tfinverse.inversion.csgm.CSGM_PRESETS` (``began``, ``pggan``,
    ``csgm_mnist``, ``csgm_celeba``). ``iagan``: the IAGAN paper's per prior and task,
    ``<prior>-<task>`` (e.g. ``began-cs``, from :func:`~tfinverse.inversion.iagan.iagan_preset`,
    noiseless: the method halves the iterations under noise itself).

    Args:
      name: one of :func:`available_methods`.

    Returns:
      ``{preset name: settings}``, new dicts.

    Raises:
      UnknownNameError: for an unknown method.
    """
    method_class(name)
    if name == "csgm":
        return {key: dict(value) for key, value in CSGM_PRESETS.items()}
    if name == "iagan":
        return {f"{prior}-{task}": iagan_preset(prior, task) for prior, task in IAGAN_PRESETS}
    return {}


def with_dependencies(names: Iterable[str]) -> List[str]:
    """The given method names plus the methods they start from, in run order.

    Args:
      names: registered method names (repeats are ignored).

    Returns:
      The names, each method after the one it starts from (``["iagan-bp"]`` gives
      ``["csgm", "iagan", "iagan-bp"]``).

    Raises:
      UnknownNameError: for an unknown name.
    """
    needed = set()
    for name in names:
        while name is not None and name not in needed:
            needed.add(name)
            name = method_class(name).requires
    return [name for name in _METHODS if name in needed]


def run_methods(
    methods: Sequence[InversionMethod],
    operator,
    y,
    *,
    generator=None,
    seed: int = 0,
    progress: bool = True,
    noise_sigma: float = 0.0,
    skipped: Optional[Dict[str, str]] = None,
    discriminator=None,
) -> Dict[str, InversionResult]:
    """Runs methods in the given order, each that applies, feeding each its required result.

    Args:
      methods: method objects; a method that starts from another (``requires``) must come
        after it (:func:`with_dependencies` gives such an order).
      operator, y, generator, seed, progress, noise_sigma, discriminator: the call arguments
        of every method (see :meth:`InversionMethod.__call__`).
      skipped: if given, filled with ``{name: reason}`` for the methods that did not run.

    Returns:
      ``{name: result}`` of the methods that ran, in run order.

    Raises:
      ValueError: a method given twice, or given before the method it starts from (or
        without it); and whatever the methods raise.
    """
    names = [method.name for method in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"each inversion method may appear once, got {names}")
    results: Dict[str, InversionResult] = {}
    for position, method in enumerate(methods):
        if method.requires is not None and method.requires not in names[:position]:
            raise ValueError(
                f"inversion method {method.name!r} starts from {method.requires!r}: put a {method.requires!r} "
                "method before it (tfinverse.inversion.with_dependencies lists what is needed)"
            )
        applicability = method.applies_to(operator, noise_sigma)
        if not applicability:
            reason = applicability.reason
        elif method.requires is not None and method.requires not in results:
            reason = f"{method.requires!r}, which it starts from, did not run"
        else:
            results[method.name] = method(
                operator, y, generator=generator, seed=seed, progress=progress, noise_sigma=noise_sigma,
                previous=results.get(method.requires) if method.requires else None,
                discriminator=discriminator,
            )
            continue
        if skipped is not None:
            skipped[method.name] = reason
    return results


# ---------------------------------------------------------------- the methods
def _same_shape(operator) -> bool:
    return tuple(operator.out_shape) == tuple(operator.in_shape)


@register("observation")
class ObservationMethod(InversionMethod):
    """The naive estimate (:func:`~tfinverse.inversion.baselines.observation_baseline`).

    Settings:
      mode: None (the IAGAN tables' naive column: ``y`` itself when the measurements are
        images, else the pseudo-inverse ``A^+ y``), or a mode of ``observation_baseline``.
        ``extras["mode"]`` of the result names the mode used.
    """

    defaults = {"mode": None}

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        if self._settings["mode"] == "observation" and not _same_shape(operator):
            return _does_not_apply(f"the measurements of {operator.name!r} are not images")
        return _APPLIES

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        mode = self._settings["mode"]
        if mode is None:
            mode = "observation" if _same_shape(operator) else "pinv"
        return baselines.observation_baseline(operator, y, mode=mode)


@register("bicubic")
class BicubicMethod(InversionMethod):
    """Bicubic up-sampling of super-resolution measurements (:func:`~tfinverse.inversion.baselines.bicubic_upsampling`)."""

    defaults = _function_defaults(baselines.bicubic_upsampling)

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        if not callable(getattr(operator, "bicubic_upsample", None)):
            return _does_not_apply(f"bicubic up-sampling needs a super-resolution operator, got {operator.name!r}")
        return _APPLIES

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        return baselines.bicubic_upsampling(operator, y, **self._settings)


@register("ifft")
class ZeroFilledIFFTMethod(InversionMethod):
    """Zero-filled inverse FFT of subsampled Fourier measurements (:func:`~tfinverse.inversion.baselines.zero_filled_ifft`)."""

    defaults = _function_defaults(baselines.zero_filled_ifft)

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        if not callable(getattr(operator, "zero_filled_ifft", None)):
            return _does_not_apply(f"the zero-filled IFFT needs a subsampled Fourier operator, got {operator.name!r}")
        return _APPLIES

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        return baselines.zero_filled_ifft(operator, y, **self._settings)


@register("bm3d")
class BM3DMethod(InversionMethod):
    """BM3D denoising (:func:`~tfinverse.inversion.baselines.bm3d_denoise`) with ``sigma = noise_sigma``.

    Applies to noisy measurements of the identity operator (denoising) only; needs the
    ``bm3d`` extra when called.
    """

    defaults = _function_defaults(baselines.bm3d_denoise)

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        if operator.name != "identity":
            return _does_not_apply(f"BM3D is a denoiser: it needs the identity operator, got {operator.name!r}")
        if not noise_sigma > 0:
            return _does_not_apply("BM3D needs the noise level: the measurements are noiseless (noise_sigma 0)")
        return _APPLIES

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        return baselines.bm3d_denoise(y, noise_sigma, progress=progress, **self._settings)


@register("csgm")
class CSGMMethod(InversionMethod):
    """CSGM with random restarts (:func:`tfinverse.inversion.csgm.csgm`); settings are its keywords.

    :func:`presets` ``("csgm")`` gives the published settings.
    """

    needs_generator = True
    defaults = _function_defaults(csgm)

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        return csgm(generator, operator, y, seed=seed, progress=progress, **self._settings)


@register("iagan")
class IAGANMethod(InversionMethod):
    """IAGAN from CSGM's latents (:func:`tfinverse.inversion.iagan.iagan`).

    Settings are :func:`~tfinverse.inversion.iagan.iagan`'s keywords plus
    ``noisy_iteration_factor`` (2): under noise the method runs
    ``max(1, iterations // noisy_iteration_factor)`` iterations, as the paper halves them
    ("to avoid overfitting the noise"); 1 keeps them. Give it the noiseless preset.

    The result's ``seconds`` include CSGM's (IAGAN cannot run without it);
    ``extras["seconds_of_requires"]`` holds CSGM's part.
    """

    needs_generator = True
    requires = "csgm"
    defaults = {**_function_defaults(iagan), "noisy_iteration_factor": 2}

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        if previous.latents is None:
            raise ValueError("the csgm result given as previous= holds no latents")
        settings = self.settings
        factor = settings.pop("noisy_iteration_factor")
        settings["iterations"] = _iterations_under_noise(settings["iterations"], noise_sigma > 0, factor)
        result = iagan(generator, operator, y, z_init=previous.latents, seed=seed, progress=progress, **settings)
        result.extras["seconds_of_requires"] = previous.seconds
        return dataclasses.replace(result, seconds=result.seconds + previous.seconds)


class BackProjectedMethod(InversionMethod):
    """Back-projection of another method's estimate (:func:`~tfinverse.inversion.back_projection.back_project_result`).

    The base estimate is clipped to [0, 1] (the image the base method reports) and
    back-projected: ``x + A^+ (y - A x)``. Under noise it does not apply: ``A^+`` amplifies
    the noise, and the paper back-projects noiseless measurements only. The result's
    ``seconds`` include the base method's, its ``history`` is the base method's. It takes no
    generator itself (``needs_generator`` is False), though its base may.

    Settings:
      approximate: None (the paper's choice: the approximate ``A^+``, i.e. bicubic
        up-sampling, for super-resolution, and the exact ``A^+`` elsewhere), True (the
        approximate one wherever the operator has one) or False (always exact).
    """

    reports_history = False
    defaults = {"approximate": None}

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        if noise_sigma > 0:
            return _does_not_apply("back-projection amplifies noise; the paper applies it to noiseless measurements only")
        if self._settings["approximate"] and not has_approximate_pinv(operator):
            return _does_not_apply(f"operator {operator.name!r} has no approximate pseudo-inverse")
        return _APPLIES

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        approximate = self._settings["approximate"]
        if approximate is None:
            approximate = callable(getattr(operator, "bicubic_upsample", None))
        base = dataclasses.replace(previous, x_hat=np.clip(np.asarray(previous.x_hat), 0.0, 1.0))
        return back_project_result(operator, base, y, approximate=bool(approximate))


@register("csgm-bp")
class CSGMBackProjectedMethod(BackProjectedMethod):
    """CSGM-BP: CSGM's estimate back-projected (see :class:`BackProjectedMethod`)."""

    requires = "csgm"


@register("iagan-bp")
class IAGANBackProjectedMethod(BackProjectedMethod):
    """IAGAN-BP: IAGAN's estimate back-projected (see :class:`BackProjectedMethod`)."""

    requires = "iagan"


@register("dip")
class DIPMethod(InversionMethod):
    """Deep Image Prior (:func:`tfinverse.inversion.dip.dip`); settings are its keywords, plus two.

    Extra settings:
      levels: as ``dip``'s, but None (the default) picks the deepest network, up to 5
        levels, that the image size allows (:func:`dip_levels_for`).
      noisy_iteration_factor: under noise DIP runs
        ``max(1, iterations // noisy_iteration_factor)`` iterations (4, as IAGAN ran it;
        :func:`~tfinverse.inversion.dip.dip_iterations`); 1 keeps them.
    """

    defaults = {**_function_defaults(dip), "levels": None, "noisy_iteration_factor": DIP_NOISY_ITERATION_FACTOR}

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous) -> InversionResult:
        settings = self.settings
        factor = settings.pop("noisy_iteration_factor")
        settings["iterations"] = _iterations_under_noise(settings["iterations"], noise_sigma > 0, factor)
        if settings["levels"] is None:
            settings["levels"] = dip_levels_for(min(tuple(operator.in_shape)[:2]))
        return dip(operator, y, seed=seed, progress=progress, **settings)


@register("acsg")
class ACSGMethod(InversionMethod):
    """ACSG (:func:`tfinverse.inversion.acsg.acsg`): Ambient VAE-GAN's latent-optimisation baseline.

    Needs the generator and the feature map of the discriminator trained with it
    (``discriminator=``). The measurement is redrawn at every iteration: ``operator`` must draw
    per call (``A(x, seed=s)``, e.g. ``drop_independent``), and under noise
    (``noise_sigma > 0``) fresh Gaussian noise of that level is added to every draw, as the
    original re-drew its ``add_noise`` measurement. For the original's CelebA measurement
    (about mid grey) or any other noise model, call :func:`~tfinverse.inversion.acsg.acsg`
    with :func:`tfinverse.tasks.ambient.build_measurement`. Settings are its keywords
    (defaults: the original's); ``reference`` is not one (call the function to record the
    MSE curve).
    """

    needs_generator = True
    needs_discriminator = True
    model_specific = True
    defaults = _function_defaults(acsg, exclude=("reference",))

    def applies_to(self, operator, noise_sigma: float = 0.0) -> Applicability:
        if not _same_shape(operator):
            return _does_not_apply(
                f"ACSG compares discriminator features of measurements: {operator.name!r} does not output images"
            )
        return _APPLIES

    def run(self, operator, y, *, generator, seed, progress, noise_sigma, previous, discriminator) -> InversionResult:
        measure = operator
        if noise_sigma > 0:
            from tfinverse.models.ambient import AmbientMeasurement
            from tfinverse.operators.noise import GaussianNoise

            measure = AmbientMeasurement(operator.name, operator, GaussianNoise(sigma=noise_sigma))
        return acsg(generator, discriminator, measure, y, seed=seed, progress=progress, **self._settings)
