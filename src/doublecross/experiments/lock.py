"""An exclusive lock on a run directory: one process at a time runs or resumes a run.

The lock is ``<run>/.lock``, holding the owner's pid and host. Where ``fcntl`` exists (Linux,
macOS) it is an ``flock`` on that file, which the kernel releases when the owner dies however it
dies (``kill -9`` included), so a stale file never blocks. Elsewhere the file is created with
``O_EXCL`` and a leftover one is taken over when its pid is no longer running on this host.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from types import TracebackType

from ..config import ConfigError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"

try:  # pragma: no cover - platform dependent
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunLockedError(ConfigError):
    """Another live process holds the run directory."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _owner_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})


def _read_owner(path: str) -> dict:
    try:
        with open(path) as fh:
            data = json.loads(fh.read(4096) or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _busy(run_dir: str, owner: dict) -> RunLockedError:
    who = f"process {owner.get('pid', '?')}"
    if owner.get("host") and owner.get("host") != socket.gethostname():
        who += f" on {owner['host']}"
    since = f" since {owner['since']}" if owner.get("since") else ""
    return RunLockedError(
        f"run directory {run_dir} is in use by {who}{since}; wait for it to finish or stop it "
        "(two processes on one run would duplicate work)"
    )


class RunLock:
    """Context manager holding the lock of ``run_dir`` (which must exist).

    Raises:
        RunLockedError: on entry, when another live process holds it.
    """

    def __init__(self, run_dir: str, use_flock: bool | None = None) -> None:
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.use_flock = (fcntl is not None) if use_flock is None else use_flock
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        if self.use_flock:
            self._acquire_flock()
        else:
            self._acquire_pidfile()
        return self

    def _acquire_flock(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _busy(self.run_dir, _read_owner(self.path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, _owner_text().encode())
        self.fd = fd

    def _acquire_pidfile(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        for _ in range(2):
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                owner = _read_owner(self.path)
                pid = owner.get("pid")
                same_host = owner.get("host", socket.gethostname()) == socket.gethostname()
                if isinstance(pid, int) and same_host and pid_alive(pid) and pid != os.getpid():
                    raise _busy(self.run_dir, owner) from None
                if not same_host:
                    raise _busy(self.run_dir, owner) from None
                log.warning("removing the stale lock of %s (process %s is gone)", self.run_dir, pid)
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            os.write(fd, _owner_text().encode())
            self.fd = fd
            return
        raise _busy(self.run_dir, _read_owner(self.path))

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if not self.use_flock:
                os.unlink(self.path)
            else:
                os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)  # closing the descriptor drops the flock
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
