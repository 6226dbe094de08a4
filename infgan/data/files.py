"""Reading series from a CSV, Parquet or npz file, with every check a user's file needs.

A file holds one long series, or many series told apart by `data.id_column`. Rows are
observations; `data.time_column` gives their times (numbers, or dates parsed to seconds), else
the row number is the time. Gaps (empty cells, NA) are kept as NaN: the CDE critic
interpolates over them. Anything wrong with the file is a `DataError` whose message is one
line naming the file, the column and the series.

npz files use the layout `infgan sample` writes: `paths` (series, time, channels) or
(time, channels), optional `t` (time,) or (series, time) with NaN after a shorter series' end,
optional `channels` (names).
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infgan.config import ConfigError, DataConfig
from infgan.text import error_line

# Units in which dates are reported: the largest one not longer than the median interval.
_UNITS = (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0), ("seconds", 1.0))


class DataError(ConfigError):
    """A data file that cannot be used; the message is one line naming file, column and series."""


@dataclass
class Series:
    """One series: strictly increasing times (length,) and values (length, channels) with NaNs."""

    label: str
    times: np.ndarray
    values: np.ndarray
    group: str = ""  # series of one group (a GeoLife user) are held out together
    static: dict = field(default_factory=dict)  # per-series attributes (a GeoLife trip's transport mode)


@dataclass
class RawData:
    """Every series of a source, before windowing, splitting and normalisation."""

    source: str  # what to name in messages: the file, or the named dataset
    channels: list[str]
    series: list[Series]
    time_unit: str = "steps"  # unit of Series.times
    by_id: bool = False  # several series told apart by an id (split by series), else one long one


def read_file(cfg: DataConfig, path: str, *, source: str | None = None) -> RawData:
    """Series of a csv/parquet/npz file as `cfg` describes them (format from cfg.dataset or the suffix)."""
    p = Path(path)
    source = source or str(p)
    if not path:
        raise DataError(f"data.dataset {cfg.dataset} needs data.path (the file to read)")
    if p.exists() and not p.is_file():
        what = "a directory" if p.is_dir() else "not a regular file (a pipe, socket or device)"
        raise DataError(f"{source}: {what}; data.path must be a csv, parquet or npz file")
    if not p.is_file():
        raise DataError(f"{source}: no such file (data.path)")
    kind = cfg.dataset if cfg.dataset in ("csv", "parquet", "npz") else p.suffix.lstrip(".").lower()
    if kind == "npz":
        return _read_npz(cfg, p, source)
    return read_table(cfg, _load_frame(p, kind, source), source)


def _load_frame(p: Path, kind: str, source: str):
    """The file as a pandas DataFrame."""
    import pandas as pd

    try:
        if kind == "parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p, na_values=["NA", "NaN", "nan", ""], low_memory=False)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"{source}: cannot read as {kind}: {error_line(e)}") from None


def read_table(cfg: DataConfig, frame, source: str) -> RawData:
    """Split a pandas DataFrame into series as `cfg` says, and check every one."""
    import pandas as pd

    for role, col in (
        ("data.time_column", cfg.time_column),
        ("data.id_column", cfg.id_column),
        *(("data.columns", c) for c in cfg.columns),
    ):
        if col and col not in frame.columns:
            raise DataError(f"{source}: no column {col!r} ({role}); columns: {', '.join(map(str, frame.columns))}")
    for col in cfg.condition_columns:
        if col not in frame.columns:
            raise DataError(
                f"{source}: no column {col!r} (data.condition_columns); columns: {', '.join(map(str, frame.columns))}"
            )
    if cfg.condition_columns and not cfg.id_column:
        raise DataError(
            f"{source}: data.condition_columns are per-series values, and one long series has one of each; "
            "set data.id_column to tell the series apart"
        )
    special = {cfg.time_column, cfg.id_column, *cfg.condition_columns} - {""}
    if cfg.columns:
        channels = list(cfg.columns)
        for c in channels:
            if not (pd.api.types.is_numeric_dtype(frame[c]) or frame[c].isna().all()):
                bad = frame[c][pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()].iloc[0]
                raise DataError(
                    f"{source}: column {c!r} is not numeric (e.g. {bad!r}); list only numeric channels in data.columns"
                )
    else:
        channels = [
            c
            for c in frame.columns
            if c not in special and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        ]
        if not channels:
            raise DataError(f"{source}: no numeric column to model besides time and id; set data.columns")
    frame = apply_bad_times(cfg, frame, source)
    values = frame[channels].to_numpy(dtype=np.float64)
    for j, c in enumerate(channels):
        if np.isnan(values[:, j]).all():
            raise DataError(f"{source}: column {c!r} has no values at all; leave it out of data.columns")
    _check_finite(values, [f"column {c!r}" for c in channels], source, "row", first_row=2)
    times, unit = _times(frame, cfg.time_column, source)
    if cfg.id_column:
        ids = frame[cfg.id_column]
        if ids.isna().any():
            raise DataError(
                f"{source}: column {cfg.id_column!r} (data.id_column) is empty in row "
                f"{int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2}"
            )
        groups = [(str(k), np.asarray(idx)) for k, idx in frame.groupby(cfg.id_column, sort=False).indices.items()]
    else:
        groups = [("the whole file", np.arange(len(frame)))]
    series = []
    for label, idx in groups:
        t = times[idx] if cfg.time_column else np.arange(len(idx), dtype=np.float64)
        static = _static(frame, idx, cfg.condition_columns, label, source)
        series.append(
            _checked(
                Series(label, t, values[idx], static=static),
                source,
                cfg.time_column,
                cfg.id_column,
                cfg.duplicate_times,
            )
        )
    return RawData(source, [str(c) for c in channels], series, unit, by_id=bool(cfg.id_column))


def _static(frame, idx: np.ndarray, columns, label: str, source: str) -> dict:
    """A series' condition values: each column must hold one value throughout the series."""
    out = {}
    for col in columns:
        values = frame[col].iloc[idx].dropna().unique()
        if len(values) != 1:
            what = "no value" if len(values) == 0 else f"{len(values)} values ({', '.join(map(str, values[:3]))})"
            raise DataError(
                f"{source}: series {label!r}: condition column {col!r} has {what}; a condition is one value per series"
            )
        value = values[0]
        out[col] = value.item() if hasattr(value, "item") else value
    return out


