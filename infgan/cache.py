"""The machine's cache of things infgan computes once and reads back: the real-data floors of a data
config, and generated benchmark data that take a physics engine to make. It lives under
`INFGAN_CACHE_DIR` (default `~/.cache/infgan`), is shared by every run and sweep trial on the
machine, and is only ever a shortcut: a missing, unreadable or read-only cache means the thing is
computed again, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from infgan.atomic import atomic_write, write_json_atomic


def cache_root() -> Path:
    """INFGAN_CACHE_DIR, else ~/.cache/infgan."""
    return Path(os.environ.get("INFGAN_CACHE_DIR") or Path.home() / ".cache" / "infgan")


def entry(kind: str, key: dict[str, Any], suffix: str) -> Path:
    """The file of `key` (a JSON-able dict) among the cache's `kind` entries."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_root() / kind / f"{digest}{suffix}"


def cached_json(kind: str, key: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`compute()`'s dict, kept under `key` and read back next time."""
    path = entry(kind, key, ".json")
    try:
        stored = json.loads(path.read_text())
        return dict(stored["value"] if "value" in stored else stored["floors"])  # earlier files name it "floors"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = compute()
    with contextlib.suppress(OSError):
        write_json_atomic(path, {"key": key, "value": found})
    return found


def cached_array(kind: str, key: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()`'s array, kept under `key` (as .npy, the key beside it) and read back next time."""
    path = entry(kind, key, ".npy")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    found = compute()
    buf = io.BytesIO()
    np.save(buf, found, allow_pickle=False)
    with contextlib.suppress(OSError):
        atomic_write(path, lambda fh: fh.write(buf.getvalue()))
        write_json_atomic(path.with_suffix(".json"), {"key": key})
    return found
