"""GeoLife GPS trajectories as they are extracted: `Data/<user>/Trajectory/*.plt`, optional labels.

`data.dataset: geolife` with `data.path` at the extracted directory (the one holding `Data/`, or
`Data/` itself). Nothing is downloaded. Each PLT file is one recording:

- 6 header lines, then one point per line: latitude, longitude (decimal degrees, WGS 84), a 0,
  altitude in feet (-777 when unknown), the time as days since 1899-12-30, then the date and time
  as text. infgan takes the time from the day count (seconds, UTC) and leaves altitude out: it is
  unknown in much of the data.
- A recording is split into trips wherever two consecutive points are more than `data.split_gap`
  seconds apart (a stop, the device off). Trips of fewer than `MIN_POINTS` points are dropped.
- Coordinates become metres from each trip's start: x east, y north, by the equirectangular
  projection at the trip's starting latitude (x = R cos(lat0) dlon, y = R dlat, R the mean Earth
  radius). Over a trip's few kilometres its error is far below GPS noise, and every trip starts
  at (0, 0), so the model learns movement, not where in Beijing it happens. (A fixed projection
  for all trips would keep location; it is not offered.)
- Times stay irregular (GeoLife logs every 1-5 s, with dropouts) unless `data.resample` gives a
  step in seconds: then each trip is linearly interpolated onto that regular grid from its start.
- Repeated timestamps, which GeoLife has, follow `data.duplicate_times` (the `geolife` preset
  keeps the first).
- `labels.txt` beside a user's `Trajectory/` (start time, end time, transport mode, tab-separated,
  times as `YYYY/MM/DD HH:MM:SS`) gives a trip the mode whose interval holds the trip's start;
  `data.modes` keeps only trips of those modes (a user without labels then has none).
- The users are the groups of the held-out split: a user's trips are all training or all held out,
  so the metrics measure trips of people the model never saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infgan.config import DataConfig
from infgan.data.files import DataError, RawData, Series, merge_duplicate_times
from infgan.text import error_line

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius
HEADER_LINES = 6
MIN_POINTS = 4
SECONDS_PER_DAY = 86400.0
DAY_ZERO = -25569.0  # 1899-12-30 in days relative to 1970-01-01


def _data_dir(path: str) -> Path:
    root = Path(path)
    if not path:
        raise DataError("data.dataset geolife needs data.path: the extracted GeoLife directory (holding Data/)")
    for candidate in (root / "Data", root):
        if candidate.is_dir() and any(candidate.glob("*/Trajectory/*.plt")):
            return candidate
    raise DataError(
        f"{root}: no GeoLife trajectories (Data/<user>/Trajectory/*.plt) under it; give data.path as the "
        "extracted directory that holds Data/"
    )


def read_plt(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times in seconds since 1970, latitudes, longitudes) of one PLT file."""
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=HEADER_LINES, usecols=(0, 1, 4), ndmin=2)
    except (ValueError, OSError) as e:
        raise DataError(
            f"{path}: not a GeoLife PLT file (6 header lines, then lat,lon,0,alt,days,date,time): {error_line(e)}"
        ) from None
    lat, lon, days = table[:, 0], table[:, 1], table[:, 2]
    bad = ~((np.abs(lat) <= 90) & (np.abs(lon) <= 180) & np.isfinite(days))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + HEADER_LINES + 1
        raise DataError(f"{path}: line {row}: latitude {lat[bad][0]:g}, longitude {lon[bad][0]:g} are not coordinates")
    return np.round((days + DAY_ZERO) * SECONDS_PER_DAY), lat, lon