# Beyond this, squares and variances overflow float64 while the data are normalised.
LARGEST = 1e100


def _check_finite(values: np.ndarray, names: list[str], source: str, unit: str, first_row: int) -> None:
    """Refuse infinities and values too large to normalise; NaN (an empty cell) means missing.

    `values` is (rows, channels); `first_row` is the number the first row has in the file.
    """
    bad = ~np.isnan(values) & ~(np.abs(values) <= LARGEST)
    if bad.any():
        row, j = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{source}: {names[j]}, {unit} {row + first_row}: {values[row, j]:g} is infinite or beyond "
            f"±{LARGEST:g}; infgan reads empty cells and NaN as missing, not infinities: clean or rescale the data"
        )


def _times(frame, column: str, source: str) -> tuple[np.ndarray, str]:
    """Observation times as float64 and their unit: numbers as they are, dates in seconds then a readable unit."""
    import pandas as pd

    if not column:
        return np.arange(len(frame), dtype=np.float64), "rows"
    col = frame[column]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64), "time units"
    # One format for the whole column, inferred from its first date: month-first, else day-first
    # (13/01/2020 cannot be month-first); only then element by element (ISO dates of mixed precision).
    stamps = _dates(col)
    if stamps is None:
        bad = col.iloc[0]
        raise DataError(
            f"{source}: column {column!r} (data.time_column) holds neither numbers nor dates (e.g. {bad!r})"
        ) from None
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
    diffs = np.diff(np.sort(seconds[~np.isnan(seconds)]))
    median = float(np.median(diffs[diffs > 0])) if (diffs > 0).any() else 1.0
    name, size = next(((n, s) for n, s in _UNITS if s <= median), _UNITS[-1])
    return seconds / size, name


def _dates(col):
    """A column of dates as UTC timestamps (NaT where empty), or None when some cannot be read.

    One format for the whole column, inferred from its first date: month-first, else day-first
    (13/01/2020 cannot be month-first); only then element by element (ISO dates of mixed precision).
    """
    import pandas as pd

    for how in ({}, {"dayfirst": True}, {"format": "mixed"}):
        try:
            with warnings.catch_warnings():  # pandas warns when it falls back to element-wise parsing
                warnings.simplefilter("ignore", UserWarning)
                return pd.to_datetime(col, utc=True, **how)
        except (ValueError, TypeError, OverflowError):
            continue
    return None


