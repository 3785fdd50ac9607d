"""Tables of the defence experiments in ``doublecross reproduce`` (``tables: [squeeze, lid, ensemble, aid]``).

They reuse the sections of :mod:`doublecross.defences.report` (same numbers, notes and [our decision]
labels as ``doublecross defend report``), one table per model, read from ``<out>/<model>/defences.sqlite``.
A step not computed yet shows as a one-row table saying so (``--resume`` continues it).
"""

from __future__ import annotations

import os
from typing import Any

from .paper_tables import Table
from .reproduce_context import Context, _register
from .reproduce_tables import TABLES

TITLES = {
    "squeeze": "Detection: feature squeezing",
    "lid": "Detection: LID",
    "ensemble": "Countermeasure: ensemble interpretation",
    "aid": "Countermeasure: AID for RTS",
}


def _tables(ctx: Context, exp: Any, which: str) -> list[Table]:
    from ..defences.report import sections
    from ..defences.store import DefenceStore
    from ..experiments.defence_passes import defence_store

    out = []
    for model in ctx.models:
        path = defence_store(ctx.out, model)
        secs = []
        if os.path.isfile(path):
            with DefenceStore(path) as store:
                secs = [s for s in sections(store) if s[0].startswith(TITLES[which])]
        source = (
            f"Input: the successful inputs of the shared linf-benign run ({model}/linf-benign); "
            f"results stored in {os.path.relpath(path, ctx.out)}."
        )
        if not secs:
            out.append(
                Table(
                    f"{exp.name}_{which}_{model}".replace(os.sep, "_"),
                    f"{TITLES[which]} [{model}]",
                    ["status"],
                    [["not computed yet (run this experiment; --resume continues it)"]],
                    [source],
                )
            )
        for i, (title, notes, header, rows) in enumerate(secs):
            suffix = f"_{i}" if i else ""
            out.append(
                Table(
                    f"{exp.name}_{which}_{model}{suffix}".replace(os.sep, "_"),
                    f"{title} [{model}]",
                    header,
                    rows,
                    [n.replace("**", "") for n in notes] + [source],
                )
            )
    return out


for _name in TITLES:
    _register(TABLES, _name)(lambda ctx, exp, _w=_name: _tables(ctx, exp, _w))
