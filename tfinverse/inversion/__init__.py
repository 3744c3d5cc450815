"""Recovering ``x`` from ``y = A x + e`` with generative priors and baselines.

The modules ``csgm``, ``iagan`` and ``dip`` keep their names (their functions of the same
name are reached as ``tfinverse.inversion.csgm.csgm`` and so on, so that importing a module
never yields a function). Every method takes an operator from :mod:`tfinverse.operators` and a measurement batch,
validates it before any optimisation, and returns an :class:`InversionResult` (estimate,
per-iteration objective history, chosen latents, wall time):

* :func:`csgm.csgm <tfinverse.inversion.csgm.csgm>`: Adam on the latent with batched random restarts (Bora et al.; IAGAN's CSGM);
* :func:`iagan.iagan <tfinverse.inversion.iagan.iagan>`: joint fine-tuning of the latent and a copy of the generator weights;
* :func:`back_project`: ``x + A^+(y - A x)`` (exact or the paper's approximate ``A^+``);
* :func:`recover_latents`: LVR gradient descent with no, projected or stochastic clipping,
  and the sharpness attribute (LVR-SA);
* :func:`dip.dip <tfinverse.inversion.dip.dip>`: the Deep Image Prior baseline;
* :func:`acsg.acsg <tfinverse.inversion.acsg.acsg>`: Ambient VAE-GAN's ACSG baseline, latent
  optimisation matching discriminator features of re-measured images;
* :mod:`~tfinverse.inversion.baselines`: bicubic up-sampling, zero-filled IFFT, BM3D, and
  Ambient VAE-GAN's non-learned blur / median baseline.

The same methods behind one call signature, by name (:mod:`~tfinverse.inversion.methods`)::

    method = tfinverse.inversion.get("csgm", iterations=500)   # an InversionMethod
    result = method(operator, y, generator=g, seed=0)
    tfinverse.inversion.available_methods()   # ("observation", "bicubic", ..., "dip")
"""

from tfinverse.inversion.back_projection import (
    approximate_pinv,
    back_project,
    back_project_result,
    has_approximate_pinv,
)
from tfinverse.inversion.base import InversionResult, check_measurement
from tfinverse.inversion.baselines import (
    bicubic_upsampling,
    bm3d_denoise,
    bm3d_poisson_denoise,
    non_learned_ambient,
    observation_baseline,
    zero_filled_ifft,
)
from tfinverse.inversion import acsg, csgm, dip, iagan
from tfinverse.inversion.csgm import CSGM_PRESETS
from tfinverse.inversion.dip import dip_iterations
from tfinverse.inversion.iagan import IAGAN_PRESETS, csgm_then_iagan, iagan_preset
from tfinverse.inversion.methods import (
    Applicability,
    InversionMethod,
    available_methods,
    get,
    presets,
    run_methods,
    with_dependencies,
)
from tfinverse.inversion.lvr import (
    apply_sharpness_attribute,
    denoise_by_projection,
    denoise_with_sharpness_attribute,
    estimate_sharpness_attribute,
    load_attribute,
    recover_latents,
    recovery_success_rate,
    save_attribute,
    stochastic_clip,
)

__all__ = [
    "InversionResult",
    "check_measurement",
    "CSGM_PRESETS",
    "csgm",  # module
    "IAGAN_PRESETS",
    "iagan",  # module
    "iagan_preset",
    "csgm_then_iagan",
    "back_project",
    "back_project_result",
    "approximate_pinv",
    "has_approximate_pinv",
    "recover_latents",
    "recovery_success_rate",
    "stochastic_clip",
    "estimate_sharpness_attribute",
    "apply_sharpness_attribute",
    "save_attribute",
    "load_attribute",
    "denoise_by_projection",
    "denoise_with_sharpness_attribute",
    "dip",  # module
    "dip_iterations",
    "bicubic_upsampling",
    "zero_filled_ifft",
    "bm3d_denoise",
    "bm3d_poisson_denoise",
    "observation_baseline",
    "non_learned_ambient",
    "acsg",  # module
    # one call signature per method, by name (tfinverse.inversion.methods)
    "InversionMethod",
    "Applicability",
    "available_methods",
    "get",
    "presets",
    "with_dependencies",
    "run_methods",
]
