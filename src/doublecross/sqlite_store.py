"""What the SQLite result stores share: the connection's life cycle and the array encoding.

:class:`SQLiteStore` opens ``path`` (creating the subclass's ``SCHEMA`` tables if missing) and closes it,
also as a context manager. Arrays are stored as ``.npy`` bytes (``allow_pickle=False`` both ways).
"""

from __future__ import annotations

import io
import sqlite3
from typing import TypeVar

import numpy as np
import torch

S = TypeVar("S", bound="SQLiteStore")


def encode_array(t: torch.Tensor) -> bytes:
    """``t`` (any shape) as ``.npy`` bytes, detached and on the CPU."""
    buf = io.BytesIO()
    np.save(buf, t.detach().cpu().numpy(), allow_pickle=False)
    return buf.getvalue()


def decode_array(b: bytes) -> torch.Tensor:
    """The tensor :func:`encode_array` stored (same shape and dtype, on the CPU)."""
    return torch.from_numpy(np.load(io.BytesIO(b), allow_pickle=False))


class SQLiteStore:
    """One SQLite file with the subclass's ``SCHEMA`` (``CREATE TABLE IF NOT EXISTS ...`` statements)."""

    SCHEMA = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.executescript(self.SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
