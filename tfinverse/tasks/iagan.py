"""IAGAN ("Image-Adaptive GAN based Reconstruction"): its tasks, methods and prior constants.

* The inversion tasks of the paper (compressed sensing with Gaussian and subsampled
  Fourier measurements, super-resolution, deblurring, plus inpainting and denoising) as
  ``TASK[:key=value,...]`` specs, parsed and checked by :func:`parse_task`.
* The methods the deploy scripts compare (:data:`METHODS`).
* The flags every IAGAN experiment script shares (:func:`add_inversion_flags`), and the
  method objects they configure (:func:`methods_from_flags`).
* The training constants of its BEGAN and PGGAN priors.

This module imports nothing heavy (no TensorFlow until a spec is checked against its
operator), so scripts build their parsers from it before TensorFlow loads. The runner of
one task is :func:`tfinverse.evaluation.iagan.run_task`.
"""

from __future__ import annotations

import argparse
import math
from typing import NamedTuple

from tfinverse.errors import InputError, unknown_name

__all__ = [
    "BEGAN_GAMMA",
    "BEGAN_LAMBDA_K",
    "BEGAN_LEARNING_RATE",
    "PGGAN_LEARNING_RATE",
    "PGGAN_BETAS",
    "PGGAN_GP_WEIGHT",
    "PGGAN_DRIFT_WEIGHT",
    "PGGAN_KIMG_PER_PHASE",
    "TASKS",
    "DEFAULT_TASKS",
    "METHODS",
    "DEFAULT_METHODS",
    "InversionTask",
    "NOISE_CONVENTIONS",
    "PRESETS",
    "parse_task",
    "apply_preset",
    "task_label",
    "add_inversion_flags",
    "methods_from_flags",
]

# ---------------------------------------------------------------- prior training constants
#: BEGAN's diversity ratio gamma = E[L(G(z))] / E[L(x)].
BEGAN_GAMMA = 0.5
#: BEGAN's proportional gain of the k_t update.
BEGAN_LAMBDA_K = 1e-3
#: BEGAN's Adam learning rate.
BEGAN_LEARNING_RATE = 1e-4
#: PGGAN's Adam learning rate, betas, WGAN-GP weight and drift weight.
PGGAN_LEARNING_RATE = 1e-3
PGGAN_BETAS = (0.0, 0.99)
PGGAN_GP_WEIGHT = 10.0
PGGAN_DRIFT_WEIGHT = 1e-3
#: Thousands of images shown per PGGAN fade-in or stabilisation phase.
PGGAN_KIMG_PER_PHASE = 600.0

# ---------------------------------------------------------------- inversion tasks
#: task name -> (registered operator, its default parameters, default noise sigma on [0, 1])
TASKS = {
    "cs-gaussian": ("compressed_sensing", {"ratio": 0.1}, 0.0),
    "cs-fourier": ("subsampled_fourier", {"ratio": 0.3}, 10 / 255),
    "sr": ("super_resolution", {"factor": 4}, 0.0),
    "deblur": ("blur_uniform", {"kernel_size": 9}, 10 / 255),
    "inpaint": ("random_pixel_mask", {"keep_fraction": 0.3}, 0.0),
    "denoise": ("identity", {}, 0.1),
}
#: The main job's tasks: Tables 1, 2 and 4 of the paper on the shipped prior.
DEFAULT_TASKS = (
    "cs-gaussian:ratio=0.1",
    "cs-fourier:ratio=0.3",
    "cs-fourier:ratio=0.5",
    "sr:factor=4",
    "deblur:kernel_size=9",
)
METHODS = ("csgm", "csgm-bp", "iagan", "iagan-bp", "dip", "bicubic", "ifft", "bm3d")
DEFAULT_METHODS = ("csgm", "csgm-bp", "iagan", "iagan-bp", "dip", "bicubic", "ifft")
# Parameters of the task spec that are not the operator's.
_TASK_PARAMETERS = ("noise",)
# Compressed sensing with more measurements than pixels is not compressed: refused.
_RATIO_TASKS = ("cs-gaussian", "cs-fourier", "inpaint")


#: ``--noise-convention`` -> the factor from a task's ``noise=sigma`` to the standard deviation
#: added to [0, 1] images. ``image``: sigma is on [0, 1] images (tfinverse's convention).
#: ``original``: the IAGAN code's, which adds ``sigma * N(0, 1)`` to images scaled to
#: [-1, 1], so its "noise 10/255" is 5/255 on [0, 1]; the paper's tables were made this way.
NOISE_CONVENTIONS = {"image": 1.0, "original": 0.5}

