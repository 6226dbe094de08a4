"""Real-data floors: every metric computed between two disjoint *real* sets of the held-out size.

A generator cannot be told apart from data by a metric below its floor, so each value is shown
beside it ("val/disc 0.234 (floor 0.012)"). The floor compares the held-out paths with an
equal-size slice A of the training paths, the same way generated paths are compared with them;
for `val/pred` the "generated" set is a second, disjoint training slice B and the reference
(TRTR, `val/pred_trtr`) is trained on A. Floors depend only on the data config, the seed and the
metric protocols, so they are computed once and kept in a cache (`INFGAN_CACHE_DIR`, default
`~/.cache/infgan/floors/`) shared by every run and sweep trial on the machine, and stored with
each run in `data.json`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from infgan.cache import cached_json
from infgan.config import DataConfig, to_dict
from infgan.data import Dataset
from infgan.data.dataset import on_grid
from infgan.metrics.discriminative import accuracy, with_error
from infgan.metrics.marginal import quality_metrics
from infgan.metrics.predictive import predictive_mae
from infgan.metrics.sequence import side_by_side
from infgan.metrics.signature import sig_mmd
from infgan.objective import floor_name

VERSION = 3  # bump when a metric's protocol changes: cached floors are then recomputed
FLOOR_REPEATS = 3  # classifiers behind val/disc_floor and its standard error (computed once, cached)


def real_slices(dataset: Dataset, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(held-out paths on the grid, training slice A, disjoint training slice B), A and B on the grid."""
    held = dataset.val_grid
    n_train = dataset.train.size(0)
    n = max(1, min(held.size(0), n_train // 2))
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    a, b = dataset.train[order[:n]], dataset.train[order[n : 2 * n]]
    if not bool((dataset.train[:, :, 0] == dataset.ts).all()):  # files: windows at their own times
        a, b = on_grid(a, dataset.ts), on_grid(b, dataset.ts)
    return held, a, b


def compute_floors(dataset: Dataset, seed: int, path_level: bool, threads: int = 1) -> dict[str, float]:
    """`val/score_floor`, and with `path_level` the path-level floors and `val/pred_trtr` (their
    classifiers side by side on up to `threads` threads, to the same values)."""
    held, a, b = real_slices(dataset, seed)
    out = {floor_name("val/score"): quality_metrics(held, a, fake_missing=True)["val/score"]}
    if path_level and min(held.size(0), b.size(0)) >= 2:
        t_end = float(dataset.ts[-1])
        calls: list[Callable[[], Any]] = [
            functools.partial(predictive_mae, a, held, t_end, seed),
            functools.partial(predictive_mae, b, held, t_end, seed),  # B stands in for generated paths
            functools.partial(sig_mmd, held, a, t_end, seed),
            *[functools.partial(accuracy, held, a, t_end, seed + k) for k in range(FLOOR_REPEATS)],
        ]
        trtr, tstr, mmd, *runs = side_by_side(calls, threads)
        disc, disc_se = with_error(runs)
        out["val/disc_floor_se"] = disc_se
        real_vs_real = {
            "val/disc": disc,
            "val/pred": tstr,
            "val/pred_ratio": tstr / trtr if trtr > 0 else float("nan"),
            "val/sig_mmd": mmd,
        }
        out["val/pred_trtr"] = trtr
        out.update({floor_name(k): v for k, v in real_vs_real.items()})
    return out


def floors(dataset: Dataset, data_cfg: DataConfig, seed: int, path_level: bool, threads: int = 1) -> dict[str, float]:
    """The floors of this data and seed, from the cache when they were computed before."""
    key: dict[str, Any] = {"data": to_dict(data_cfg), "seed": seed, "path_level": path_level, "version": VERSION}
    return cached_json("floors", key, lambda: compute_floors(dataset, seed, path_level, threads))
