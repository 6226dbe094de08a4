"""The path-level metrics together: `val/disc`, `val/pred` (with `val/pred_ratio`) and `val/sig_mmd`,
between held-out real paths and generated ones. Each sees whole paths, where `val/score` sees
each time point's marginal and a few covariances."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import torch

from infgan.metrics.discriminative import accuracy, with_error
from infgan.metrics.predictive import predictive_mae
from infgan.metrics.sequence import side_by_side
from infgan.metrics.signature import sig_mmd
from infgan.objective import PATH_COMPUTATIONS

DISC_REPEATS = 2  # classifiers behind a run's val/disc (and its standard error); floors take FLOOR_REPEATS


def path_metrics(
    real: torch.Tensor,
    fake: torch.Tensor,
    t_end: float,
    seed: int,
    trtr: float,
    threads: int = 1,
    only: str | None = None,
) -> dict[str, float]:
    """The path-level metrics of `fake` against `real` (both (n, time, 1 + channels), normalised);
    with `only` (a key of `PATH_COMPUTATIONS`) that metric alone, to the same value.

    `trtr` is the predictive MAE of a model trained on real training paths (`val/pred_trtr`). With
    `threads` above 1 the metrics (val/pred's model, val/sig_mmd, val/disc's classifiers) run side by
    side, to the same values.
    """
    names = PATH_COMPUTATIONS[only] if only else sum(PATH_COMPUTATIONS.values(), ())
    if not bool(torch.isfinite(fake).all()) or min(real.size(0), fake.size(0)) < 2:
        return dict.fromkeys(names, math.nan)  # diverged, or too few paths to split or compare
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("pred", functools.partial(predictive_mae, fake, real, t_end, seed)),
        ("sig_mmd", functools.partial(sig_mmd, real, fake, t_end, seed)),
        *[("disc", functools.partial(accuracy, real, fake, t_end, seed + k)) for k in range(DISC_REPEATS)],
    ]
    calls = [(name, call) for name, call in calls if only in (None, name)]
    got: dict[str, list[Any]] = {}
    for (name, _), value in zip(calls, side_by_side([call for _, call in calls], threads), strict=True):
        got.setdefault(name, []).append(value)
    out: dict[str, float] = {}
    if "disc" in got:
        out["val/disc"], out["val/disc_se"] = with_error(got["disc"])
    if "pred" in got:
        out["val/pred"] = got["pred"][0]
        out["val/pred_ratio"] = out["val/pred"] / trtr if trtr > 0 else math.nan
    if "sig_mmd" in got:
        out["val/sig_mmd"] = got["sig_mmd"][0]
    return {k: out[k] for k in names}


def metric_threads(setting: int) -> int:
    """`eval.threads` as a count: a positive setting as it is, 0 one per core this process may use, up to the
    metrics' count (val/pred's model, val/sig_mmd, val/disc's classifiers)."""
    if setting > 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(2 + DISC_REPEATS, cores)