def _bad_time_rows(frame, column: str) -> np.ndarray:
    """Rows (a boolean mask) whose time is empty or unreadable while the column's other times are
    numbers (or dates): what `data.bad_times` is about. Nothing when most of the column is unreadable."""
    import pandas as pd

    col = frame[column]
    numbers = pd.to_numeric(col, errors="coerce")
    if numbers.notna().mean() >= 0.5:
        return ~np.isfinite(numbers.to_numpy(dtype=np.float64))  # empty, unreadable or infinite ("inf")
    stamps = _dates(col)  # every value readable in one format: only empty cells are bad
    if stamps is None:  # else the format that reads the most of them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            tries = [pd.to_datetime(col, utc=True, errors="coerce", dayfirst=first) for first in (False, True)]
        stamps = max(tries, key=lambda t: int(t.notna().sum()))
    if stamps.notna().mean() < 0.5:
        return np.zeros(len(col), dtype=bool)  # not a few bad times: the column is not times at all
    return stamps.isna().to_numpy()


def apply_bad_times(cfg: DataConfig, frame, source: str):
    """The frame without its rows of unreadable, empty or infinite times under `data.bad_times: drop`;
    a one-line refusal naming the first such row and the policy under `error`."""
    import pandas as pd

    if not cfg.time_column:
        return frame
    bad = _bad_time_rows(frame, cfg.time_column)
    if not bad.any():
        return frame
    if cfg.bad_times == "drop":
        return frame.loc[~bad].reset_index(drop=True)
    row = int(np.flatnonzero(bad)[0])
    value = frame[cfg.time_column].iloc[row]
    if value is None or value != value or not str(value).strip():
        what = "is empty"
    elif pd.to_numeric(pd.Series([value]), errors="coerce").abs().iloc[0] == np.inf:
        what = f"{str(value)!r} is not finite"
    else:
        what = f"{str(value)!r} cannot be read"
    raise DataError(
        f"{source}: column {cfg.time_column!r} (data.time_column) row {row + 2}: the time {what} "
        f"({int(bad.sum())} such rows); data.bad_times: drop drops them (default: error)"
    )


def merge_duplicate_times(s: Series, policy: str) -> Series:
    """`s` with each run of equal (sorted) times made one row: the first, the last, or the mean of
    each channel over the values present (`data.duplicate_times`)."""
    starts = np.flatnonzero(np.r_[True, np.diff(s.times) != 0])
    if len(starts) == len(s.times):
        return s
    if policy == "first":
        keep = starts
    elif policy == "last":
        keep = np.r_[starts[1:] - 1, len(s.times) - 1]
    else:  # mean
        sums = np.add.reduceat(np.nan_to_num(s.values), starts, axis=0)
        counts = np.add.reduceat((~np.isnan(s.values)).astype(float), starts, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            merged = np.where(counts > 0, sums / counts, np.nan)
        return Series(s.label, s.times[starts], merged, s.group, s.static)
    return Series(s.label, s.times[keep], s.values[keep], s.group, s.static)


def _checked(s: Series, source: str, time_column: str, id_column: str, duplicates: str = "error") -> Series:
    """`s` (duplicate times merged as `duplicates` says), or a DataError naming what is wrong with it."""
    where = f"series {s.label!r} (data.id_column {id_column!r})" if id_column else s.label
    col = f"column {time_column!r}" if time_column else "times"
    if len(s.times) < 2:
        raise DataError(f"{source}: {where} has {len(s.times)} point(s); every series needs at least 2")
    if np.isnan(s.times).any():
        raise DataError(
            f"{source}: {where}: {col} is missing at row {int(np.flatnonzero(np.isnan(s.times))[0]) + 1} of the series"
        )
    step = np.diff(s.times)
    if (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0])
        raise DataError(
            f"{source}: {where}: {col} is not sorted ({s.times[i]:g} then {s.times[i + 1]:g} at rows "
            f"{i + 1}-{i + 2} of the series); sort the file by time (or, if its dates are day-first and "
            "were read month-first, write them as YYYY-MM-DD)"
        )
    if (step == 0).any():
        if duplicates != "error":
            s = merge_duplicate_times(s, duplicates)
            if len(s.times) < 2:
                raise DataError(f"{source}: {where} has a single time once its duplicates are merged; it needs 2")
            return s
        i = int(np.flatnonzero(step == 0)[0])
        raise DataError(
            f"{source}: {where}: duplicate time {s.times[i]:g} in {col} (rows {i + 1} and {i + 2} of the series; "
            f"{int((step == 0).sum())} such rows); set data.duplicate_times to first, last or mean to merge them "
            "(default: error)"
        )
    return s


