"""The path-level metrics together: `val/disc`, `val/pred` (with `val/pred_ratio`) and `val/sig_mmd`,
between held-out real paths and generated ones. Each sees whole paths, where `val/score` sees
each time point's marginal and a few covariances."""

from __future__ import annotations

import math

import torch

from infgan.metrics.discriminative import discriminative_with_error
from infgan.metrics.predictive import predictive_mae
from infgan.metrics.signature import sig_mmd
from infgan.objective import PATH_METRICS

DISC_REPEATS = 2  # classifiers behind a run's val/disc (and its standard error); floors take FLOOR_REPEATS


def path_metrics(real: torch.Tensor, fake: torch.Tensor, t_end: float, seed: int, trtr: float) -> dict[str, float]:
    """The path-level metrics of `fake` against `real` (both (n, time, 1 + channels), normalised).

    `trtr` is the predictive MAE of a model trained on real training paths (`val/pred_trtr`).
    """
    if not bool(torch.isfinite(fake).all()) or min(real.size(0), fake.size(0)) < 2:
        return dict.fromkeys([*PATH_METRICS, "val/disc_se"], math.nan)  # diverged, or too few paths to split or compare
    pred = predictive_mae(fake, real, t_end, seed)
    disc, disc_se = discriminative_with_error(real, fake, t_end, seed, DISC_REPEATS)
    return {
        "val/disc": disc,
        "val/disc_se": disc_se,
        "val/pred": pred,
        "val/pred_ratio": pred / trtr if trtr > 0 else math.nan,
        "val/sig_mmd": sig_mmd(real, fake, t_end, seed),
    }
