"""Output paths of a report, confined to the run directory.

A run directory may come from someone else (a shared or downloaded run): the names stored in its
``results.sqlite`` (interpreters, units) become file names, and its files may be symlinks.
:func:`output_path` turns a stored name into a plain file name (``../../x`` -> ``.._.._x`` is not
possible: separators and leading dots are replaced) and removes a symlink at the target, so every
file a report writes is a regular file inside the run directory.
"""

from __future__ import annotations

import logging
import os
import re

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=-]")


def safe_name(name: str, max_len: int = 100) -> str:
    """``name`` with anything but letters, digits and ``_.+=-`` replaced by ``_``, no leading dot."""
    s = _UNSAFE.sub("_", name)[:max_len].lstrip(".")
    return s or "_"


def output_path(run_dir: str, file_name: str) -> str:
    """``run_dir/file_name`` for writing: a single safe component, never a symlink.

    Raises:
        ValueError: ``file_name`` is not a plain file name (the caller passed a path).
    """
    if file_name != safe_name(file_name):
        raise ValueError(f"report output {file_name!r} is not a plain file name")
    path = os.path.join(run_dir, file_name)
    if os.path.islink(path):
        log.warning("replacing the symlink %s -> %s by a regular file", path, os.readlink(path))
        os.unlink(path)
    return path
