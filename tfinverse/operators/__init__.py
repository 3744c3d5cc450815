"""Forward operators (the ``A`` of ``y = A x + e``) and noise models.

``available()`` lists the registered linear operators and ``get(name, **params)`` builds
one; ``available_noise()`` and ``get_noise(name, **params)`` do the same for noise models,
which are kept separate from the linear part so that any noise composes with any operator::

    import tfinverse.operators as ops
    A = ops.get("super_resolution", image_shape=(64, 64, 3), factor=4)
    noise = ops.get_noise("gaussian", sigma=10 / 255)
    y = noise(A(x), seed=0)

Importing this package registers every family below.
"""

from tfinverse.operators.base import LinearOperator, available, conjugate_gradient, get, operator_class, register
from tfinverse.operators.blur import Blur, GaussianBlur, UniformBlur, gaussian_kernel, uniform_kernel
from tfinverse.operators.composition import Composition, NamedComposition
from tfinverse.operators.compressed_sensing import CompressedSensing
from tfinverse.operators.fourier import SubsampledFourier, zero_filled_ifft
from tfinverse.operators.identity import Identity
from tfinverse.operators.inpainting import DropIndependent, DropPatch, KeepPatch, MaskOperator, RandomPixelMask
from tfinverse.operators.noise import (
    GaussianNoise,
    NoiseModel,
    PoissonNoise,
    SpeckleNoise,
    available_noise,
    get_noise,
    measure,
    noise_class,
    register_noise,
)
from tfinverse.operators.super_resolution import Decimate, SuperResolution, bicubic_upsample
from tfinverse.operators.superposition import Superposition, split_sources, stack_sources

__all__ = [
    # registry and base
    "LinearOperator",
    "available",
    "conjugate_gradient",
    "get",
    "operator_class",
    "register",
    # noise models
    "NoiseModel",
    "GaussianNoise",
    "PoissonNoise",
    "SpeckleNoise",
    "available_noise",
    "get_noise",
    "measure",
    "noise_class",
    "register_noise",
    # operator families
    "Identity",
    "MaskOperator",
    "DropIndependent",
    "DropPatch",
    "KeepPatch",
    "RandomPixelMask",
    "Blur",
    "UniformBlur",
    "GaussianBlur",
    "uniform_kernel",
    "gaussian_kernel",
    "SuperResolution",
    "Decimate",
    "bicubic_upsample",
    "CompressedSensing",
    "SubsampledFourier",
    "zero_filled_ifft",
    "Superposition",
    "stack_sources",
    "split_sources",
    "Composition",
    "NamedComposition",
]
