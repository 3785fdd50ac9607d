"""The result store: one SQLite file per run, written transactionally as each unit finishes.

A *unit* is one (batch, attack) pair. Its per-sample rows and images are committed together
with its ``units`` row, so a killed run resumes after the last finished unit and never redoes or
loses one. Reports are derived from the store and can be regenerated at any time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch

from ..sqlite_store import SQLiteStore, decode_array, encode_array

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (batch INTEGER, unit TEXT, seconds REAL, finished REAL, PRIMARY KEY (batch, unit));
CREATE TABLE IF NOT EXISTS samples (batch INTEGER, idx INTEGER, unit TEXT, interpreter TEXT, method TEXT,
    metrics TEXT, PRIMARY KEY (batch, idx, unit, interpreter, method));
CREATE TABLE IF NOT EXISTS arrays (batch INTEGER, unit TEXT, name TEXT, data BLOB, PRIMARY KEY (batch, unit, name));
CREATE TABLE IF NOT EXISTS unit_info (batch INTEGER, unit TEXT, info TEXT, PRIMARY KEY (batch, unit));
"""


class ResultStore(SQLiteStore):
    """SQLite-backed store of finished units (see module doc)."""

    SCHEMA = SCHEMA

    def done(self, batch: int, unit: str) -> bool:
        return self.db.execute("SELECT 1 FROM units WHERE batch=? AND unit=?", (batch, unit)).fetchone() is not None

    def write_unit(
        self,
        batch: int,
        unit: str,
        seconds: float,
        rows: list[dict[str, Any]],
        arrays: dict[str, torch.Tensor],
        info: dict[str, Any] | None = None,
    ) -> None:
        """Store a finished unit atomically: its sample rows, arrays, completion mark and ``info`` (threads...)."""
        import json

        with self.db:  # one transaction
            for r in rows:
                self.db.execute(
                    "INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                    (batch, r["idx"], unit, r["interpreter"], r["method"], json.dumps(r["metrics"])),
                )
            for name, t in arrays.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO arrays VALUES (?, ?, ?, ?)", (batch, unit, name, encode_array(t))
                )
            if info is not None:
                self.db.execute("INSERT OR REPLACE INTO unit_info VALUES (?, ?, ?)", (batch, unit, json.dumps(info)))
            self.db.execute("INSERT INTO units VALUES (?, ?, ?, ?)", (batch, unit, seconds, time.time()))

    def array(self, batch: int, unit: str, name: str) -> torch.Tensor:
        row = self.db.execute(
            "SELECT data FROM arrays WHERE batch=? AND unit=? AND name=?", (batch, unit, name)
        ).fetchone()
        if row is None:
            raise KeyError(f"no array {name!r} for batch {batch} unit {unit!r}")
        return decode_array(row[0])

    def unit_arrays(self, batch: int, unit: str) -> dict[str, torch.Tensor]:
        """Every array of a finished unit, by name (e.g. a baseline's ``x``, ``magnitude``, ``size_*``)."""
        rows = self.db.execute("SELECT name, data FROM arrays WHERE batch=? AND unit=?", (batch, unit)).fetchall()
        return {name: decode_array(data) for name, data in rows}

    def has_array(self, batch: int, unit: str, name: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM arrays WHERE batch=? AND unit=? AND name=?", (batch, unit, name)).fetchone()
            is not None
        )

    def samples(self) -> Iterator[dict[str, Any]]:
        import json

        for batch, idx, unit, interp, method, metrics in self.db.execute(
            "SELECT batch, idx, unit, interpreter, method, metrics FROM samples ORDER BY batch, idx"
        ):
            yield {
                "batch": batch,
                "idx": idx,
                "unit": unit,
                "interpreter": interp,
                "method": method,
                **json.loads(metrics),
            }

    def finished_units(self) -> set[tuple[int, str]]:
        """Every finished ``(batch, unit)``."""
        return {(int(b), str(u)) for b, u in self.db.execute("SELECT batch, unit FROM units")}

    def unit_infos(self) -> dict[tuple[int, str], dict[str, Any]]:
        """(batch, unit) -> the info stored with it (e.g. ``{"threads": 1}``); units of older runs have none."""
        import json

        return {(b, u): json.loads(i) for b, u, i in self.db.execute("SELECT batch, unit, info FROM unit_info")}

    def count_units(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM units").fetchone()[0])

    def unit_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for unit, s in self.db.execute("SELECT unit, SUM(seconds) FROM units GROUP BY unit"):
            out[unit] = s
        return out
