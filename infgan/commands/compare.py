"""`infgan compare`: Ray Tune sweeps and W&B sweeps side by side, on one budget axis (training steps).

Every source becomes a list of trials with their evaluation records (`step`, the metric,
`time/unix`), so one best-so-far computation serves all of them. Sweeps of one strategy (a Ray
Tune sweep's searcher + scheduler, e.g. several seeds of `tpe+asha`) are drawn as their median
best-so-far curve with the band between the 25th and 75th percentiles, and summed up per strategy:

- an infgan sweep directory (`sweep.yaml` inside): its trials' metrics.jsonl;
- a directory holding W&B runs (`offline-run-*`/`run-*` with a `.wandb` file, e.g. `wandb/` of
  an agent's working directory): read with W&B's own reader, `wandb leet inspect --json`;
  runs are grouped by their W&B group (a sweep's runs, or an infgan sweep's trials);
- a CSV export of a W&B runs table: one row per run, the metric (`best/val/score` preferred,
  else `val/score`), training steps (`steps`, else `step`/`_step`), `Created` and `Runtime`;
- `ENTITY/PROJECT/SWEEP_ID`: the sweep's runs through the W&B API (online, needs a key).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from infgan import objective
from infgan.config import ConfigError
from infgan.outputs import check_output
from infgan.text import error_line, format_table
from infgan.tune.results import TrialResult, best_so_far, collect, load_sweep


@dataclass
class Sweep:
    """One sweep's trials, the metric oriented so that lower is better."""

    label: str
    source: str
    trials: list[TrialResult]
    strategy: str = ""  # what its curve is grouped under; the label when unknown

    def row(self, metric: str, sign: float) -> dict[str, Any]:
        progress = best_so_far(self.trials)
        times = [float(r["time/unix"]) for t in self.trials for r in t.records if r.get("time/unix")]
        return {
            "sweep": self.label,
            "strategy": self.strategy or self.label,
            "source": self.source,
            "trials": len(self.trials),
            f"best {metric}": sign * progress[-1][2] if progress else math.nan,
            "total steps": int(progress[-1][0]) if progress else 0,
            "wall time (min)": round((max(times) - min(times)) / 60, 2) if times else math.nan,
        }


def _trial(name: str, records: list[dict[str, Any]], metric: str, sign: float, status: str = "") -> TrialResult:
    records = sorted((r for r in records if "step" in r), key=lambda r: r["step"])
    scores = [sign * float(r[metric]) for r in records if metric in r and r[metric] is not None]
    records = [r for r in records if metric in r and r[metric] is not None]
    wall = records[-1].get("time/wall_s", 0.0) if records else 0.0
    return TrialResult(name, Path(name), {}, records, status, wall, scores)


def read_wandb_run(path: Path) -> dict[str, Any]:
    """A W&B run directory's config, group, id, state, summary and history, via `wandb leet inspect --json`."""
    cmd = [sys.executable, "-m", "wandb", "leet", "inspect", str(path), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ConfigError(f"{path}: W&B could not read this run ({error_line(proc.stderr, last=True)})")
    run: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "group": "", "id": path.name}
    for line in proc.stdout.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = rec.get("type")
        if kind == "run":
            r = rec["run"]
            run.update(group=r.get("run_group", ""), id=r.get("run_id", run["id"]))
            run["config"] = {k: v for k, v in r.get("config", {}).get("update", {}).items() if k != "_wandb"}
        elif kind == "config":
            run["config"].update({k: v for k, v in rec["config"].get("update", {}).items() if k != "_wandb"})
        elif kind == "history":
            run["history"].append(rec["history"]["item"])
        elif kind == "summary":
            run["summary"].update(rec["summary"].get("update", {}))
    return run


def _wandb_dir(root: Path, metric: str, sign: float) -> list[Sweep]:
    """W&B runs found under `root`, one Sweep per W&B group (runs resumed offline merged by id)."""
    runs: dict[str, dict[str, Any]] = {}
    for wandb_file in sorted(root.rglob("*.wandb")):
        run = read_wandb_run(wandb_file.parent)
        into = runs.setdefault(run["id"], {**run, "history": []})
        into["history"] += run["history"]
    if not runs:
        raise ConfigError(f"{root}: no W&B runs (offline-run-*/run-* directories with a .wandb file) inside")
    groups: dict[str, list[TrialResult]] = {}
    for run_id, run in runs.items():
        by_step = {h["step"]: h for h in run["history"] if "step" in h and metric in h}  # a resumed run re-logs steps
        records = [{**h, "time/unix": h.get("time/unix", h.get("_timestamp"))} for h in by_step.values()]
        groups.setdefault(run["group"] or root.name, []).append(_trial(run_id, records, metric, sign))
    return [Sweep(f"{group} (W&B)", f"W&B runs in {root}", trials) for group, trials in groups.items()]


