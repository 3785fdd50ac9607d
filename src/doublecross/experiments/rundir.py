"""The life of a run directory: create or reopen it, lock it, check it on resume, clean up a failed start.

- ``--out`` must be a directory we can write; a file, or a path we may not create, is a one-line
  :class:`ConfigError`.
- A non-empty directory is only continued with ``resume``; then its ``config.yaml`` (the job's
  fields) and ``provenance.json`` (preset contents, hashes of preset, weights and images) must
  match the current ones, and its finished units' thread count is compared (a warning).
- The directory is locked (:class:`~doublecross.experiments.lock.RunLock`) for the whole run.
- A *fresh* run that fails or is interrupted before its first unit is stored leaves nothing
  behind (so the next attempt is not asked for ``--resume``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from ..config import ConfigError, to_dict
from ..safe_yaml import YamlError, load_yaml_file
from .job import JobConfig
from .lock import LOCK_NAME, RunLock
from .provenance import FILE_NAME as PROVENANCE
from .provenance import check_provenance, write_provenance

log = logging.getLogger(__name__)

CONFIG = "config.yaml"
RESULTS = "results.sqlite"


def check_out_dir(out: str) -> bool:
    """Whether ``out`` is an existing non-empty directory; refuse a file or an unreadable path."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file, not a directory; choose a directory for the run")
    if not os.path.isdir(out):
        return False
    try:
        return bool(os.listdir(out))
    except OSError as e:
        raise ConfigError(f"cannot read run directory {out}: {e.strerror}") from None


def _check_config(out: str, cfg: JobConfig) -> None:
    path = os.path.join(out, CONFIG)
    if not os.path.isfile(path):
        raise FileExistsError(f"{out} is not a doublecross run directory (no {CONFIG})")
    try:
        stored = load_yaml_file(path)
    except YamlError as e:
        raise ConfigError(f"cannot resume {out}: {e}") from None
    if not isinstance(stored, dict):
        raise ConfigError(f"cannot resume {out}: {CONFIG} is not a mapping")
    # fields added since the run: defaults; runs before the class-balanced draw used the first-N rule
    saved = {**to_dict(JobConfig()), "selection": "first", **stored}
    now = to_dict(cfg)
    if saved != now:
        diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in diff[:4])
        raise ConfigError(f"cannot resume {out}: the configuration differs in {diff} ({detail})")


def finished_units(out: str) -> int:
    """How many units the run's store holds (0 when there is no store yet)."""
    path = os.path.join(out, RESULTS)
    if not os.path.isfile(path):
        return 0
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM units").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def _remove_failed_start(out: str, created_dir: bool) -> None:
    for name in (CONFIG, PROVENANCE, RESULTS, RESULTS + "-journal", LOCK_NAME):
        try:
            os.unlink(os.path.join(out, name))
        except FileNotFoundError:
            pass
        except OSError as e:  # pragma: no cover - permissions changed under us
            log.warning("could not remove %s: %s", os.path.join(out, name), e)
    if created_dir:
        try:
            os.rmdir(out)
        except OSError:
            pass


def check_threads(unit_threads: list[int], current: int, out: str) -> None:
    """Warn when a resumed run's finished units used another thread count than now."""
    other = sorted(set(unit_threads) - {current})
    if other:
        log.warning(
            "resuming %s with %d thread(s), but %d finished unit(s) ran with %s: MASK/RTS attack images "
            "change with the thread count (up to 13/255), so this run will mix both; set OMP_NUM_THREADS=%d "
            "to match",
            out,
            current,
            sum(1 for t in unit_threads if t != current),
            "/".join(map(str, other)),
            other[0],
        )


@contextmanager
def open_run_dir(out: str, cfg: JobConfig, resume: bool, provenance: dict[str, Any]) -> Iterator[None]:
    """Create or reopen ``out`` for ``cfg`` and hold its lock inside the block (see module doc).

    Raises:
        ConfigError: ``out`` is a file or cannot be created/written, the stored config or
            provenance differs, or another process holds the run (``RunLockedError``).
        FileExistsError: ``out`` is a non-empty directory and ``resume`` is false.
    """
    existing = check_out_dir(out)
    if existing and not resume:
        raise FileExistsError(f"run directory {out} exists; pass --resume to continue it or choose another --out")
    if existing and not os.path.isfile(os.path.join(out, CONFIG)):
        raise FileExistsError(f"{out} is not a doublecross run directory (no {CONFIG})")
    created_dir = False
    if not existing:
        created_dir = not os.path.isdir(out)
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create run directory {out}: {e.strerror or e}") from None
    try:
        lock = RunLock(out).acquire()
    except ConfigError:
        raise
    except OSError as e:
        if created_dir:
            _remove_failed_start(out, True)
        raise ConfigError(f"cannot write to run directory {out}: {e.strerror or e}") from None
    fresh = not existing
    try:
        if existing:
            _check_config(out, cfg)
            check_provenance(out, provenance)
        else:
            try:
                with open(os.path.join(out, CONFIG), "w") as fh:
                    yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
                write_provenance(out, provenance)
            except OSError as e:
                raise ConfigError(f"cannot write to run directory {out}: {e.strerror or e}") from None
        yield
    except BaseException:
        if fresh and finished_units(out) == 0:
            lock.release()
            _remove_failed_start(out, created_dir)
        raise
    finally:
        lock.release()
