"""Package faces that import their heavy modules on first use.

A package that re-exports names from modules needing TensorFlow would load TensorFlow on
``import package``; scripts that read light settings from the same package before parsing
their flags would then pay for it on ``--help``. Such a package maps each public name to its
defining module and lets :func:`lazy_attributes` resolve it on first access (PEP 562)::

    __getattr__, __dir__ = lazy_attributes(__name__, {"Trainer": "pkg.trainer"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable, Mapping, Tuple

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str], public: Iterable[str] = ()) -> Tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package with lazy names.

    Args:
      package: the package's ``__name__``.
      names: public name -> the module that defines it.
      public: further names ``dir()`` lists (``__all__``, submodule names).

    Returns:
      ``(__getattr__, __dir__)``; a resolved name is cached in the package's namespace, so
      the hook runs once per name.
    """
    listed = sorted(set(names) | set(public))

    def __getattr__(name):
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return listed

    return __getattr__, __dir__
