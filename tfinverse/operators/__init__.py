"""Forward operators (the ``A`` of ``y = A x + e``) and noise models.

``available()`` lists the registered linear operators and ``get(name, **params)`` builds
one; ``available_noise()`` and ``get_noise(name, **params)`` do the same for noise models.
Importing this package registers every family below.
"""

from tfinverse.operators.base import LinearOperator, available, conjugate_gradient, get, register
from tfinverse.operators.identity import Identity

__all__ = [
    "LinearOperator",
    "available",
    "conjugate_gradient",
    "get",
    "register",
    "Identity",
]
