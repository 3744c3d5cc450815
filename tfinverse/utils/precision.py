"""Numeric precision of a run: ``--precision float32|bfloat16|float16``.

``bfloat16`` and ``float16`` select Keras' mixed-precision policies (``mixed_bfloat16``,
``mixed_float16``): layers compute in 16 bits while variables, optimizer state and the
losses stay in float32. On CPUs with AMX-BF16 (current Xeons) bfloat16 convolutions and
matrix products run about 4-5x faster than float32; ``float16`` is for GPUs and needs loss
scaling, which the GAN trainers add themselves under that policy. float32 is the default
wherever precision matters.

This module imports nothing heavy; Keras loads when a policy is applied.
"""

from __future__ import annotations

import argparse
import contextlib

__all__ = ["PRECISIONS", "KERAS_POLICIES", "add_precision_flag", "precision_policy", "warn_if_xla_on_cpu"]

#: ``--precision`` choices, the default first.
PRECISIONS = ("float32", "bfloat16", "float16")
#: ``--precision`` -> Keras global dtype policy.
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}

_XLA_WARNED = False


def add_precision_flag(parser, default: str = "float32", help_suffix: str = "") -> argparse.ArgumentParser:
    """Adds ``--precision`` to a parser.

    Args:
      parser: the parser (or an argument group).
      default: the default choice.
      help_suffix: text appended to the help (what the precision applies to in this script).

    Returns:
      ``parser``.
    """
    parser.add_argument(
        "--precision", default=default, choices=PRECISIONS,
        help="numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is "
             "~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling)" + help_suffix,
    )
    return parser


@contextlib.contextmanager
def precision_policy(precision: str):
    """Sets Keras' global dtype policy for ``precision`` and restores the previous one after.

    Models must be built inside the block to take the policy.

    Args:
      precision: one of :data:`PRECISIONS`.

    Yields:
      The Keras policy name in force.

    Raises:
      ValueError: for an unknown precision.
    """
    if precision not in KERAS_POLICIES:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(KERAS_POLICIES[precision])
    try:
        yield KERAS_POLICIES[precision]
    finally:
        keras.mixed_precision.set_global_policy(previous)


def warn_if_xla_on_cpu(jit_compile: bool) -> bool:
    """Warns once per process when XLA is asked for on a machine without a GPU.

    XLA's CPU backend emits its own convolution code instead of calling oneDNN: measured on
    2 cores, compiled GAN and inversion steps ran 5-20x slower than a plain ``tf.function``.
    ``--jit-compile`` stays available because it pays off on GPUs.

    Args:
      jit_compile: whether XLA was requested.

    Returns:
      True if the warning was given now.
    """
    global _XLA_WARNED
    if not jit_compile or _XLA_WARNED:
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    _XLA_WARNED = True
    import warnings

    warnings.warn(
        "jit_compile (XLA) was requested on a machine with no GPU: on CPUs XLA runs convolutions "
        "5-20x slower than a plain tf.function; leave --jit-compile off here",
        RuntimeWarning,
        stacklevel=2,
    )
    return True
