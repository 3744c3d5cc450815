"""tfinverse: inverse problems in imaging and audio with generative models, in TensorFlow 2.

Submodules are imported on first use (``tfinverse.operators``, ``tfinverse.metrics``,
``tfinverse.data``, ...): ``import tfinverse`` itself imports nothing heavy (about 0.01 s),
and the first submodule that needs TensorFlow costs what ``import tensorflow`` costs (about
5 s on 2 cores). ``tfinverse.errors``, ``tfinverse.utils`` and the settings modules of
``tfinverse.tasks`` load without TensorFlow, which is how scripts answer ``--help`` at once.
librosa, scikit-image, tensorflow-datasets, bm3d and matplotlib are imported only inside the
functions that use them.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "operators", "metrics", "data", "utils", "models", "hub", "pretrained", "inversion", "training", "evaluation", "tasks",
    "errors", "losses",
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
