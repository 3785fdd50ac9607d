"""The defences' result store: one SQLite file, one committed row per finished step (resumable).

A step is ``(experiment, key)``, e.g. ``("squeeze", "scores")``; its JSON record and arrays are
written in one transaction, so a killed command redoes only the step it was in.
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from ..sqlite_store import SQLiteStore, decode_array, encode_array

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (experiment TEXT, key TEXT, data TEXT, seconds REAL, finished REAL,
    PRIMARY KEY (experiment, key));
CREATE TABLE IF NOT EXISTS step_arrays (experiment TEXT, key TEXT, name TEXT, data BLOB,
    PRIMARY KEY (experiment, key, name));
"""


class DefenceStore(SQLiteStore):
    """SQLite-backed store of finished defence steps (see module doc)."""

    SCHEMA = SCHEMA

    def done(self, experiment: str, key: str) -> bool:
        q = "SELECT 1 FROM steps WHERE experiment=? AND key=?"
        return self.db.execute(q, (experiment, key)).fetchone() is not None

    def put(
        self,
        experiment: str,
        key: str,
        data: dict[str, Any],
        seconds: float = 0.0,
        arrays: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Store a finished step atomically (replacing an earlier record of the same step)."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?)",
                (experiment, key, json.dumps(data), seconds, time.time()),
            )
            for name, t in (arrays or {}).items():
                self.db.execute(
                    "INSERT OR REPLACE INTO step_arrays VALUES (?, ?, ?, ?)", (experiment, key, name, encode_array(t))
                )

    def get(self, experiment: str, key: str) -> dict[str, Any]:
        row = self.db.execute("SELECT data FROM steps WHERE experiment=? AND key=?", (experiment, key)).fetchone()
        if row is None:
            raise KeyError(f"no stored step {experiment}/{key}")
        return json.loads(row[0])

    def array(self, experiment: str, key: str, name: str) -> torch.Tensor:
        q = "SELECT data FROM step_arrays WHERE experiment=? AND key=? AND name=?"
        row = self.db.execute(q, (experiment, key, name)).fetchone()
        if row is None:
            raise KeyError(f"no stored array {experiment}/{key}/{name}")
        return decode_array(row[0])

    def keys(self, experiment: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT key FROM steps WHERE experiment=? ORDER BY key", (experiment,))]

    def seconds(self, experiment: str, prefix: str = "") -> float:
        """Total seconds of the experiment's steps whose key starts with ``prefix``."""
        q = "SELECT SUM(seconds) FROM steps WHERE experiment=? AND substr(key, 1, ?)=?"
        row = self.db.execute(q, (experiment, len(prefix), prefix)).fetchone()
        return float(row[0] or 0.0)
