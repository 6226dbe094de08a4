"""Which way a metric improves. A sweep's `mode` is `min` (lower is better) or `max`; inside
infgan every comparison is made on the *oriented* value, `sign(mode) * value`, for which lower is
always better, and a value is turned back with the same multiplication before it is shown."""

from __future__ import annotations

import math

MODES = ("min", "max")


def sign(mode: str) -> float:
    """+1 for `min`, -1 for `max`: multiplying by it orients a value (and turns it back)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return 1.0 if mode == "min" else -1.0


def worst(mode: str) -> float:
    """The worst possible value of a metric optimised in `mode` (not oriented)."""
    return sign(mode) * math.inf


def goal(mode: str) -> str:
    """W&B's name for `mode`: minimize or maximize."""
    return "minimize" if sign(mode) > 0 else "maximize"