def _npz_array(arrays, name: str, source: str, numeric: bool = True) -> np.ndarray:
    """One array of an npz file: numbers (float64) or, for names, anything but Python objects."""
    try:
        array = arrays[name]
    except ValueError:  # numpy refuses object arrays without allow_pickle, which infgan never allows
        raise DataError(f"{source}: array {name!r} holds Python objects (pickled); save plain numeric arrays") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{source}: array {name!r} is damaged ({error_line(e)})") from None
    if not numeric:
        return array
    try:
        return np.asarray(array, dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{source}: array {name!r} is not numeric (dtype {array.dtype})") from None


def _read_npz(cfg: DataConfig, p: Path, source: str) -> RawData:
    """Series from arrays `paths`, `t` and `channels` (the layout `infgan sample` writes)."""
    try:
        arrays = np.load(p, allow_pickle=False)
        files = set(arrays.files)
    except ValueError:  # numpy's word for "neither an npz archive nor a .npy array"
        raise DataError(f"{source}: cannot read as npz (not an npz archive); write it with numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{source}: cannot read as npz ({error_line(e)}); write it with numpy.savez") from None
    if "paths" not in files:
        raise DataError(f"{source}: no array 'paths' (series, time, channels); arrays: {', '.join(sorted(files))}")
    paths = _npz_array(arrays, "paths", source)
    by_id = paths.ndim == 3
    if paths.ndim == 2:
        paths = paths[None]
    if paths.ndim != 3:
        raise DataError(f"{source}: 'paths' must be (series, time, channels) or (time, channels), got {paths.shape}")
    n, length, c = paths.shape
    t = _npz_array(arrays, "t", source) if "t" in files else np.arange(length, dtype=np.float64)
    if t.shape not in ((length,), (n, length)):
        raise DataError(f"{source}: 't' must be (time,) or (series, time) matching 'paths' {paths.shape}")
    t = np.broadcast_to(t, (n, length))
    names = [str(x) for x in _npz_array(arrays, "channels", source, numeric=False)] if "channels" in files else []
    names = names or [f"y{i}" for i in range(c)]
    if len(names) != c:
        raise DataError(f"{source}: 'channels' names {len(names)} channels but 'paths' has {c}")
    wanted = list(cfg.columns) or names
    for w in wanted:
        if w not in names:
            raise DataError(f"{source}: no channel {w!r} (data.columns); channels: {', '.join(names)}")
    cols = [names.index(w) for w in wanted]
    for w, j in zip(wanted, cols):
        if np.isnan(paths[..., j]).all():
            raise DataError(f"{source}: channel {w!r} has no values at all; leave it out of data.columns")
    _check_finite(paths.reshape(-1, c)[:, cols], [f"channel {w!r}" for w in wanted], source, "value", first_row=1)
    if cfg.t_size > length:
        # Checked before any series is built: a window past the array's length would be padding
        # only, and a run on thousands of padded points trains for minutes on nothing.
        raise DataError(
            f"{source}: data.t_size {cfg.t_size} is longer than the file's paths ({length} points); "
            f"set data.t_size to at most {length}"
        )
    series = []
    for i in range(n):
        keep = ~np.isnan(t[i])  # NaN times mark the end of a shorter series
        s = Series(f"series {i}" if by_id else "the whole file", t[i][keep], paths[i][keep][:, cols])
        series.append(_checked(s, source, "t" if "t" in files else "", ""))
    return RawData(source, wanted, series, "time units" if "t" in files else "rows", by_id=by_id)
