"""A name -> class registry, shared by the operator and noise-model registries."""

from __future__ import annotations

import inspect
from typing import Callable, Dict, Iterable, Tuple

from tfinverse.errors import unknown_name

__all__ = ["Registry"]


class Registry:
    """Maps names to classes and builds instances by name.

    Args:
      kind: what is registered, for messages (``"operator"``, ``"noise model"``).
      optional_params: keyword arguments that :meth:`build` drops for classes whose
        constructor does not take them (so one ``seed`` can be passed to any operator).
    """

    def __init__(self, kind: str, optional_params: Iterable[str] = ()):
        self.kind = kind
        self.optional_params = tuple(optional_params)
        self._classes: Dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: registers ``cls`` under ``name`` and sets ``cls.name``.

        Raises:
          ValueError: if ``name`` is already registered to another class.
        """

        def decorator(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} name {name!r} is already registered to {self._classes[name]}")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorator

    def names(self) -> Tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._classes))

    def build(self, name: str, **params):
        """An instance of the class registered under ``name``.

        Raises:
          UnknownNameError: (a ``KeyError`` and ``ValueError``) for an unknown name, or a
            keyword the class does not take; the message lists the valid ones.
        """
        cls = self.get_class(name)
        accepted = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
        for key in self.optional_params:
            if key in params and key not in accepted and not takes_any:
                del params[key]
        valid = self.parameters(name)
        if valid is not None:
            for key in params:
                if key not in valid:
                    raise unknown_name("parameter", key, valid, where=f"{self.kind} {name}")
        return cls(**params)

    def parameters(self, name: str):
        """The keyword parameters the class registered under ``name`` accepts.

        A constructor that passes ``**kwargs`` on to its base class accepts the base's
        parameters too; the classes of the MRO are followed until one takes no ``**kwargs``.

        Returns:
          A sorted tuple of names, or None if some constructor takes arbitrary keywords.
        """
        names = set()
        for klass in self.get_class(name).__mro__:
            if "__init__" not in vars(klass):
                continue
            if klass is object:
                return None
            params = inspect.signature(klass.__init__).parameters
            names.update(
                k for k, p in params.items()
                if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
            if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
                return tuple(sorted(names))
        return None

    def get_class(self, name: str) -> type:
        """The class registered under ``name``.

        Raises:
          UnknownNameError: for an unknown name (the message lists the known ones).
        """
        try:
            return self._classes[name]
        except KeyError:
            raise unknown_name(self.kind, name, self.names()) from None
