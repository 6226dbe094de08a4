"""A dataset of paths with time as channel 0: train/held-out split, missing entries, normalisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from infgan.config import FILE_DATASETS, SYNTHETIC, ConfigError, DataConfig
from infgan.data import conditions, mujoco, ou, sines, transforms, walks
from infgan.data.files import DataError, RawData, Series, read_file


@dataclass
class Dataset:
    """Normalised paths (series, time, 1 + channels), NaN where unobserved; time is channel 0.

    Time is in model units: the data's median sampling interval is 1, and each series starts at
    0. A series shorter than the others is padded with its last time and NaN values, so its path
    is constant after its end and the CDE critic's state stops changing there.
    """

    ts: torch.Tensor  # (time,) the generator's output grid
    train: torch.Tensor  # (n_train, time, 1 + channels)
    val: torch.Tensor  # (n_val, time, 1 + channels), held out, at each series' own times
    val_grid: torch.Tensor  # (n_val, time, 1 + channels), the same on the grid `ts`, for the metrics
    mean: torch.Tensor  # (channels,) normalisation: data = normalised * std + mean
    std: torch.Tensor  # (channels,)
    names: list[str]  # channel names, for plots and tables
    time_scale: float = 1.0  # data time units per model time unit
    time_unit: str = "time units"
    transform: list[str] | None = None  # per channel (transforms.KINDS); None: none for every channel
    anchors: torch.Tensor | None = None  # (n_train, channels) each training window's first values, data units
    val_anchors: torch.Tensor | None = None  # (n_val, channels) the same for the held-out windows
    quantiles: torch.Tensor | None = None  # (channels, transforms.QUANTILES) the `quantile` channels' tables
    condition_specs: list[dict] | None = None  # data.condition_columns' encoding (infgan/data/conditions.py)
    cond_train: torch.Tensor | None = None  # (n_train, width) each training window's condition vector
    cond_val: torch.Tensor | None = None  # (n_val, width)
    cond_rows: list[dict] | None = None  # (n_train) the training windows' raw conditions
    cond_val_rows: list[dict] | None = None  # (n_val) the held-out windows' raw conditions

    @property
    def channels(self) -> int:
        """Number of data channels, time excluded."""
        return self.train.size(-1) - 1

    def coeffs(self, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """Linear-interpolation coefficients of this rank's shard of the training paths."""
        return interpolation_coeffs(self.train[rank::world_size])

    def observed(self, rank: int = 0, world_size: int = 1) -> torch.Tensor | None:
        """Where this rank's shard of the training values was observed (n, time, channels); None: everywhere."""
        observed = ~torch.isnan(self.train[rank::world_size, :, 1:])
        return None if bool(observed.all()) else observed

    @property
    def constant(self) -> torch.Tensor:
        """(channels,) bool: channels whose every observed training value is the same (normalised to 0)."""
        x = self.train[..., 1:]
        seen = ~torch.isnan(x)
        low = torch.where(seen, x, torch.inf).amin(dim=(0, 1))
        high = torch.where(seen, x, -torch.inf).amax(dim=(0, 1))
        return high == low

    @property
    def cond_width(self) -> int:
        """Size of a path's condition vector (0: unconditional)."""
        return 0 if self.cond_train is None else self.cond_train.size(1)

    def conditions(self, rank: int = 0, world_size: int = 1) -> torch.Tensor | None:
        """This rank's shard of the training windows' condition vectors (None: unconditional)."""
        return None if self.cond_train is None else self.cond_train[rank::world_size]

    def denormalise(self, paths: torch.Tensor, anchors: torch.Tensor | None = None) -> torch.Tensor:
        """Paths (n, time, 1 + channels) from normalised to data units (time since the series' start).

        `anchors` (n, channels): the windows' levels for window-anchored transforms; by default
        drawn from the training windows' (generated paths have none of their own).
        """
        return torch.cat(
            [paths[..., :1] * self.time_scale, to_data_units(paths[..., 1:], self.describe(), anchors)], dim=-1
        )

    def describe(self) -> dict:
        """Channel names, normalisation, transforms and the output time grid, as saved with a run (data.json)."""
        out = {
            "channels": list(self.names),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "times": self.ts.tolist(),
            "time_scale": self.time_scale,
            "time_unit": self.time_unit,
        }
        if self.transform is not None and any(k != "none" for k in self.transform):
            out["transform"] = list(self.transform)
            if self.anchors is not None and any(k in transforms.ANCHORED for k in self.transform):
                step = max(1, self.anchors.size(0) // ANCHOR_POOL)
                out["anchors"] = self.anchors[::step][:ANCHOR_POOL].tolist()
            if self.quantiles is not None:
                out["quantiles"] = self.quantiles.tolist()
        if self.condition_specs and self.cond_rows:
            out["conditions"] = self.condition_specs
            step = max(1, len(self.cond_rows) // conditions.POOL)
            out["condition_pool"] = self.cond_rows[::step][: conditions.POOL]
        return out


ANCHOR_POOL = 1024  # training windows' levels kept in data.json, to invert generated paths


def to_data_units(
    values: torch.Tensor, described: dict, anchors: torch.Tensor | None = None, seed: int = 0
) -> torch.Tensor:
    """Normalised values (n, time, channels) in data units, from a run's data.json (`Dataset.describe`).

    Window-anchored transforms take `anchors` (n, channels), by default levels drawn by `seed`
    from the training windows' kept in `described`.
    """
    out = values * torch.tensor(described["std"]).to(values) + torch.tensor(described["mean"]).to(values)
    kinds = described.get("transform")
    if not kinds:
        return out
    if anchors is None:
        pool = torch.tensor(described.get("anchors") or [[1.0] * len(kinds)], dtype=values.dtype)
        anchors = transforms.draw_anchors(pool, values.size(0), seed)
    table = described.get("quantiles")
    table = None if table is None else torch.tensor(table, dtype=values.dtype)
    return transforms.inverse(out, list(kinds), anchors, list(described["channels"]), table)


def interpolation_coeffs(paths: torch.Tensor) -> torch.Tensor:
    """Fill NaNs as `torchcde.linear_interpolation_coeffs` does, vectorised over series and channels.

    paths: (batch, time, channels) -> same shape, NaN-free. A gap is filled by linear
    interpolation in the time index between its observed neighbours; leading and trailing gaps
    take the first and last observation; an all-missing channel becomes zeros. torchcde does the
    same with a Python loop per series, about 7 s for the default 7k training paths.
    """
    observed = ~torch.isnan(paths)
    if observed.all():
        return paths
    return fill_gaps(paths, observed)


def fill_gaps(paths: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """`paths` (batch, time, channels) with the entries where `observed` is false filled as
    `interpolation_coeffs` fills NaNs; differentiable in the observed entries (a generated path
    given a real path's gaps is filled exactly as that real path was)."""
    t_size = paths.size(-2)
    idx = torch.arange(t_size, device=paths.device).view(1, t_size, 1).expand_as(paths)
    prev = torch.where(observed, idx, -1).cummax(dim=-2).values  # last observed at or before
    nxt = torch.where(observed, idx, t_size).flip(-2).cummin(dim=-2).values.flip(-2)  # first observed at or after
    has_prev, has_next = prev >= 0, nxt < t_size
    prev, nxt = torch.where(has_prev, prev, nxt), torch.where(has_next, nxt, prev)
    filled = torch.where(observed, paths, torch.zeros_like(paths))
    v_prev = filled.gather(-2, prev.clamp(0, t_size - 1))
    v_next = filled.gather(-2, nxt.clamp(0, t_size - 1))
    span = (nxt - prev).clamp_min(1)
    w = ((idx - prev) / span).to(paths.dtype)
    out = torch.where(observed, paths, v_prev + w * (v_next - v_prev))
    return torch.where(has_prev | has_next, out, torch.zeros_like(out))


def load_raw(cfg: DataConfig) -> RawData | None:
    """Every series of a file or named dataset before windowing; None for synthetic data."""
    if cfg.dataset in FILE_DATASETS:
        return read_file(cfg, cfg.path)
    if cfg.dataset in SYNTHETIC:
        return None
    if cfg.dataset == "geolife":
        from infgan.data.geolife import read_geolife

        return read_geolife(cfg)
    from infgan.data.named import read_named

    return read_named(cfg)


def build_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """Generate or load the data; split, window and normalise, all fixed by `seed`."""
    return dataset_from(cfg, load_raw(cfg), seed)


def dataset_from(cfg: DataConfig, raw: RawData | None, seed: int) -> Dataset:
    """`build_dataset` on series already read by `load_raw` (None: generate the synthetic data)."""
    g = torch.Generator().manual_seed(seed)
    if raw is None:
        return _synthetic(cfg, g)
    return _from_series(cfg, raw, g)


def _walks(cfg: DataConfig, g: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    return walks.sample(cfg, g), walks.channel_names(cfg.dims)


# Each generated dataset: (values (size, t_size, channels) in data units, channel names) from the
# config and the run's generator; every other name in SYNTHETIC is a random-walk family.
GENERATED: dict[str, Callable[[DataConfig, torch.Generator], tuple[torch.Tensor, list[str]]]] = {
    "ou": lambda cfg, g: (ou.sample_ou(cfg.size, cfg.t_size, g), ["y"]),
    "sines": lambda cfg, g: (sines.sample(cfg.size, cfg.t_size, cfg.dims, g), sines.channel_names(cfg.dims)),
    "mujoco": lambda cfg, g: mujoco.sample(cfg.size, cfg.t_size),  # the benchmark's own set: not the run's seed
}


def _synthetic(cfg: DataConfig, g: torch.Generator) -> Dataset:
    """Generated data (`GENERATED`, else a random-walk family) on a regular grid, entries dropped at random."""
    if cfg.condition_columns:
        raise DataError(
            f"data.condition_columns: {cfg.dataset} data has no per-series columns to condition on; use a file "
            "with data.id_column, weather (origin) or geolife (mode, user)"
        )
    ts = ou.times(cfg.t_size)
    values, names = GENERATED.get(cfg.dataset, _walks)(cfg, g)
    n, t_size, _ = values.shape
    if cfg.missing_rate > 0:
        # As the reference does, to show that the CDE critic copes with irregular data.
        drop = torch.randperm(values.numel(), generator=g)[: int(cfg.missing_rate * values.numel())]
        values.view(-1)[drop] = float("nan")
    order = torch.randperm(n, generator=g)
    n_val = max(1, round(cfg.val_fraction * n))
    val_idx, train_idx = order[:n_val], order[n_val:]
    kinds = transforms.per_channel(cfg.transform, names, cfg.dataset)
    anchors = transforms.first_observed(values)
    table = transforms.fit(values[train_idx], kinds)
    values = transforms.forward(values, kinds, names, cfg.dataset, table)
    mean, std = _normalisation(values[train_idx], kinds, cfg.normalise)
    with_time = torch.cat([ts.view(1, t_size, 1).expand(n, t_size, 1), (values - mean) / std], dim=2)
    val = with_time[val_idx]
    return Dataset(
        ts=ts,
        train=with_time[train_idx],
        val=val,
        val_grid=val,
        mean=mean,
        std=std,
        names=names,
        transform=kinds,
        anchors=anchors[train_idx],
        val_anchors=anchors[val_idx],
        quantiles=table,
    )


def _normalisation(train: torch.Tensor, kinds: list[str], how: str = "start") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel shift and scale of the training values (n, time, channels): normalised = (x - shift) / scale.

    `start` (the default): mean and std at t = 0. Why t = 0 statistics, not the whole path's: the
    reference found this helps learning a lot (the generator's initial condition is what the critic
    first tells apart). A channel seldom observed at t = 0 falls back to all its observations, and
    so does a window-anchored transform's (every window starts at 0 there). `whole`: mean and std
    over every value: for data whose start says little of the rest (TimeGAN's sines start within
    0.05 of each other, then spread over [0.5, 1]). `minmax`: the training range onto [0, 1], as
    TimeGAN's loader scales its files.
    """
    first, everything = train[:, 0], train.reshape(-1, train.size(-1))
    if how == "minmax":
        seen = ~torch.isnan(everything)
        low = torch.where(seen, everything, torch.inf).amin(dim=0)
        high = torch.where(seen, everything, -torch.inf).amax(dim=0)
        return low, (high - low).clamp_min(1e-8)
    mean, std = [], []
    for c in range(train.size(-1)):
        seen_at_start = (~torch.isnan(first[:, c])).sum() >= 2
        at_start = how == "start" and seen_at_start and kinds[c] not in transforms.ANCHORED
        x = first[:, c] if at_start else everything[:, c]
        m = torch.nanmean(x)
        mean.append(m)
        std.append(torch.sqrt(torch.nanmean((x - m) ** 2)).clamp_min(1e-8))
    return torch.stack(mean), torch.stack(std)


def windows(s: Series, t_size: int, stride: int) -> list[Series]:
    """Windows of `t_size` points every `stride` rows; a shorter series is one window of its own."""
    if len(s.times) <= t_size:
        return [s]
    return [
        Series(s.label, s.times[i : i + t_size], s.values[i : i + t_size], s.group, s.static)
        for i in range(0, len(s.times) - t_size + 1, stride)
    ]


BLOCKS = 16  # a single long series is cut into this many blocks (fewer if short) before the split


def blocks(s: Series, t_size: int) -> list[Series]:
    """Contiguous blocks of one long series, each at least `t_size` points where the series allows."""
    n = max(2, min(BLOCKS, len(s.times) // t_size))
    edges = np.linspace(0, len(s.times), n + 1).round().astype(int)
    return [Series(f"{s.label} rows {a + 1}-{b}", s.times[a:b], s.values[a:b]) for a, b in zip(edges, edges[1:])]


def _held_out(cfg: DataConfig, n: int) -> int:
    """How many of `n` series, blocks or windows are held out: data.val_fraction, at least 1, never all."""
    return min(n - 1, max(1, round(cfg.val_fraction * n)))


def split_series(cfg: DataConfig, raw: RawData, g: torch.Generator) -> tuple[list[Series], list[Series]]:
    """Training and held-out windows; by default every window of a series lies on one side.

    Series told apart by an id are held out whole. A single long series is first cut into
    contiguous blocks, and whole blocks are held out: random windows would overlap across the
    split, and holding out only the end would test the generator on one period of the history.
    `data.split: windows` holds out random windows instead, as TimeGAN's protocol does.
    """
    longest = max(len(s.times) for s in raw.series)
    if not raw.by_id and cfg.t_size > longest:
        # One series is cut into windows of t_size: a longer window would be padding only. (Series
        # told apart by an id are padded up to t_size, the longest kept, by design; an npz file's
        # array length bounds t_size where it is read.)
        raise DataError(
            f"{raw.source}: data.t_size {cfg.t_size} is longer than the series ({longest} points); "
            f"set data.t_size to at most {longest}"
        )
    if cfg.split == "windows":
        stride = cfg.stride or cfg.t_size
        every = [w for s in raw.series for w in windows(s, cfg.t_size, stride)]
        if len(every) < 2:
            raise DataError(f"{raw.source}: data.split windows needs at least 2 windows of data.t_size {cfg.t_size}")
        order = torch.randperm(len(every), generator=g).tolist()[: cfg.size]
        n_val = _held_out(cfg, len(order))
        return [every[i] for i in sorted(order[n_val:])], [every[i] for i in sorted(order[:n_val])]
    series = raw.series if raw.by_id and len(raw.series) >= 2 else blocks(raw.series[0], cfg.t_size)
    if any(len(s.times) < 2 for s in series):
        raise DataError(
            f"{raw.source}: {len(raw.series[0].times)} points are too few to split into training and held-out parts"
        )
    stride = cfg.stride or cfg.t_size
    groups = sorted({s.group for s in series})
    if len(groups) >= 2:  # whole groups held out (GeoLife: users), in proportion to their groups
        chosen = torch.randperm(len(groups), generator=g).tolist()
        held = {groups[i] for i in chosen[: _held_out(cfg, len(groups))]}
        order = [i for i in torch.randperm(len(series), generator=g).tolist() if series[i].group in held]
        n_val = len(order)
        order += [i for i in torch.randperm(len(series), generator=g).tolist() if series[i].group not in held]
        order = order[: max(cfg.size, n_val + 1)]
    else:
        order = torch.randperm(len(series), generator=g).tolist()[: cfg.size]
        n_val = _held_out(cfg, len(order))
    val = [w for i in sorted(order[:n_val]) for w in windows(series[i], cfg.t_size, stride)]
    train = [w for i in sorted(order[n_val:]) for w in windows(series[i], cfg.t_size, stride)]
    total = len(train) + len(val)
    if total > cfg.size:  # data.size caps the windows, keeping the split's proportions
        n_train = max(1, round(cfg.size * len(train) / total))
        train = [train[i] for i in sorted(torch.randperm(len(train), generator=g)[:n_train].tolist())]
        val = [val[i] for i in sorted(torch.randperm(len(val), generator=g)[: max(1, cfg.size - n_train)].tolist())]
    return train, val


def median_interval(raw: RawData) -> float:
    """The median time between consecutive observations over every series."""
    return float(np.median(np.concatenate([np.diff(s.times) for s in raw.series])))


def stack_windows(ws: list[Series], t_size: int, unit: float) -> torch.Tensor:
    """Windows as (n, t_size, 1 + channels): time since the window's start in `unit`s, padded at the end."""
    out = np.full((len(ws), t_size, 1 + ws[0].values.shape[1]), np.nan)
    for i, w in enumerate(ws):
        n = len(w.times)
        out[i, :n, 0] = (w.times - w.times[0]) / unit
        out[i, n:, 0] = out[i, n - 1, 0]
        out[i, :n, 1:] = w.values
    return torch.tensor(out, dtype=torch.get_default_dtype())


def on_grid(paths: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """Paths (n, time, 1 + channels) at their own times, linearly interpolated onto `ts`.

    NaN where a channel has no observation on both sides of a grid time (before its first or
    after its last observation in that series).
    """
    t_grid = ts.double().numpy()
    out = np.full((paths.size(0), len(t_grid), paths.size(-1)), np.nan)
    out[:, :, 0] = t_grid
    p = paths.double().numpy()
    for i in range(p.shape[0]):
        for c in range(1, p.shape[2]):
            seen = ~np.isnan(p[i, :, c])
            t, y = p[i, seen, 0], p[i, seen, c]
            if len(t):
                inside = (t_grid >= t[0] - 1e-9) & (t_grid <= t[-1] + 1e-9)
                out[i, inside, c] = np.interp(t_grid[inside], t, y)
    return torch.tensor(out, dtype=paths.dtype)


def _from_series(cfg: DataConfig, raw: RawData, g: torch.Generator) -> Dataset:
    """A Dataset of windows of real series, time rescaled so the median interval is 1."""
    unit = median_interval(raw)
    train_w, val_w = split_series(cfg, raw, g)
    if not train_w or not val_w:
        raise DataError(
            f"{raw.source}: no training or held-out window of data.t_size {cfg.t_size} points; "
            f"lower data.t_size or data.val_fraction"
        )
    train, val = stack_windows(train_w, cfg.t_size, unit), stack_windows(val_w, cfg.t_size, unit)
    kinds = transforms.per_channel(cfg.transform, raw.channels, raw.source)
    anchors, val_anchors = transforms.first_observed(train[..., 1:]), transforms.first_observed(val[..., 1:])
    table = transforms.fit(train[..., 1:], kinds)
    train[..., 1:] = transforms.forward(train[..., 1:], kinds, raw.channels, raw.source, table)
    val[..., 1:] = transforms.forward(val[..., 1:], kinds, raw.channels, raw.source, table)
    # Why the median span: one window stretched by a long gap should not stretch everyone's grid.
    span = float(train[:, -1, 0].median())
    regular = abs(span - (cfg.t_size - 1)) < 1e-6
    ts = torch.arange(cfg.t_size, dtype=train.dtype) if regular else torch.linspace(0, span, cfg.t_size)
    mean, std = _normalisation(train[..., 1:], kinds, cfg.normalise)
    train[..., 1:] = (train[..., 1:] - mean) / std
    val[..., 1:] = (val[..., 1:] - mean) / std
    same_times = val.size(1) == ts.numel() and bool((val[..., 0] == ts).all())
    specs = cond_train = cond_val = rows = val_rows = None
    if cfg.condition_columns and cfg.conditional:
        missing = [c for c in cfg.condition_columns if c not in train_w[0].static]
        if missing:
            known = ", ".join(train_w[0].static) or "none"
            raise DataError(f"{raw.source}: no condition column {missing[0]!r}; its per-series columns: {known}")
        rows, val_rows = [dict(w.static) for w in train_w], [dict(w.static) for w in val_w]
        specs = conditions.fit_specs(cfg.condition_columns, rows)
        cond_train = conditions.encode(specs, rows)
        try:  # the encoding's own check of unseen values, said in the data's terms
            cond_val = conditions.encode(specs, val_rows)
        except ConfigError:
            raise DataError(
                f"{raw.source}: a held-out series has a condition value no training series has (whole series are "
                "held out); set data.split: windows to hold out windows of every series, or lower data.val_fraction"
            ) from None
    return Dataset(
        ts=ts,
        train=train,
        val=val,
        val_grid=val if same_times else on_grid(val, ts),
        mean=mean,
        std=std,
        names=list(raw.channels),
        time_scale=unit,
        time_unit=raw.time_unit,
        transform=kinds,
        anchors=anchors,
        val_anchors=val_anchors,
        quantiles=table,
        condition_specs=specs,
        cond_train=cond_train,
        cond_val=cond_val,
        cond_rows=rows,
        cond_val_rows=val_rows,
    )


class Batch(NamedTuple):
    """A training batch of real paths."""

    coeffs: torch.Tensor  # (batch, time, 1 + channels) interpolation coefficients: gaps filled linearly
    cond: torch.Tensor | None = None  # (batch, width) condition vectors of a conditional run
    observed: torch.Tensor | None = None  # (batch, time, channels) bool: where values were observed; None: all


def sample_batch(
    coeffs: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    cond: torch.Tensor | None = None,
    observed: torch.Tensor | None = None,
) -> Batch:
    """A batch of coefficient rows drawn uniformly (with replacement) by `generator`, and the same
    rows of the condition vectors `cond` (None for an unconditional run) and of the observed mask."""
    idx = torch.randint(0, coeffs.size(0), (batch_size,), generator=generator).to(coeffs.device)
    return Batch(coeffs[idx], None if cond is None else cond[idx], None if observed is None else observed[idx])
