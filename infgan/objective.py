"""A metric as an objective: which way it improves, and its real-data floor.

A sweep's `mode` is `min` (lower is better) or `max`; inside infgan every comparison is made on
the *oriented* value, `sign(mode) * value`, for which lower is always better, and a value is
turned back with the same multiplication before it is shown. Every metric is shown beside its
floor, `<metric>_floor`: its value between two real sets (see `infgan.metrics.floors`).
No torch here: reports and comparisons import this without the models."""

from __future__ import annotations

import math
import re
from typing import Any

MODES = ("min", "max")
# The path-level metrics (`infgan.metrics`) a sweep may optimise, and which way each improves.
PATH_METRICS = {"val/disc": "min", "val/pred": "min", "val/pred_ratio": "min", "val/sig_mmd": "min"}
# The same by the computation that reports each (`eval.path_metrics` names one: what a sweep judges).
PATH_COMPUTATIONS = {
    "disc": ("val/disc", "val/disc_se"),
    "pred": ("val/pred", "val/pred_ratio"),
    "sig_mmd": ("val/sig_mmd",),
}
# What every evaluation reports (`infgan.metrics.marginal`): the score and its parts, also per
# channel as `val/<channel>/<part>` for data with several channels.
SCORE_METRICS = ("val/score", "val/marginal_w1", "val/marginal_ks", "val/cov_error")
_PER_CHANNEL = re.compile(r"val/[^/]+/(marginal_w1|marginal_ks|cov_error)")


def is_reported(metric: str) -> bool:
    """Whether training reports `metric` (so a sweep can optimise it)."""
    return metric in SCORE_METRICS or metric in PATH_METRICS or bool(_PER_CHANNEL.fullmatch(metric))


def computed_by(metric: str) -> str:
    """The short name (a key of `PATH_COMPUTATIONS`) of the computation that reports `metric`, a path-level metric."""
    return next(short for short, names in PATH_COMPUTATIONS.items() if metric in names)


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


def floor_name(metric: str) -> str:
    """`val/disc` -> `val/disc_floor`."""
    return f"{metric}_floor"


def with_floor(record: dict[str, Any], key: str) -> str:
    """`0.234 (floor 0.012)`: a metric's value beside its real-data floor (`-` if the record lacks it);
    with standard errors where the record has them: `0.33 ± 0.04 (floor 0.00 ± 0.03)`."""
    if key not in record:
        return "-"

    def shown(name: str, digits: str) -> str:
        se = record.get(f"{name}_se")
        return f"{record[name]:{digits}}" + (f" ± {se:.2f}" if isinstance(se, (int, float)) else "")

    floor = floor_name(key)
    if record.get(f"{key}_se") is not None:
        return shown(key, ".2f") + (f" (floor {shown(floor, '.2f')})" if floor in record else "")
    value = record.get(floor)
    return f"{record[key]:.3g}" + (f" (floor {value:.2g})" if value is not None else "")
