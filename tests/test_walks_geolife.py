"""Synthetic random-walk families and GeoLife trajectories (a GeoLife-layout tree built here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from infgan.cli import main
from infgan.config import ConfigError, resolve
from infgan.data import build_dataset, walks
from infgan.data.geolife import EARTH_RADIUS_M, read_geolife
from infgan.train.context import RunContext
from infgan.train.loop import fit

from conftest import TINY, tiny


def family(name: str, *sets: str):
    return resolve(sets=[f"data.dataset={name}", "data.size=20000", "data.t_size=8", *sets]).data


@pytest.mark.parametrize("name", walks.FAMILIES)
def test_each_family_has_its_increments_and_matches_its_reference_quantiles(name):
    cfg = family(name, "data.scale=2.0", "data.truncation=1.5")
    inc = walks.increments(cfg, cfg.size, torch.Generator().manual_seed(0))[..., 0].numpy().ravel()
    if name == "gauss":
        assert np.std(inc) == pytest.approx(2.0, rel=0.02)
    if name == "trunc_gauss":
        assert np.abs(inc).max() <= 3.0 and np.std(inc) == pytest.approx(
            2.0 * stats.truncnorm(-1.5, 1.5).std(), rel=0.02
        )
    if name == "uniform":
        assert np.abs(inc).max() <= 2.0 and np.var(inc) == pytest.approx(4.0 / 3, rel=0.03)
    if name == "cauchy":
        assert np.median(np.abs(inc)) == pytest.approx(2.0, rel=0.03)  # |Cauchy(0, s)| has median s
    reference, how = walks.reference_quantiles(cfg)
    assert how == ("closed form" if name in ("gauss", "cauchy") else "Monte Carlo")
    paths = walks.sample(cfg, torch.Generator().manual_seed(1))[..., 0].numpy()
    empirical = np.quantile(paths, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0).T
    iqr = reference[:, 3] - reference[:, 1]
    shown = slice(1, 4) if name == "cauchy" else slice(0, 5)  # Cauchy's 5 % and 95 % points are too noisy
    assert np.all(np.abs(empirical - reference)[:, shown] < 0.06 * iqr[:, None])


def test_dimensions_are_correlated_through_the_copula_and_impossible_correlations_are_refused():
    cfg = family("uniform", "data.dims=3", "data.correlation=0.6")
    inc = walks.increments(cfg, cfg.size, torch.Generator().manual_seed(0))[:, 0].numpy()
    rho = stats.spearmanr(inc[:, 0], inc[:, 1]).statistic
    assert rho == pytest.approx(6 / np.pi * np.arcsin(0.3), abs=0.02)  # Spearman's rho of a Gaussian copula
    assert np.abs(inc).max() <= 1.0  # each dimension still uniform on [-1, 1]
    with pytest.raises(ConfigError, match="impossible for 3 dimensions"):
        resolve(sets=["data.dataset=gauss", "data.dims=3", "data.correlation=-0.6"])


@pytest.mark.slow
def test_a_family_preset_trains(tmp_path):
    summary = fit(resolve(source="cauchy", sets=TINY), tmp_path / "r", RunContext(progress=False))
    assert summary["status"] in ("completed", "diverged") and summary["steps"] > 0
    ds = build_dataset(resolve(source="cauchy", sets=TINY).data, 0)
    assert ds.names == ["x1", "x2"] and ds.train.shape[-1] == 3


# --- GeoLife -----------------------------------------------------------------------------------

HEADER = "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n"
DAY = 86400.0
START = 39744.0  # 2008-10-23 in GeoLife's day count (days since 1899-12-30)


def write_plt(path: Path, seconds: list[float], lat: list[float], lon: list[float]) -> None:
    lines = [f"{a:.6f},{o:.6f},0,492,{START + s / DAY:.10f},2008-10-23,00:00:00" for s, a, o in zip(seconds, lat, lon)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n".join(lines) + "\n")


def geolife_tree(root: Path, users: int = 4) -> Path:
    """Users 000..: each one recording of two trips (a 20-minute gap between), 5 s apart, walking
    north at 1.4 m/s; user 000 has a duplicated timestamp and labels (walk, then bus)."""
    rng = np.random.default_rng(0)
    for u in range(users):
        seconds = [5.0 * i for i in range(40)] + [1200 + 5.0 * i for i in range(30)]
        lat = [39.9 + u * 0.01 + 1.4 * s / (EARTH_RADIUS_M * np.pi / 180) for s in seconds]
        lon = [116.3 + 1e-6 * rng.standard_normal() for _ in seconds]
        if u == 0:
            seconds[3] = seconds[2]
        write_plt(root / "Data" / f"{u:03d}" / "Trajectory" / "20081023000000.plt", seconds, lat, lon)
    (root / "Data" / "000" / "labels.txt").write_text(
        "Start Time\tEnd Time\tTransportation Mode\n"
        "2008/10/23 00:00:00\t2008/10/23 00:05:00\twalk\n"
        "2008/10/23 00:19:00\t2008/10/23 00:30:00\tbus\n"
    )
    return root


def geolife(root: Path, *sets: str):
    return resolve(sets=["data.dataset=geolife", f"data.path={root}", "data.duplicate_times=first", *sets]).data


def test_geolife_trips_are_split_at_gaps_in_metres_from_their_start(tmp_path):
    raw = read_geolife(geolife(geolife_tree(tmp_path)))
    assert raw.channels == ["x_m", "y_m"] and raw.time_unit == "seconds" and raw.by_id
    assert len(raw.series) == 8  # 4 users x 2 trips
    first = raw.series[0]
    assert (
        first.label == "000/20081023000000#0"
        and first.group == "000"
        and first.static == {"mode": "walk", "user": "000"}
    )
    assert len(first.times) == 39  # the duplicated timestamp kept once
    assert np.allclose(first.values[0], 0) and np.abs(first.values[:, 0]).max() < 0.5  # no eastward movement
    # Walking north at 1.4 m/s: y grows by 7 m per 5 s point.
    # (PLT files keep 6 decimals of a degree: 0.11 m, so 0.02 m/s over 5 s.)
    assert np.allclose(np.diff(first.values[:, 1]) / np.diff(first.times), 1.4, atol=0.03)
    assert raw.series[1].static["mode"] == "bus" and raw.series[2].static["mode"] == ""
    only_bus = read_geolife(geolife(tmp_path, "data.modes=[bus]"))
    assert [s.label for s in only_bus.series] == ["000/20081023000000#1"]
    regular = read_geolife(geolife(tmp_path, "data.resample=10"))
    assert all((np.diff(s.times) == 10).all() for s in regular.series)


def test_geolife_holds_out_whole_users_and_trains(tmp_path):
    cfg = tiny(
        "data.dataset=geolife",
        f"data.path={geolife_tree(tmp_path)}",
        "data.duplicate_times=first",
        "data.val_fraction=0.25",
        "data.t_size=16",
    )
    ds = build_dataset(cfg.data, cfg.seed)
    assert ds.names == ["x_m", "y_m"] and ds.time_unit == "seconds" and ds.time_scale == pytest.approx(5.0)
    summary = fit(cfg, tmp_path / "run", RunContext(progress=False))
    assert summary["status"] == "completed"


def test_geolife_refusals_are_one_line(tmp_path, capsys):
    geolife_tree(tmp_path)
    cases = [
        ([f"data.path={tmp_path / 'nothing'}"], "no GeoLife trajectories (Data/<user>/Trajectory/*.plt)"),
        ([f"data.path={tmp_path}", "data.duplicate_times=error"], "duplicate time at points 3 and 4"),
        ([f"data.path={tmp_path}", "data.modes=[boat]"], "no trip of modes boat"),
    ]
    for sets, message in cases:
        args = ["data", "describe", "--set", "data.dataset=geolife", *(x for s in sets for x in ("--set", s))]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    bad = tmp_path / "bad"
    write_plt(bad / "Data" / "001" / "Trajectory" / "x.plt", [0, 5, 10, 15], [95, 95, 95, 95], [116] * 4)
    assert main(["data", "describe", "--set", "data.dataset=geolife", "--set", f"data.path={bad}"]) == 2
    assert "are not coordinates" in capsys.readouterr().err