#: ``--preset`` choices: ``flags`` takes the iteration counts and learning rates from the
#: flags; ``paper-began`` / ``paper-pggan`` take the paper's per-task settings for that prior
#: (CSGM 1600 / 1800 iterations at lr 0.1; IAGAN 600 CS / 500 SR with BEGAN, 500 / 300 with
#: PGGAN, its learning rates, halved under noise). The paper gives no IAGAN setting for
#: deblurring (nor for inpainting and denoising): those tasks keep the flags' values.
PRESETS = ("flags", "paper-began", "paper-pggan")


class InversionTask(NamedTuple):
    """One parsed ``--tasks`` entry.

    Attributes:
      name: the task (a key of :data:`TASKS`).
      operator: the registered operator's name.
      params: the operator's parameters (defaults filled in).
      sigma: standard deviation of the Gaussian noise added to the measurements, on [0, 1].
    """

    name: str
    operator: str
    params: dict
    sigma: float

    @property
    def label(self) -> str:
        """A readable label, e.g. ``cs-fourier (ratio=0.3, noise=10/255)``."""
        return task_label(self.name, self.params, self.sigma)


def parse_task(spec: str, flag: str = "--tasks") -> InversionTask:
    """``task:key=value,...`` -> :class:`InversionTask`, with every value checked.

    Keys are the operator's constructor parameters plus ``noise`` (sigma on [0, 1]).
    Values are typed by the parameter's default (``factor=abc`` is refused); ratios of the
    sampling tasks must lie in (0, 1] (``ratio > 1`` means more measurements than pixels).

    Args:
      spec: the text, e.g. ``"cs-fourier:ratio=0.5,noise=0.04"``.
      flag: the flag it came from, for messages.

    Returns:
      The task.

    Raises:
      UnknownNameError: an unknown task or parameter (the message lists the valid ones).
      InputError: a value of the wrong type or out of range.
    """
    from tfinverse.utils.cli import coerce_parameters, parse_spec

    name, given = parse_spec(spec, flag)
    if name not in TASKS:
        raise unknown_name("task", name, TASKS, where=flag)
    op_name, defaults, sigma = TASKS[name]
    what = f"{flag} {name}"
    if "noise" in given:
        noise = given.pop("noise")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
            raise InputError(f"{what}: noise must be a finite number >= 0 (sigma on [0, 1]), got {noise!r}")
        sigma = float(noise)
    import tfinverse.operators as ops

    try:
        params = coerce_parameters(what, given, ops.operator_class(op_name), skip=("image_shape", "seed", "dtype"))
    except KeyError as error:  # an unknown parameter: list the task's own key too
        raise type(error)(f"{error}, {', '.join(_TASK_PARAMETERS)}") from None
    params = {**defaults, **params}
    ratio = params.get("ratio", params.get("keep_fraction"))
    if name in _RATIO_TASKS and ratio is not None and not 0 < ratio <= 1:
        raise InputError(f"{what}: the ratio must be in (0, 1] (m <= n measurements), got {ratio}")
    return InversionTask(name, op_name, params, sigma)


def apply_preset(args: argparse.Namespace, task: "InversionTask") -> argparse.Namespace:
    """The flags with a ``--preset``'s per-task settings filled in (a copy; ``args`` is unchanged).

    Args:
      args: parsed flags with ``preset`` (absent means ``flags``) and the flags of
        :func:`add_inversion_flags`.
      task: the task the settings are for.

    Returns:
      A namespace whose ``csgm_iterations``, ``csgm_lr``, ``iagan_iterations``,
      ``iagan_lr_z`` and ``iagan_lr_theta`` are the preset's for this task (the noiseless
      count: the IAGAN method halves it under noise itself), and ``preset_applied`` says
      whether the paper had a setting for the task.
    """
    preset = getattr(args, "preset", "flags") or "flags"
    out = argparse.Namespace(**vars(args))
    out.preset_applied = False
    if preset == "flags":
        return out
    if preset not in PRESETS:
        raise InputError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    from tfinverse.inversion.csgm import CSGM_PRESETS
    from tfinverse.inversion.iagan import IAGAN_TASKS, iagan_preset

    prior = preset.split("-", 1)[1]
    out.csgm_iterations = int(CSGM_PRESETS[prior]["iterations"])
    out.csgm_lr = float(CSGM_PRESETS[prior]["learning_rate"])
    paper_task = IAGAN_TASKS.get(task.operator) or IAGAN_TASKS.get(task.name.split("-")[0])
    if paper_task is not None:
        settings = iagan_preset(prior, paper_task, noisy=False)
        out.iagan_iterations = int(settings["iterations"])
        out.iagan_lr_z, out.iagan_lr_theta = float(settings["lr_z"]), float(settings["lr_theta"])
        out.preset_applied = True
    return out


def task_label(name: str, params: dict, sigma: float) -> str:
    """A task's label for tables and grids: ``name (k=v, ..., noise=N/255)``."""
    parts = [f"{k}={v}" for k, v in params.items()]
    if sigma:
        parts.append(f"noise={sigma * 255:.0f}/255")
    return name + (" (" + ", ".join(parts) + ")" if parts else "")


