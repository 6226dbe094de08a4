"""`infgan data describe`: what a config's data looks like, before any cluster time is spent on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from infgan.config import Config
from infgan.data.dataset import dataset_from, load_raw, median_interval


def _spread(x: np.ndarray) -> dict[str, float]:
    return {"min": float(np.min(x)), "median": float(np.median(x)), "max": float(np.max(x))}


def describe_data(cfg: Config) -> dict[str, Any]:
    """Series count, lengths, sampling intervals, missing rate per channel, and the windows a run trains on."""
    raw = load_raw(cfg.data)
    ds = dataset_from(cfg.data, raw, cfg.seed)
    out: dict[str, Any] = {"dataset": cfg.data.dataset, "source": raw.source if raw else "synthetic (generated)"}
    if raw is not None:
        values = np.concatenate([s.values for s in raw.series])
        out.update(
            {
                "series": len(raw.series),
                "length": _spread(np.array([len(s.times) for s in raw.series])),
                "interval": {**_spread(np.concatenate([np.diff(s.times) for s in raw.series])), "unit": raw.time_unit},
                "missing": {c: float(np.isnan(values[:, j]).mean()) for j, c in enumerate(raw.channels)},
            }
        )
        out["time_scale"] = median_interval(raw)
    else:
        vals = torch.cat([ds.train, ds.val])[..., 1:]
        out.update(
            {
                "series": vals.size(0),
                "length": _spread(np.array([vals.size(1)])),
                "interval": {**_spread(np.diff(ds.ts.numpy())), "unit": ds.time_unit},
                "missing": {c: float(torch.isnan(vals[..., j]).float().mean()) for j, c in enumerate(ds.names)},
            }
        )
    out.update(
        {
            "channels": list(ds.names),
            "train_windows": ds.train.size(0),
            "val_windows": ds.val.size(0),
            "t_size": ds.ts.numel(),
            "grid_span": float(ds.ts[-1]) * ds.time_scale,
            "time_unit": ds.time_unit,
            "mean": dict(zip(ds.names, ds.mean.tolist())),
            "std": dict(zip(ds.names, ds.std.tolist())),
        }
    )
    return out


def format_description(d: dict[str, Any]) -> str:
    """The description as a few aligned lines and a per-channel table."""
    ln, iv = d["length"], d["interval"]
    lines = [
        f"dataset      {d['dataset']}: {d['source']}",
        f"series       {d['series']}  "
        f"(points per series: min {ln['min']:g}, median {ln['median']:g}, max {ln['max']:g})",
        f"interval     min {iv['min']:.4g}, median {iv['median']:.4g}, max {iv['max']:.4g} {iv['unit']}",
        f"windows      {d['train_windows']} training, {d['val_windows']} held out; {d['t_size']} points each, "
        f"generator grid spans {d['grid_span']:.4g} {d['time_unit']}",
        "",
        f"{'channel':<16}{'missing':>9}{'mean':>13}{'std':>13}",
    ]
    for c in d["channels"]:
        lines.append(f"{c:<16}{d['missing'][c]:>8.1%}{d['mean'][c]:>13.4g}{d['std'][c]:>13.4g}")
    return "\n".join(lines)
