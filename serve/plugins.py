"""Swappable parts by name: the one lookup behind every ``make_<part>`` factory.

The convention of the code base: the module that defines a part's interface holds a module-level dict
``<PART>_REGISTRY: dict[str, Callable[..., Interface]]`` and one factory ``make_<part>(name, **options)``, which
calls :func:`make` so that an unknown name fails the same way everywhere, listing the known names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def make(registry: Mapping[str, Callable[..., T]], part: str, name: str, **options: Any) -> T:
    """Build the ``part`` registered as ``name`` in ``registry`` with ``options``.

    Parameters
    ----------
    registry
        Name -> factory (a class or a function) of the part.
    part
        What the part is called in an error message (``camera source``, ``detector``, ...).
    name
        The registered name.
    **options
        Keyword arguments of the factory.

    Raises
    ------
    ValueError
        When ``name`` is not registered; the message lists the known names.
    """
    try:
        factory = registry[name]
    except KeyError:
        raise ValueError(f"unknown {part} {name!r}; known: {', '.join(sorted(registry))}") from None
    return factory(**options)
