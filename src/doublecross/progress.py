"""Step-level progress: long loops report each step to whoever listens (nobody by default).

Attacks call :func:`step` once per optimisation step; a caller that wants a progress bar wraps
the work in :func:`step_reporter` with a callback (e.g. ``tqdm.update``). Without a reporter,
:func:`step` costs one context-variable lookup. Library code never prints; the bars live in the
caller (the CLI's job runner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_REPORTER: ContextVar[Callable[[int], object] | None] = ContextVar("doublecross_step_reporter", default=None)


def step(n: int = 1) -> None:
    """Report ``n`` finished steps to the active reporter, if any."""
    cb = _REPORTER.get()
    if cb is not None:
        cb(n)


@contextmanager
def step_reporter(callback: Callable[[int], object] | None) -> Iterator[None]:
    """Send the :func:`step` calls made inside the block to ``callback(n)`` (``None``: nobody)."""
    token = _REPORTER.set(callback)
    try:
        yield
    finally:
        _REPORTER.reset(token)
