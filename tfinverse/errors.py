"""The errors that mean "what you gave is wrong", as opposed to a bug.

Scripts print these as one line (``error: <message>``) and exit with status 2; anything
else keeps its traceback. Library code raises them where user input enters: a flag value,
a file or folder, a dataset name, an operator or task parameter. Both are subclasses of
``ValueError`` (and :class:`UnknownNameError` of ``KeyError``), so code that caught the
built-in errors before still catches them.

This module imports nothing heavy: scripts use it before TensorFlow is loaded.
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["InputError", "UnknownNameError", "MissingPathError", "unknown_name"]


class InputError(ValueError):
    """Bad user input: the message says what, where (flag, file, parameter) and what to do."""


class UnknownNameError(InputError, KeyError):
    """A name (dataset, operator, task, parameter) that is not one of the known ones.

    Its ``str`` is the plain message (``KeyError`` would quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingPathError(InputError, FileNotFoundError):
    """A file or folder the user named that does not exist (also a ``FileNotFoundError``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "", where: str = "") -> UnknownNameError:
    """An :class:`UnknownNameError` listing the known names and the closest match.

    Args:
      kind: what the name is, e.g. ``"dataset"`` or ``"parameter of super_resolution"``.
      name: the name given.
      known: the valid names.
      hint: optional extra sentence (what else the value may be).
      where: optional prefix naming the flag or spec the name came from.

    Returns:
      The error, to be raised by the caller.
    """
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=1)
    message = f"{where}: " if where else ""
    message += f"unknown {kind} {name!r}"
    if close:
        message += f" (did you mean {close[0]!r}?)"
    message += f"; valid: {', '.join(known) if known else 'none'}"
    if hint:
        message += f". {hint}"
    return UnknownNameError(message)
