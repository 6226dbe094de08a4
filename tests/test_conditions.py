"""Conditional generation: data.condition_columns feed the generator and critic; sample --condition."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from infgan.cli import main
from infgan.data import build_dataset, conditions
from infgan.train.context import RunContext
from infgan.train.loop import fit

from conftest import tiny


def trends(path, n: int = 60, t: int = 16) -> None:
    """Series around +3 ("up") or -3 ("down"), drifting up or down a little, told apart by the column `kind`."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        kind = "up" if i % 2 else "down"
        sign = 1.0 if kind == "up" else -1.0
        y = sign * (3.0 + 0.1 * np.arange(t)) + 0.3 * rng.standard_normal(t).cumsum()
        rows += [{"id": f"s{i}", "t": float(j), "y": y[j], "kind": kind, "size": 2.0 + i % 3} for j in range(t)]
    pd.DataFrame(rows).to_csv(path, index=False)


def cfg_for(path, *sets):
    return tiny(
        "data.dataset=csv",
        f"data.path={path}",
        "data.time_column=t",
        "data.id_column=id",
        "data.t_size=16",
        "data.condition_columns=[kind]",
        *sets,
    )


def test_conditions_are_encoded_per_series_and_refused_when_unknown(tmp_path):
    trends(tmp_path / "d.csv")
    ds = build_dataset(cfg_for(tmp_path / "d.csv", "data.condition_columns=[kind, size]").data, 0)
    assert ds.names == ["y"]  # condition columns are not channels
    specs = ds.condition_specs
    assert specs[0] == {"name": "kind", "kind": "category", "values": ["down", "up"]} and specs[1]["kind"] == "number"
    assert ds.cond_train.shape == (ds.train.size(0), 3) and ds.cond_val.shape == (ds.val.size(0), 3)
    switched = cfg_for(tmp_path / "d.csv", "data.condition_columns=[kind, size]", "data.conditional=false")
    off = build_dataset(switched.data, 0)  # the search-space switch: the same data, no conditions
    assert off.cond_train is None and off.cond_width == 0 and torch.equal(off.train, ds.train)
    ups = [r["kind"] == "up" for r in ds.cond_rows]
    assert torch.equal(ds.cond_train[:, 1], torch.tensor(ups, dtype=torch.float32))
    with pytest.raises(Exception, match="'left' was never seen in training; allowed: down, up"):
        conditions.parse(specs, ["kind=left", "size=2"])
    with pytest.raises(Exception, match="missing size"):
        conditions.parse(specs, ["kind=up"])


@pytest.mark.slow
def test_generated_paths_follow_their_condition(tmp_path, capsys):
    trends(tmp_path / "d.csv")
    # Sizes at which a tiny run learns both modes (measured: with hidden 8, or 300 steps, it keeps one).
    sets = ["train.steps=1000", "eval.every=250", "checkpoint.every=250", "train.batch_size=64", "train.swa_start=800"]
    cfg = cfg_for(tmp_path / "d.csv", *sets, "model.hidden_size=16", "model.mlp_size=16")
    run = tmp_path / "run"
    summary = fit(cfg, run, RunContext(progress=False))
    assert summary["status"] == "completed"
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "val/cond/kind=up/score" in last and "val/cond/kind=down/score" in last  # beside the average
    finals = {}
    for kind in ("up", "down"):
        out = tmp_path / f"{kind}.npz"
        assert main(["sample", str(run), "-n", "200", "--condition", f"kind={kind}", "--out", str(out)]) == 0
        data = np.load(out)
        assert (data["condition_kind"] == kind).all()
        finals[kind] = float(np.median(data["paths"][:, -1, 0]))
    # Real finals: about +4.5 (up) and -4.5 (down); the generated ones follow their condition.
    assert finals["up"] > 1.5 and finals["down"] < -1.5, finals
    assert main(["sample", str(run), "-n", "50", "--out", str(tmp_path / "drawn.npz")]) == 0
    drawn = np.load(tmp_path / "drawn.npz")
    assert set(drawn["condition_kind"]) == {"up", "down"}  # drawn from the training series' conditions

    # The exported generator: the same paths, drawn or under a given condition, without infgan.
    assert main(["export", str(run), "--out", str(tmp_path / "g.ts")]) == 0
    script = (
        "import sys, numpy as np, torch\n"
        "sys.modules['infgan'] = None\n"
        "m = torch.jit.load(sys.argv[1])\n"
        "np.savez(sys.argv[2], up=m.conditioned(200, 0, {'kind': 'up'}).numpy(), drawn=m(50, 0).numpy())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "g.ts"), str(tmp_path / "e.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    exported = np.load(tmp_path / "e.npz")
    assert np.allclose(exported["up"], np.load(tmp_path / "up.npz")["paths"], rtol=1e-4, atol=1e-4)
    assert np.allclose(exported["drawn"], drawn["paths"], rtol=1e-4, atol=1e-4)

    # Refusals: one line, exit 2.
    for args, message in [
        (["--condition", "kind=left"], "'left' was never seen in training"),
        (["--condition", "colour=red"], "NAME one of kind"),
    ]:
        assert main(["sample", str(run), "-n", "5", "--out", str(tmp_path / "x.npz"), *args]) == 2
        assert message in capsys.readouterr().err


def test_condition_columns_are_refused_where_there_is_nothing_to_condition_on(tmp_path, capsys):
    trends(tmp_path / "d.csv")
    base = [
        "data",
        "describe",
        "--set",
        "data.dataset=csv",
        "--set",
        f"data.path={tmp_path / 'd.csv'}",
        "--set",
        "data.time_column=t",
        "--set",
        "data.condition_columns=[kind]",
    ]
    assert main(base) == 2  # no id column: one long series
    assert "set data.id_column to tell the series apart" in capsys.readouterr().err
    assert main(["data", "describe", "--set", "data.condition_columns=[kind]"]) == 2  # OU
    assert "ou data has no per-series columns to condition on" in capsys.readouterr().err
    frame = pd.read_csv(tmp_path / "d.csv")
    frame.loc[3, "kind"] = "up" if frame.loc[3, "kind"] == "down" else "down"
    frame.to_csv(tmp_path / "e.csv", index=False)
    assert main([*base[:5], f"data.path={tmp_path / 'e.csv'}", *base[6:], "--set", "data.id_column=id"]) == 2
    assert "condition column 'kind' has 2 values" in capsys.readouterr().err