def _first(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((row[n] for n in names if row.get(n) not in (None, "")), None)


def _csv(path: Path, metric: str, sign: float) -> Sweep:
    """A W&B runs-table CSV export: one trial per row, its best value at its last step."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ConfigError(f"{path}: no rows")
    names = (f"best/{metric}", metric)
    if not any(n in rows[0] for n in names):
        raise ConfigError(f"{path}: no column {names[0]!r} or {names[1]!r}; columns: {', '.join(rows[0])}")
    trials = []
    for i, row in enumerate(rows):
        value, steps = _first(row, names), _first(row, ("steps", "step", "_step"))
        if value is None or steps is None:
            continue
        created = _first(row, ("Created", "created_at"))
        start = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() if created else float(i)
        runtime = float(_first(row, ("Runtime", "_runtime")) or 0.0)
        record = {"step": int(float(steps)), metric: float(value), "time/unix": start + runtime, "time/wall_s": runtime}
        trials.append(_trial(row.get("Name") or f"row {i + 1}", [record], metric, sign, row.get("State", "")))
    if not trials:
        raise ConfigError(f"{path}: no row has both {metric} and a step count (steps, step or _step)")
    return Sweep(f"{path.stem} (W&B CSV)", f"W&B CSV export {path}", trials)


def _api(path: str, metric: str, sign: float) -> Sweep:
    """A W&B sweep's runs through the public API (needs a key and a network)."""
    from infgan.wandb.tracking import Tracking, check

    check(Tracking(mode="online"))
    import wandb

    try:
        sweep = wandb.Api().sweep(path)
        trials = [
            _trial(run.id, list(run.scan_history(keys=["step", metric, "time/unix"])), metric, sign, run.state)
            for run in sweep.runs
        ]
    except Exception as e:  # the API raises many kinds (network, auth, not found): one line for each
        raise ConfigError(f"{path}: cannot read this W&B sweep: {error_line(e)}") from None
    return Sweep(f"{path.split('/')[-1]} (W&B API)", f"W&B sweep {path}", trials)


def strategy(record: dict[str, Any]) -> str:
    """A Ray Tune sweep's strategy from its sweep.yaml: searcher, then scheduler unless none."""
    from infgan.tune.schedulers import SCHEDULERS

    searcher, scheduler = record.get("searcher", "tpe"), record.get("scheduler", "asha")
    if scheduler in SCHEDULERS and SCHEDULERS[scheduler].population:
        return scheduler  # PBT draws its own population: no searcher
    return searcher if scheduler == "none" else f"{searcher}+{scheduler}"


def curve_at(curve: list[tuple[float, float]], grid: Any) -> Any:
    """A best-so-far step curve read at each grid step (inf before its first value, then held)."""
    import numpy as np

    xs = np.array([x for x, _ in curve], dtype=float)
    ys = np.array([y for _, y in curve], dtype=float)
    idx = np.searchsorted(xs, grid, side="right") - 1
    return np.where(idx >= 0, ys[np.clip(idx, 0, None)] if len(ys) else np.inf, np.inf)


def median_band(curves: list[list[tuple[float, float]]], points: int = 200) -> dict[str, list[float]]:
    """Median and 25th-75th percentile band of several best-so-far curves on one step grid.

    Curves are oriented lower-is-better; the grid runs to the longest curve's last step, each curve
    holding its last value after it ends. Grid steps where some curve has no value yet are left out.
    """
    import numpy as np

    end = max((c[-1][0] for c in curves if c), default=0.0)
    grid = np.linspace(0.0, end, points)
    values = np.stack([curve_at(c, grid) for c in curves])
    keep = np.isfinite(values).all(axis=0)
    q25, q50, q75 = (np.percentile(values[:, keep], q, axis=0) for q in (25, 50, 75))
    return {"steps": grid[keep].tolist(), "median": q50.tolist(), "q25": q25.tolist(), "q75": q75.tolist()}


def strategy_rows(sweeps: list[Sweep], metric: str, sign: float) -> list[dict[str, Any]]:
    """Per strategy: number of sweeps, median and interquartile range of their final best values."""
    import numpy as np

    groups: dict[str, list[Sweep]] = {}
    for sw in sweeps:
        groups.setdefault(sw.strategy or sw.label, []).append(sw)
    rows = []
    for name, members in groups.items():
        finals = [sign * best_so_far(m.trials)[-1][2] for m in members if m.trials]
        q25, q50, q75 = np.percentile(finals, [25, 50, 75]) if finals else (math.nan,) * 3
        rows.append(
            {
                "strategy": name,
                "sweeps": len(members),
                f"median best {metric}": float(q50),
                "IQR": f"{float(q25):.4g} - {float(q75):.4g}",
            }
        )
    return rows


def load_sources(paths: list[str], metric: str, sign: float) -> list[Sweep]:
    """Every source as Sweeps (a directory of W&B runs may hold several groups)."""
    out: list[Sweep] = []
    for raw in paths:
        p = Path(raw)
        if (p / "sweep.yaml").exists():
            record, trials = collect(p)
            if record["metric"] != metric:
                raise ConfigError(f"{p}: this sweep optimised {record['metric']}, not {metric} (--metric)")
            out.append(Sweep(f"{p.name} (Ray Tune)", f"Ray Tune sweep {p}", trials, strategy(record)))
        elif p.is_dir():
            out += _wandb_dir(p, metric, sign)
        elif p.suffix.lower() == ".csv" and p.is_file():
            out.append(_csv(p, metric, sign))
        elif re.fullmatch(r"[\w.-]+/[\w.-]+/[\w-]+", raw) and not p.exists():
            out.append(_api(raw, metric, sign))
        else:
            raise ConfigError(
                f"{raw}: not a sweep directory, a directory of W&B runs, a .csv export or ENTITY/PROJECT/SWEEP_ID"
            )
    return out


def objective_mode(paths: list[str], mode: str | None) -> str:
    """The comparison's mode: `mode` if given, else that of the Ray Tune sweeps among `paths`, else min.

    Every source is oriented with this one mode; a Tune sweep optimised the other way is refused.
    """
    tune_modes = {str(load_sweep(Path(p))["mode"]): p for p in paths if (Path(p) / "sweep.yaml").exists()}
    if mode is None:
        if len(tune_modes) > 1:
            raise ConfigError(
                "these Ray Tune sweeps optimised their metric in different directions (min and max); "
                "compare sweeps of one mode"
            )
        mode = next(iter(tune_modes), "min")
    for m, p in tune_modes.items():
        if m != mode:
            raise ConfigError(f"{p}: this sweep's mode is {m}, not {mode} (--mode)")
    return mode


def compare(paths: list[str], out_dir: Path, metric: str = "val/score", mode: str | None = None) -> str:
    """Write compare.csv and compare.png to `out_dir`; returns the table as text.

    `mode` says whether lower (min) or higher (max) values of `metric` are better; by default the
    Ray Tune sweeps' own mode, else min.
    """
    from infgan.plots import plot_comparison

    sign = objective.sign(objective_mode(paths, mode))
    sweeps = load_sources(paths, metric, sign)
    rows = [s.row(metric, sign) for s in sweeps]
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "compare.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    groups: dict[str, list[list[tuple[float, float]]]] = {}
    for s in sweeps:
        groups.setdefault(s.strategy or s.label, []).append([(steps, best) for steps, _, best in best_so_far(s.trials)])
    plot_comparison(
        {name: (curves[0] if len(curves) == 1 else median_band(curves)) for name, curves in groups.items()},
        metric,
        sign,
        out_dir / "compare.png",
    )
    text = format_table(list(rows[0]), [list(r.values()) for r in rows])
    if any(len(c) > 1 for c in groups.values()):
        by_strategy = strategy_rows(sweeps, metric, sign)
        with (out_dir / "compare_strategies.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(by_strategy[0]))
            w.writeheader()
            w.writerows(by_strategy)
        text += "\n\n" + format_table(list(by_strategy[0]), [list(r.values()) for r in by_strategy])
    return text


# The command line


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a Ray Tune sweep directory, a directory of W&B runs (offline-run-* inside), "
        "a W&B runs CSV export, or ENTITY/PROJECT/SWEEP_ID (online)",
    )
    p.add_argument("--out", metavar="DIR", help="where the table and plot go (default runs/compare-<time>)")
    p.add_argument("--metric", default="val/score", help="metric to compare (default val/score)")
    p.add_argument(
        "--mode",
        choices=("min", "max"),
        help="whether lower (min) or higher (max) values are better (default: the Ray Tune sweeps' own mode, else min)",
    )


def run(args: argparse.Namespace) -> int:
    out = check_output(Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}"), "dir", "--out")
    print(compare(args.paths, out, args.metric, args.mode))
    print(f"table {out / 'compare.csv'}, plot {out / 'compare.png'}")
    return 0
