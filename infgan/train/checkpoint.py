"""Checkpoints of a run: `checkpoints/step_000500.pt` files written atomically by a single process
(the newest `keep` kept), or `checkpoints/step_000500/state.pt` directories persisted by Ray Train."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch

from infgan.atomic import atomic_write
from infgan.config import ConfigError
from infgan.text import error_line

_NAME = re.compile(r"^step_(\d+)(\.pt)?$")
RAY_STATE_FILE = "state.pt"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` to `path` so that a reader never sees a partial file."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory` (ours and Ray Train's), oldest step first."""
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m and m.group(2) and p.is_file():
            found.append((int(m.group(1)), p))
        elif m and not m.group(2) and (p / RAY_STATE_FILE).is_file():
            found.append((int(m.group(1)), p / RAY_STATE_FILE))
    return [p for _, p in sorted(found)]


def step_of(path: Path) -> int:
    """The step of a checkpoint `checkpoints` found: from `step_NNNNNN.pt`, or from the directory
    of Ray Train's `step_NNNNNN/state.pt`."""
    m = _NAME.match(path.name) or _NAME.match(path.parent.name)
    if m is None:
        raise ValueError(f"{path} is not a checkpoint of infgan's naming")
    return int(m.group(1))


def save_checkpoint(directory: Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write the checkpoint of `step` and delete all but the newest `keep`."""
    path = directory / f"step_{step:06d}.pt"
    atomic_torch_save(payload, path)
    ours = [p for p in checkpoints(directory) if p.parent == directory]  # Ray prunes its own
    for old in ours[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint in `directory`, or None."""
    found = checkpoints(directory)
    return found[-1] if found else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU."""
    # weights_only=False: our own files hold RNG states and plain dicts besides tensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def load_intact(path: Path) -> dict[str, Any]:
    """Read a checkpoint; a damaged file (truncated, emptied, not a checkpoint) is a one-line error."""
    try:
        payload = load_checkpoint(path)
    except Exception as e:  # torch.load raises many kinds for a damaged file (EOF, zip, unpickling)
        raise ConfigError(f"{path} is damaged ({error_line(e)})") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"{path} is damaged (not an infgan checkpoint)")
    return payload


def load_latest_intact(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, saying in one line each which damaged ones were skipped;
    None when there is none at all; a one-line error when every one is damaged."""
    found = checkpoints(directory)
    for path in reversed(found):
        try:
            return path, load_intact(path)
        except ConfigError as e:
            print(f"infgan: {e}; trying the one before", file=sys.stderr)
    if found:
        raise ConfigError(f"{directory}: every checkpoint is damaged; start again without --resume")
    return None
