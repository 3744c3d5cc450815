"""Models that ship inside the package: priors, and igan's trained estimators.

The shipped models are trained by this package's own scripts (the command, training time
and quality of each are in the README and REPRODUCTION.md); no weights of the original papers
exist for them. ``load_prior`` also takes any path that :func:`tfinverse.hub.load_generator`
reads. igan estimators ship for the tasks of :data:`SHIPPED_IGAN_ESTIMATORS`, as the
SavedModels ``train_igan.py`` exports (``y -> (component, clean)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

__all__ = [
    "SHIPPED_PRIORS",
    "SHIPPED_IGAN_ESTIMATORS",
    "UNTRAINED_PREFIX",
    "shipped_prior_path",
    "shipped_igan_estimator_path",
    "untrained_prior",
    "keras_prior",
    "load_prior",
]

_ASSETS = Path(__file__).resolve().parent / "assets" / "priors"
_IGAN_ASSETS = Path(__file__).resolve().parent / "assets" / "igan"

#: name -> what it is.
SHIPPED_PRIORS: Dict[str, str] = {
    "dcgan_mnist28": "DCGAN (LVR layout, 32 base filters) trained on the MNIST-5000 training split, 28x28x1, "
    "z ~ U[-1, 1]^100",
    "dcgan_mnist28_path_length": "the same layout, data and schedule with StyleGAN2's path-length regulariser "
    "(weight 10): a better-conditioned dG/dz (median condition number 179 against 730), so latents can be "
    "recovered from images, at a worse sample quality (Frechet distance 46 against 19)",
}


#: igan task -> the shipped estimator (its training run is in REPRODUCTION.md, section igan).
SHIPPED_IGAN_ESTIMATORS: Dict[str, str] = {
    "denoising": "unpaired igan (vanilla GAN, dual mapping), 2500 generator steps on the MNIST-5000 training "
    "split with noise std 1.0; held-out dataset PSNR 19.21 dB / SSIM 0.805 against -0.01 dB for the input",
    "derain": "unpaired igan (vanilla GAN, dual mapping), 2500 generator steps on synthetic rain streaks over "
    "natural-image patches; held-out dataset PSNR 23.76 dB against 22.61 dB for the rainy input (SSIM 0.683 "
    "against 0.744)",
    "unmixing_mnist_cifar": "unpaired igan (vanilla GAN, dual mapping), 1500 generator steps on MNIST-5000 digits "
    "added to natural-image patches (the offline stand-in for CIFAR-10); held-out dataset PSNR 22.61 dB / SSIM "
    "0.681 for the photo against 9.88 dB / 0.554 for the mixture",
}


#: ``load_prior("untrained:<shipped name>")`` builds that prior's layout with fresh weights.
UNTRAINED_PREFIX = "untrained:"

# The layouts of the shipped priors (the training command is in the README).
_DCGAN_MNIST28_LAYOUT: Dict[str, int] = {"resolution": 28, "channels": 1, "latent_dim": 100, "base_filters": 32}
_LAYOUTS: Dict[str, Dict[str, int]] = {
    "dcgan_mnist28": _DCGAN_MNIST28_LAYOUT,
    "dcgan_mnist28_path_length": _DCGAN_MNIST28_LAYOUT,  # the same network, regularised training
}


def untrained_prior(name: str = "dcgan_mnist28", seed: int = 0, calibration_batches: int = 20,
                    batch_size: int = 64):
    """A shipped prior's layout with freshly initialised weights and calibrated batch norm.

    A reference point for latent recovery (LVR): an untrained generator is well conditioned,
    so how well its latents can be recovered separates the method from the trained prior.
    Its batch-norm moving statistics are estimated from ``calibration_batches`` training-mode
    passes over latents drawn from the prior's latent distribution
    (:func:`tfinverse.training.batch_norm.recalibrate_batch_norm`), so inference mode is the
    function the layers compute.

    Args:
      name: a key of :data:`SHIPPED_PRIORS`.
      seed: seed of the weights and of the calibration latents.
      calibration_batches: training-mode passes for the batch-norm statistics.
      batch_size: latents per calibration pass.

    Returns:
      A :class:`tfinverse.models.DCGANGenerator`.

    Raises:
      UnknownNameError: for a name that is not a shipped prior.
    """
    from tfinverse.errors import unknown_name

    if name not in _LAYOUTS:
        raise unknown_name("shipped prior", name, _LAYOUTS, where="untrained prior")
    from tfinverse.models import DCGANGenerator
    from tfinverse.training.batch_norm import recalibrate_batch_norm

    generator = DCGANGenerator(**_LAYOUTS[name], seed=int(seed))
    latents = [generator.sample_latent(int(batch_size), seed=int(seed) * 1000 + k) for k in range(int(calibration_batches))]
    recalibrate_batch_norm(generator.network, latents)
    return generator


def keras_prior(name: str, exported=None):
    """A shipped prior as its Keras network, with its weights, under the current dtype policy.

    The shipped SavedModels compute in float32 whatever the policy. Under ``mixed_bfloat16``
    (``--precision bfloat16``) :func:`load_prior` returns this instead, so that CSGM, IAGAN and
    their per-image copies compute in 16 bits (variables stay float32). The weights are copied
    by name from the SavedModel's variables, batch-norm statistics included.

    Args:
      name: a key of :data:`SHIPPED_PRIORS`.
      exported: the prior already loaded from its SavedModel (loaded here if None).

    Returns:
      A :class:`tfinverse.models.DCGANGenerator`.

    Raises:
      UnknownNameError: for a name that is not a shipped prior.
      RuntimeError: if the SavedModel's variables do not match the layout by name and shape.
    """
    from tfinverse.errors import unknown_name

    if name not in _LAYOUTS:
        raise unknown_name("shipped prior", name, _LAYOUTS, where="Keras prior")
    from tfinverse import hub

    if exported is None:
        exported = hub.load_generator(str(shipped_prior_path(name)))
    from tfinverse.models import DCGANGenerator

    generator = DCGANGenerator(**_LAYOUTS[name], seed=0)
    # The loaded export names each variable by the Keras path it was saved from, flattened.
    stored = {v.name: v for v in exported.variables}
    targets = generator.network.variables
    sources = [stored.get(hub.flat_variable_name(v.path)) for v in targets]
    missing = [v.path for v, source in zip(targets, sources) if source is None]
    if missing or len(stored) != len(targets):
        raise RuntimeError(f"shipped prior {name!r} does not match its layout: missing {missing}, "
                           f"{len(stored)} stored against {len(targets)} variables")
    for variable, source in zip(targets, sources):
        if tuple(source.shape) != tuple(variable.shape):
            raise RuntimeError(f"shipped prior {name!r}: {variable.path} has shape {tuple(source.shape)}, "
                               f"the layout {tuple(variable.shape)}")
        variable.assign(source)
    return generator


def shipped_prior_path(name: str) -> Path:
    """The SavedModel folder of a shipped prior.

    Raises:
      KeyError: for an unknown name (the message lists the shipped ones).
      FileNotFoundError: if the package was installed without its assets.
    """
    if name not in SHIPPED_PRIORS:
        raise KeyError(f"no shipped prior {name!r}; shipped: {', '.join(SHIPPED_PRIORS)}")
    path = _ASSETS / name
    if not path.is_dir():
        raise FileNotFoundError(f"shipped prior {name!r} is missing at {path}; reinstall tfinverse with its assets")
    return path


def shipped_igan_estimator_path(task: str) -> Path:
    """The SavedModel folder of the igan estimator shipped for a task.

    Raises:
      UnknownNameError: for a task without a shipped estimator (the message lists those with one).
      FileNotFoundError: if the package was installed without its assets.
    """
    from tfinverse.errors import UnknownNameError

    if task not in SHIPPED_IGAN_ESTIMATORS:
        shipped = ", ".join(sorted(SHIPPED_IGAN_ESTIMATORS)) or "none"
        raise UnknownNameError(f"no igan estimator ships for task {task!r} (shipped for: {shipped}); "
                               "train one with scripts/train_igan.py")
    path = _IGAN_ASSETS / task
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"the igan estimator of {task!r} is missing at {path}; reinstall tfinverse with its assets")
    return path


def load_prior(name_or_path: str):
    """Loads a shipped prior by name, or any generator path :func:`tfinverse.hub.load_generator` reads.

    Args:
      name_or_path: a key of :data:`SHIPPED_PRIORS`, ``"untrained:<key>"`` (that layout with
        fresh weights, :func:`untrained_prior`), or a SavedModel / TF-Hub-format folder, a
        ``.keras`` file or a PGGAN ``.pth`` state dict.

    A shipped prior is its SavedModel (float32) under a float32 dtype policy, and its Keras
    network with the same weights under a 16-bit one (:func:`keras_prior`), so that
    ``--precision bfloat16`` reaches CSGM and IAGAN.

    Returns:
      A :class:`tfinverse.models.Generator`.
    """
    from tfinverse import hub

    if str(name_or_path).startswith(UNTRAINED_PREFIX):
        return untrained_prior(str(name_or_path)[len(UNTRAINED_PREFIX):])
    if name_or_path in SHIPPED_PRIORS:
        exported = hub.load_generator(str(shipped_prior_path(name_or_path)))
        import keras

        if keras.mixed_precision.global_policy().compute_dtype == "float32":
            return exported
        return keras_prior(name_or_path, exported)
    if not Path(name_or_path).exists():
        from tfinverse.errors import MissingPathError

        raise MissingPathError(
            f"prior {name_or_path!r} is neither a shipped prior ({', '.join(SHIPPED_PRIORS)}) nor an existing path"
        )
    return hub.load_generator(str(name_or_path))
