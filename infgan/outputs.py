"""Where a command may write: output paths checked before any work, one line when they cannot be used."""

from __future__ import annotations

import os
from pathlib import Path

from infgan.config import ConfigError


def check_output(path: Path, kind: str, option: str) -> Path:
    """Refuse an output path that cannot be written: `kind` is "dir" (created if missing) or "file".

    Checked: the path itself (a file where a directory is wanted, or the reverse), every parent
    that exists (a file cannot hold anything), and write permission on the nearest existing one.
    """
    if path.exists():
        if kind == "dir" and not path.is_dir():
            raise ConfigError(f"{option} {path}: is a file; give a directory")
        if kind == "file" and path.is_dir():
            raise ConfigError(f"{option} {path}: is a directory; give a file name")
    parent = path if path.is_dir() else path.parent  # an existing file is replaced: its directory matters
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{option} {path}: {parent} is a file, so nothing can be written under it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {parent} is not writable")
    return path
