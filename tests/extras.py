"""Markers for tests that need an optional extra outside ``[all]``.

Such a test runs where the extra is installed and is skipped with the install command as
its reason where it is not (as on a machine where only the README's install ran).
"""

import importlib

import pytest


def installed(module: str) -> bool:
    """Whether ``module`` imports (a missing or hidden package gives False)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


HAVE_BM3D = installed("bm3d")

#: BM3D is free for non-commercial use only, so it is an extra of its own: pip install -e ".[bm3d]".
requires_bm3d = pytest.mark.skipif(
    not HAVE_BM3D, reason='needs the bm3d extra (non-commercial licence): pip install -e ".[bm3d]"'
)
