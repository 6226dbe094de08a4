"""A dataset of paths with time as channel 0: train/held-out split, missing entries, normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from infgan.config import DataConfig
from infgan.data import ou


@dataclass
class Dataset:
    """Normalised paths (series, time, 1 + channels), NaN where unobserved; time is channel 0."""

    ts: torch.Tensor          # (time,) the generator's output grid
    train: torch.Tensor       # (n_train, time, 1 + channels)
    val: torch.Tensor         # (n_val, time, 1 + channels), held out for the quality metrics
    mean: torch.Tensor        # (channels,) normalisation: data = normalised * std + mean
    std: torch.Tensor         # (channels,)
    names: list[str]          # channel names, for plots and tables

    @property
    def channels(self) -> int:
        """Number of data channels, time excluded."""
        return self.train.size(-1) - 1

    def coeffs(self, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """Linear-interpolation coefficients of this rank's shard of the training paths."""
        return interpolation_coeffs(self.train[rank::world_size])

    def denormalise(self, paths: torch.Tensor) -> torch.Tensor:
        """Paths (…, time, 1 + channels) from normalised to data units; time unchanged."""
        return torch.cat([paths[..., :1], paths[..., 1:] * self.std + self.mean], dim=-1)

    def describe(self) -> dict[str, list]:
        """Channel names, normalisation and the output time grid, as saved with a run (data.json)."""
        return {"channels": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "times": self.ts.tolist()}


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
    t_size = paths.size(-2)
    idx = torch.arange(t_size, device=paths.device).view(1, t_size, 1).expand_as(paths)
    prev = torch.where(observed, idx, -1).cummax(dim=-2).values                    # last observed at or before
    nxt = torch.where(observed, idx, t_size).flip(-2).cummin(dim=-2).values.flip(-2)  # first observed at or after
    has_prev, has_next = prev >= 0, nxt < t_size
    prev, nxt = torch.where(has_prev, prev, nxt), torch.where(has_next, nxt, prev)
    filled = torch.nan_to_num(paths)
    v_prev = filled.gather(-2, prev.clamp(0, t_size - 1))
    v_next = filled.gather(-2, nxt.clamp(0, t_size - 1))
    span = (nxt - prev).clamp_min(1)
    w = ((idx - prev) / span).to(paths.dtype)
    out = torch.where(observed, paths, v_prev + w * (v_next - v_prev))
    return torch.where(has_prev | has_next, out, torch.zeros_like(out))


def _raw_paths(cfg: DataConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised values (n, time, channels) and their times, for the configured dataset."""
    if cfg.dataset == "ou":
        return ou.sample_ou(cfg.size, cfg.t_size, generator), ou.times(cfg.t_size)
    raise ValueError(f"unknown dataset {cfg.dataset!r}")  # config validation keeps this unreachable


def build_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """Generate or load the data; split, drop entries and normalise, all fixed by `seed`."""
    g = torch.Generator().manual_seed(seed)
    values, ts = _raw_paths(cfg, g)
    n, t_size, _ = values.shape
    if cfg.missing_rate > 0:
        # As the reference does, to show that the CDE discriminator copes with irregular data.
        drop = torch.randperm(values.numel(), generator=g)[: int(cfg.missing_rate * values.numel())]
        values.view(-1)[drop] = float("nan")
    order = torch.randperm(n, generator=g)
    n_val = max(1, round(cfg.val_fraction * n))
    val_idx, train_idx = order[:n_val], order[n_val:]
    # Why t = 0 statistics, not the whole path's: the reference found this helps learning a lot
    # (the generator's initial condition is what the critic first tells apart).
    first = values[train_idx, 0]
    mean = torch.nanmean(first, dim=0)
    std = torch.sqrt(torch.nanmean((first - mean) ** 2, dim=0)).clamp_min(1e-8)
    normed = (values - mean) / std
    with_time = torch.cat([ts.view(1, t_size, 1).expand(n, t_size, 1), normed], dim=2)
    names = ["y"] if values.size(-1) == 1 else [f"y{i}" for i in range(values.size(-1))]
    return Dataset(ts=ts, train=with_time[train_idx], val=with_time[val_idx], mean=mean, std=std, names=names)


def sample_batch(coeffs: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A batch of coefficient rows drawn uniformly (with replacement) by `generator`."""
    idx = torch.randint(0, coeffs.size(0), (batch_size,), generator=generator)
    return coeffs[idx.to(coeffs.device)]