def read_labels(path: Path) -> list[tuple[float, float, str]]:
    """(start, end in seconds since 1970, mode) of a user's labels.txt; [] when there is none."""
    if not path.is_file():
        return []
    import pandas as pd

    frame = pd.read_csv(path, sep="\t")
    if frame.shape[1] < 3:
        raise DataError(f"{path}: expected 3 tab-separated columns (Start Time, End Time, Transportation Mode)")
    start, end = (pd.to_datetime(frame.iloc[:, i], format="%Y/%m/%d %H:%M:%S", utc=True) for i in (0, 1))
    epoch = pd.Timestamp(0, tz="UTC")
    return [
        ((s - epoch).total_seconds(), (e - epoch).total_seconds(), str(m).strip())
        for s, e, m in zip(start, end, frame.iloc[:, 2])
    ]


def to_metres(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(points, 2): x east and y north of the first point, in metres (equirectangular at its latitude)."""
    lat0, lon0 = np.radians(lat[0]), np.radians(lon[0])
    x = EARTH_RADIUS_M * np.cos(lat0) * (np.radians(lon) - lon0)
    y = EARTH_RADIUS_M * (np.radians(lat) - lat0)
    return np.stack([x, y], axis=1)


def _mode(start: float, labels: list[tuple[float, float, str]]) -> str:
    return next((m for a, b, m in labels if a <= start <= b), "")


def _trips(times: np.ndarray, gap: float) -> list[slice]:
    cuts = np.flatnonzero(np.diff(times) > gap) + 1
    edges = [0, *cuts.tolist(), len(times)]
    return [slice(a, b) for a, b in zip(edges, edges[1:]) if b - a >= MIN_POINTS]


def read_geolife(cfg: DataConfig) -> RawData:
    """Every trip of every user as a series of (x, y) metres; users as the held-out split's groups."""
    data = _data_dir(cfg.path)
    series: list[Series] = []
    for user_dir in sorted(p for p in data.iterdir() if (p / "Trajectory").is_dir()):
        user = user_dir.name
        labels = read_labels(user_dir / "labels.txt")
        for plt in sorted((user_dir / "Trajectory").glob("*.plt")):
            times, lat, lon = read_plt(plt)
            order = np.argsort(times, kind="stable")  # a few files are out of order
            times, lat, lon = times[order], lat[order], lon[order]
            for k, part in enumerate(_trips(times, cfg.split_gap)):
                mode = _mode(float(times[part][0]), labels)
                if cfg.modes and mode not in cfg.modes:
                    continue
                label = f"{user}/{plt.stem}#{k}"
                trip = Series(
                    label, times[part], to_metres(lat[part], lon[part]), group=user, static={"mode": mode, "user": user}
                )
                trip = _regular(_unique(trip, cfg.duplicate_times, str(plt)), cfg.resample)
                if len(trip.times) >= MIN_POINTS:
                    series.append(trip)
    if not series:
        modes = f" of modes {', '.join(cfg.modes)}" if cfg.modes else ""
        raise DataError(
            f"{data}: no trip{modes} of at least {MIN_POINTS} points (split at data.split_gap {cfg.split_gap:g} s)"
        )
    return RawData(str(data), ["x_m", "y_m"], series, time_unit="seconds", by_id=True)


def _unique(s: Series, policy: str, source: str) -> Series:
    if (np.diff(s.times) > 0).all():
        return s
    if policy == "error":
        i = int(np.flatnonzero(np.diff(s.times) == 0)[0])
        raise DataError(
            f"{source}: trip {s.label}: duplicate time at points {i + 1} and {i + 2}; set data.duplicate_times to "
            "first, last or mean to merge them (the geolife preset keeps the first)"
        )
    return merge_duplicate_times(s, policy)


def _regular(s: Series, step: float) -> Series:
    """`s` linearly interpolated onto a grid of `step` seconds from its start (as it is when 0)."""
    if step <= 0:
        return s
    grid = np.arange(s.times[0], s.times[-1] + 1e-9, step)
    values = np.stack([np.interp(grid, s.times, s.values[:, c]) for c in range(s.values.shape[1])], axis=1)
    return Series(s.label, grid, values, group=s.group, static=s.static)
