"""Names from a registry resolved on first use, for argparse ``choices`` that must not import torch early."""

from __future__ import annotations

import importlib
from collections.abc import Iterator


class LazyChoices:
    """A read-only sequence of names taken from ``module.attribute`` (a registry or a tuple) when first needed.

    argparse only tests membership (``in``) when parsing and iterates when it prints an error or
    a help text naming ``%(choices)s``; give the argument a ``metavar`` so that building the
    parser does not iterate it.

    Example:
        >>> names = LazyChoices("doublecross.data", "DATASETS")   # nothing imported yet
        >>> "scenes" in names                                     # imports doublecross.data now
        True
    """

    def __init__(self, module: str, attribute: str) -> None:
        self.module, self.attribute = module, attribute
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = [str(n) for n in getattr(importlib.import_module(self.module), self.attribute)]
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, i: int) -> str:
        return self.names()[i]

    def __repr__(self) -> str:
        return f"LazyChoices({self.module}.{self.attribute})"