def add_inversion_flags(
    parser: argparse.ArgumentParser,
    num_images: int,
    num_images_help: str,
    iagan_iterations: int,
    iagan_iterations_help: str,
) -> argparse.ArgumentParser:
    """Adds the prior, held-out image and CSGM/IAGAN flags that ``run_task`` reads.

    Args:
      parser: the script's parser.
      num_images: default of ``--num-images``.
      num_images_help: its help text (say whether the default is the paper's).
      iagan_iterations: default of ``--iagan-iterations``.
      iagan_iterations_help: its help text.

    Returns:
      ``parser``.
    """
    from tfinverse.utils.cli import positive_float, positive_int

    parser.add_argument("--prior", default="dcgan_mnist28",
                        help="a shipped prior's name, or a SavedModel / TF-Hub-format directory / .keras / .pth")
    parser.add_argument("--images", default="mnist5k",
                        help="a registered dataset (its held-out test split) or a folder of images")
    parser.add_argument("--num-images", type=positive_int, default=num_images, help=num_images_help)
    parser.add_argument("--csgm-iterations", type=positive_int, default=500,
                        help="CSGM Adam steps (paper: 1600; shortened)")
    parser.add_argument("--csgm-lr", type=positive_float, default=0.1, help="CSGM learning rate (paper: 0.1)")
    parser.add_argument("--restarts", type=positive_int, default=5,
                        help="CSGM random restarts, the best kept (IAGAN original code: 5; the paper does not say)")
    parser.add_argument("--iagan-iterations", type=positive_int, default=iagan_iterations,
                        help=iagan_iterations_help)
    parser.add_argument("--iagan-lr-z", type=positive_float, default=1e-4,
                        help="IAGAN latent learning rate (paper: 1e-4)")
    parser.add_argument("--iagan-lr-theta", type=positive_float, default=1e-4,
                        help="IAGAN weight learning rate (paper: 1e-4 with BEGAN)")
    parser.add_argument("--jit-compile", action="store_true",
                        help="compile the optimisation steps with XLA (for GPUs; slower on CPUs)")
    parser.add_argument("--preset", default="flags", choices=PRESETS,
                        help="iteration counts and learning rates: from these flags, or the paper's per task for "
                             "its BEGAN or PGGAN prior (no paper setting for deblurring: the flags' then)")
    from tfinverse.utils.precision import add_precision_flag

    add_precision_flag(parser, help_suffix="; applies to the networks the run builds (DIP; the prior and IAGAN's weight "
                                           "copies: a shipped prior is rebuilt as its Keras network, another "
                                           "SavedModel prior computes as it was saved)")
    parser.add_argument("--noise-convention", default="image", choices=tuple(NOISE_CONVENTIONS),
                        help="what a task's noise=sigma means: sigma on [0, 1] images (image), or the IAGAN code's "
                             "sigma on [-1, 1] images, i.e. sigma/2 on [0, 1] (original; the paper's tables)")
    return parser


def methods_from_flags(args: argparse.Namespace, names=None) -> list:
    """The inversion methods a script's flags ask for, configured by its flags.

    Reads the flags of :func:`add_inversion_flags` for CSGM and IAGAN and, only when
    ``dip`` is asked for, ``dip_iterations``, ``dip_channels`` and ``dip_levels`` (None: the
    deepest network the image size allows). Imports TensorFlow (call it after parsing).

    Args:
      args: the parsed flags.
      names: method names; default ``args.methods``.

    Returns:
      :class:`tfinverse.inversion.InversionMethod` objects for the names plus the methods
      they start from (``iagan`` needs ``csgm``), in run order
      (:func:`tfinverse.inversion.with_dependencies`); ready for
      :func:`tfinverse.inversion.run_methods`.

    Raises:
      UnknownNameError: for an unknown method name.
    """
    from tfinverse import inversion

    names = list(args.methods if names is None else names)
    # Settings per method from the flags; methods without flags keep their defaults.
    settings = {
        "csgm": lambda: {"iterations": args.csgm_iterations, "learning_rate": args.csgm_lr,
                         "restarts": args.restarts, "jit_compile": args.jit_compile},
        "iagan": lambda: {"iterations": args.iagan_iterations, "lr_z": args.iagan_lr_z,
                          "lr_theta": args.iagan_lr_theta, "jit_compile": args.jit_compile},
        "dip": lambda: {"iterations": args.dip_iterations, "channels": args.dip_channels,
                        "levels": args.dip_levels, "jit_compile": args.jit_compile},
    }
    return [inversion.get(name, **settings.get(name, dict)()) for name in inversion.with_dependencies(names)]
