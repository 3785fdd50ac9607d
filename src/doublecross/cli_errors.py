"""Messages of the command line for interruptions and OS errors (one line each, never a traceback)."""

from __future__ import annotations

import argparse
import os
import shlex


def error_text(e: BaseException) -> str:
    """``OSError`` as ``<what failed>: <path>`` (``[Errno 13] ...`` made readable); others as ``str(e)``."""
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror}{where}"
    return str(e) or type(e).__name__


def resume_command(argv: list[str], run_dir: str) -> str:
    """``argv`` with ``--resume --out RUN_DIR`` (any earlier ``--out``/``--resume`` replaced)."""
    kept: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--out":
            skip = True
            continue
        if a.startswith("--out=") or a == "--resume":
            continue
        kept.append(a)
    return "doublecross " + " ".join(shlex.quote(a) for a in kept + ["--resume", "--out", run_dir])


def interrupted_message(args: argparse.Namespace, argv: list[str]) -> str:
    """The one-line Ctrl-C message: for an attack whose run directory holds work, the exact resume command."""
    run_dir = getattr(args, "run_dir", None)
    if run_dir and os.path.isfile(os.path.join(run_dir, "config.yaml")):
        return (
            f"doublecross: interrupted; finished units are saved in {run_dir}. "
            f"Continue with: {resume_command(argv, run_dir)}"
        )
    if run_dir:
        return "doublecross: interrupted before any unit finished; nothing was kept"
    return "doublecross: interrupted"
