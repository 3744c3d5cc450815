"""tfinverse: inverse problems in imaging and audio with generative models, in TensorFlow 2.

Submodules are imported on first use (``tfinverse.operators``, ``tfinverse.metrics``,
``tfinverse.data``, ...), so ``import tfinverse`` costs little more than ``import tensorflow``
and never imports librosa, scikit-image, tensorflow-datasets, bm3d or matplotlib.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "operators", "metrics", "data", "utils", "models", "hub", "pretrained", "inversion", "training", "evaluation", "tasks",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"tfinverse.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfinverse' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
