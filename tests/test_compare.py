"""`infgan compare` orients every source with one mode: a `mode: max` sweep's best is its highest value;
sweeps of one strategy are summed up as a median and band."""

from __future__ import annotations

import csv
import json

import yaml

from infgan.cli import main


def fake_sweep(root, mode: str, values: dict[str, list[float]], metric: str = "val/acc", **record):
    """A sweep directory as `infgan tune` leaves it, with one record per (trial, value), 10 steps apart."""
    root.mkdir(parents=True)
    (root / "sweep.yaml").write_text(
        yaml.safe_dump(
            {"name": "fake.yaml", "metric": metric, "mode": mode, "parameters": [], "distributions": [], **record}
        )
    )
    t0 = 1_000_000.0
    for i, (trial, vals) in enumerate(values.items()):
        d = root / "trials" / trial
        d.mkdir(parents=True)
        (d / "params.json").write_text("{}")
        records = [{"step": 10 * j, metric: v, "time/unix": t0 + 100 * i + j} for j, v in enumerate(vals)]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def best_column(out):
    with (out / "compare.csv").open() as fh:
        return [float(row["best val/acc"]) for row in csv.DictReader(fh)]


def test_max_sweep_best_is_its_highest_value(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "acc", "max", {"a": [0.5, 0.7, 0.6], "b": [0.55, 0.9]})
    out = tmp_path / "cmp"
    assert main(["compare", str(sweep), "--metric", "val/acc", "--out", str(out)]) == 0
    assert best_column(out) == [0.9]
    assert "0.9" in capsys.readouterr().out


def test_min_and_max_sweeps_are_not_mixed(tmp_path, capsys):
    a = fake_sweep(tmp_path / "a", "max", {"t": [0.5]})
    b = fake_sweep(tmp_path / "b", "min", {"t": [0.5]})
    assert main(["compare", str(a), str(b), "--metric", "val/acc", "--out", str(tmp_path / "o")]) == 2
    assert "different directions" in capsys.readouterr().err
    assert main(["compare", str(a), "--metric", "val/acc", "--mode", "min", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mode is max, not min" in err[0]


def test_explicit_mode_orients_a_wandb_csv(tmp_path):
    export = tmp_path / "runs.csv"
    export.write_text("Name,val/acc,steps,Runtime\nr1,0.4,100,10\nr2,0.8,100,12\n")
    for mode, want in (("max", 0.8), ("min", 0.4)):
        out = tmp_path / mode
        assert main(["compare", str(export), "--metric", "val/acc", "--mode", mode, "--out", str(out)]) == 0
        assert best_column(out) == [want]


def test_sweeps_of_one_strategy_are_summed_up_per_strategy(tmp_path, capsys):
    """Three seeds of TPE + ASHA (the default record) and two of W&B's engine: one row per strategy."""
    tpe = [fake_sweep(tmp_path / f"tpe{i}", "min", {"t": [5.0, v]}) for i, v in enumerate([0.3, 0.1, 0.2])]
    wb = [
        fake_sweep(tmp_path / f"wb{i}", "min", {"t": [5.0, v]}, searcher="wandb-bayes", scheduler="wandb-hyperband")
        for i, v in enumerate([0.4, 0.6])
    ]
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, tpe + wb), "--metric", "val/acc", "--out", str(out)]) == 0
    with (out / "compare_strategies.csv").open() as fh:
        by = {row["strategy"]: row for row in csv.DictReader(fh)}
    assert set(by) == {"tpe+asha", "wandb-bayes+wandb-hyperband"}
    assert by["tpe+asha"]["sweeps"] == "3" and float(by["tpe+asha"]["median best val/acc"]) == 0.2
    assert float(by["wandb-bayes+wandb-hyperband"]["median best val/acc"]) == 0.5
    assert (out / "compare.png").stat().st_size > 0
    assert "tpe+asha" in capsys.readouterr().out


def test_median_band_holds_each_curve_after_it_ends():
    from infgan.commands.compare import median_band

    band = median_band([[(0, 3.0), (10, 1.0)], [(0, 2.0), (20, 0.5)], [(0, 4.0), (5, 2.0)]], points=5)
    assert band["steps"] == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert band["median"] == [3.0, 2.0, 2.0, 2.0, 1.0]  # curve 3 holds 2.0 after step 5, curve 1 holds 1.0
    assert all(lo <= m <= hi for lo, m, hi in zip(band["q25"], band["median"], band["q75"]))
