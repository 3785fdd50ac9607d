"""A generic name -> factory registry (timm's ``register_model`` / ``create_model`` pattern).

Registries drive the CLI choices, configuration validation and the contract tests: a new model,
dataset or interpreter is one decorated factory and is exposed and tested automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory with its one-line description."""

    name: str
    factory: Callable[..., T]
    summary: str


class Registry(Generic[T]):
    """Maps names to factories.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("tiny")
        ... def tiny(**kw): ...
        >>> MODELS.create("tiny")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, summary: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name`` (error on a duplicate name)."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            doc = summary if summary is not None else (factory.__doc__ or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, factory, doc)
            return factory

        return deco

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        return list(self._entries.values())

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise a ``ValueError`` listing the allowed names."""
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return name

    def get(self, name: str) -> Callable[..., T]:
        return self._entries[self.check(name)].factory

    def create(self, name: str, **kwargs: Any) -> T:
        """Build ``name`` with ``kwargs``; ``None`` values are dropped so factory defaults apply."""
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
