"""Files written atomically: a reader (another process, a resumed run, a report) sees the old
file or the new one, never a part of one. Every file infgan rewrites in place goes through here."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write` on a temporary file beside `path`, flush it to disk, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666, not mkstemp (0o600): the file gets the permissions the umask gives any
    # other file, so a run directory on shared storage stays readable by the user's group.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) atomically."""
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
