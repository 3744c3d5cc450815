"""Priors that ship inside the package, and loading a prior by name or path.

The shipped priors are trained by this package's own scripts (the command, training time
and sample quality of each are in the README); no weights of the original papers exist for
them. ``load_prior`` also takes any path that :func:`tfinverse.hub.load_generator` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

__all__ = ["SHIPPED_PRIORS", "shipped_prior_path", "load_prior"]

_ASSETS = Path(__file__).resolve().parent / "assets" / "priors"

#: name -> what it is.
SHIPPED_PRIORS: Dict[str, str] = {
    "dcgan_mnist28": "DCGAN (LVR layout, 32 base filters) trained on the MNIST-5000 training split, 28x28x1, "
    "z ~ U[-1, 1]^100",
}


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


def load_prior(name_or_path: str):
    """Loads a shipped prior by name, or any generator path :func:`tfinverse.hub.load_generator` reads.

    Args:
      name_or_path: a key of :data:`SHIPPED_PRIORS`, or a SavedModel / TF-Hub-format folder,
        a ``.keras`` file or a PGGAN ``.pth`` state dict.

    Returns:
      A :class:`tfinverse.models.Generator`.
    """
    from tfinverse import hub

    if name_or_path in SHIPPED_PRIORS:
        return hub.load_generator(str(shipped_prior_path(name_or_path)))
    if not Path(name_or_path).exists():
        from tfinverse.errors import MissingPathError

        raise MissingPathError(
            f"prior {name_or_path!r} is neither a shipped prior ({', '.join(SHIPPED_PRIORS)}) nor an existing path"
        )
    return hub.load_generator(str(name_or_path))
