"""Progress bars of the attack job: one bar over units, one over the steps of the running unit.

The outer bar counts finished units (a resumed run starts at the units already stored) and
advances only when a unit is stored, so it never shows 100 % while the last unit runs; the
inner bar counts the running unit's optimisation steps (fed by :func:`doublecross.progress.step`)
with its rate and ETA, so the display moves during a 40-minute MASK unit. Both are off with
``show=False`` (``--quiet``, or stderr not a terminal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tqdm import tqdm

from ..progress import step_reporter


class JobProgress:
    """Outer (units) and inner (steps) bars; ``unit(desc, steps)`` wraps one unit's work."""

    def __init__(self, total_units: int, done_units: int, show: bool, file: IO[str] | None = None) -> None:
        self.show, self.file = show, file
        self.outer = tqdm(
            total=total_units,
            initial=done_units,
            desc="attack",
            unit="unit",
            disable=not show,
            file=file,

        )

    @contextmanager
    def unit(self, desc: str, steps: int) -> Iterator[tqdm]:
        """Show ``desc`` with a step bar of ``steps`` while the block runs; count the unit when it succeeds."""
        self.outer.set_postfix_str(desc)
        inner = tqdm(
            total=steps,
            desc=f"  {desc}",
            unit="step",
            leave=False,
            disable=not self.show,
            file=self.file,
            position=1,

        )
        try:
            with step_reporter(inner.update if self.show else None):
                yield inner
        finally:
            inner.close()
        self.outer.update(1)

    def stored(self, desc: str) -> None:
        """Count a unit computed elsewhere (a Ray task) as it is stored."""
        self.outer.set_postfix_str(desc)
        self.outer.update(1)

    def close(self) -> None:
        self.outer.close()
