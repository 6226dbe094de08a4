"""Sweep results from the files alone (no Ray): table, results.csv, best_config.yaml, best.json, plots.

Works on a finished or an interrupted sweep (`infgan report EXP_DIR`).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infgan import objective
from infgan.atomic import write_json_atomic
from infgan.config import ConfigError
from infgan.objective import PATH_METRICS, floor_name, with_floor
from infgan.text import cell, format_table
from infgan.train.checkpoint import latest_checkpoint
from infgan.train.run_dir import RunDir

STATUSES = ("completed", "stopped", "diverged", "incomplete")


@dataclass
class TrialResult:
    """One trial, read from its run directory."""

    trial_id: str
    run_dir: Path
    params: dict[str, Any]
    records: list[dict[str, Any]]
    status: str
    wall_s: float
    scores: list[float] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.records[-1]["step"] if self.records else 0

    @property
    def best(self) -> float:
        finite = [s for s in self.scores if math.isfinite(s)]
        return min(finite) if finite else math.nan

    @property
    def last(self) -> float:
        return self.scores[-1] if self.scores else math.nan

    def latest(self, key: str) -> dict[str, Any]:
        """The last record that holds `key` ({} if none)."""
        return next((r for r in reversed(self.records) if key in r), {})


def load_sweep(exp_dir: Path) -> dict[str, Any]:
    """The sweep's record (sweep.yaml), or a one-line error."""
    path = exp_dir / "sweep.yaml"
    if not path.exists():
        raise ConfigError(f"{exp_dir}: not an infgan sweep directory (no sweep.yaml)")
    return yaml.safe_load(path.read_text())


def collect(exp_dir: Path) -> tuple[dict[str, Any], list[TrialResult]]:
    """The sweep record and every trial that has written anything."""
    sweep = load_sweep(exp_dir)
    sign = objective.sign(sweep["mode"])
    stopped: set[str] = set()
    from infgan.tune.pbt import current_params
    from infgan.tune.schedulers import SCHEDULERS

    states = {k.state_file for k in SCHEDULERS.values() if k.state_file}
    for scheduler_state in sorted(states):  # which trials ASHA or W&B's hyperband stopped
        path = exp_dir / scheduler_state
        stopped |= set(json.loads(path.read_text()).get("stopped", [])) if path.exists() else set()
    trials = []
    members = current_params(exp_dir)
    root = exp_dir / "trials"
    started = [d for d in (root.iterdir() if root.is_dir() else []) if (d / "params.json").exists()]
    for d in sorted(started, key=lambda d: (d / "params.json").stat().st_mtime):
        run = RunDir(d)
        if not run.metrics_path.exists():
            continue
        records = run.read_metrics()
        summary = json.loads(run.summary_path.read_text()) if run.summary_path.exists() else None
        if summary is not None:
            status = summary["status"]
        elif d.name in stopped:
            status = "stopped"
        else:
            status = "incomplete"
        wall = records[-1].get("time/wall_s", 0.0) if records else 0.0
        scores = [sign * r[sweep["metric"]] for r in records if sweep["metric"] in r]
        # A PBT member's parameters as its last exploit left them (its params.json holds its first ones).
        params = members.get(d.name) or json.loads((d / "params.json").read_text())
        trials.append(TrialResult(d.name, d, params, records, status, wall, scores))
    return sweep, trials


def best_trial(trials: list[TrialResult]) -> TrialResult | None:
    """The trial with the best evaluated value (scores are already oriented so lower is better)."""
    ranked = [t for t in trials if math.isfinite(t.best)]
    return min(ranked, key=lambda t: t.best) if ranked else None


def shown_metrics(sweep: dict[str, Any], trials: list[TrialResult]) -> list[str]:
    """The sweep metric's floor and the path-level metrics (with floors) that some trial reported."""
    keys = [floor_name(sweep["metric"])]
    for k in PATH_METRICS:
        keys += [k, floor_name(k)]
    return [k for k in keys if any(t.latest(k) for t in trials)]


def write_csv(path: Path, sweep: dict[str, Any], trials: list[TrialResult], checked: list | None = None) -> None:
    """results.csv: one row per trial (path-level metrics: each trial's latest value; for a confirmed
    trial, the median, lowest and highest final value over its fresh seeds)."""
    sign = objective.sign(sweep["mode"])
    params = sweep["parameters"]
    extra = shown_metrics(sweep, trials)
    by_trial = {c.of: c for c in checked or []}
    confirm_cols = ["confirmed_median", "confirmed_min", "confirmed_max", "confirmed_seeds"] if by_trial else []
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "trial_id",
                "status",
                "steps",
                f"best_{sweep['metric']}",
                f"last_{sweep['metric']}",
                "wall_s",
                *extra,
                *confirm_cols,
                *params,
            ]
        )
        for t in trials:
            c = by_trial.get(t.trial_id)
            confirmed = [c.median, min(c.values), max(c.values), " ".join(map(str, c.seeds))] if c else ["", "", "", ""]
            w.writerow(
                [
                    t.trial_id,
                    t.status,
                    t.steps,
                    sign * t.best,
                    sign * t.last,
                    round(t.wall_s, 2),
                    *[t.latest(k).get(k, "") for k in extra],
                    *confirmed[: len(confirm_cols)],
                    *[t.params.get(p, "") for p in params],
                ]
            )


def confirmed_table(sweep: dict[str, Any], checked: list) -> str:
    """The confirmed configs, best median first: each seed's final value, median and range."""
    params = sweep["parameters"]
    head = ["of trial", "seeds", "median", "lowest", "highest", "values", *[p.split(".")[-1] for p in params]]
    rows = [
        [
            c.of,
            len(c.values),
            c.median,
            min(c.values),
            max(c.values),
            " ".join(f"{v:.3g}" for v in c.values),
            *[cell(c.params[p]) if p in c.params else "-" for p in params],
        ]
        for c in checked
    ]
    return format_table(head, rows)


def table(sweep: dict[str, Any], trials: list[TrialResult]) -> str:
    """The results table, best first; the metric's floor and the latest path-level metrics where reported."""
    sign = objective.sign(sweep["mode"])
    params = sweep["parameters"]
    shown = shown_metrics(sweep, trials)
    floor, path_level = (
        [k for k in shown[:1] if k == floor_name(sweep["metric"])],
        [k for k in shown if k in PATH_METRICS],
    )
    head = [
        "trial",
        "status",
        "steps",
        "best",
        "last",
        *["floor"] * len(floor),
        "wall_s",
        *[k.split("/")[-1] for k in path_level],
        *[p.split(".")[-1] for p in params],
    ]
    rows = [
        [
            t.trial_id,
            t.status,
            t.steps,
            sign * t.best,
            sign * t.last,
            *[t.latest(k).get(k, "-") for k in floor],
            f"{t.wall_s:.0f}",
            *[with_floor(t.latest(k), k) for k in path_level],
            *[cell(t.params[p]) if p in t.params else "-" for p in params],
        ]
        for t in sorted(trials, key=lambda t: (not math.isfinite(t.best), t.best))
    ]
    return format_table(head, rows)


def best_so_far(trials: list[TrialResult]) -> list[tuple[float, float, float]]:
    """(cumulative training steps, seconds since the sweep's first evaluation, best value so far),
    over every evaluation of every trial in the order they happened."""
    events = []
    for t in trials:
        prev = 0
        for r, s in zip(t.records, t.scores):
            events.append((r.get("time/unix", 0.0), r["step"] - prev, s))
            prev = r["step"]
    events.sort(key=lambda e: e[0])
    out, steps, best = [], 0, math.inf
    start = events[0][0] if events else 0.0
    for when, d_steps, s in events:
        steps += max(d_steps, 0)
        if math.isfinite(s):
            best = min(best, s)
        out.append((steps, when - start, best))
    return out


def build_report(exp_dir: Path, quiet: bool = False) -> dict[str, Any]:
    """Write results.csv, best_config.yaml, best.json and plots/; print the table; return best.json."""
    from infgan import plots

    exp_dir = Path(exp_dir)
    from infgan.tune.confirm import confirmed

    sweep, trials = collect(exp_dir)
    if not trials:
        raise ConfigError(f"{exp_dir}: no trial has reported yet")
    checked = confirmed(exp_dir, sweep["metric"], sweep["mode"])
    write_csv(exp_dir / "results.csv", sweep, trials, checked)
    best = best_trial(trials)
    value = None if best is None else objective.sign(sweep["mode"]) * best.best
    info: dict[str, Any] = {
        "trials": len(trials),
        "by_status": {s: sum(t.status == s for t in trials) for s in STATUSES},
        "total_steps": sum(t.steps for t in trials),
        "chosen_by": "best evaluation of one trial",
    }
    if checked:
        # The best median over fresh seeds, not the luckiest single trial.
        best = next(t for t in trials if t.trial_id == checked[0].of)
        value = checked[0].median
        info["chosen_by"] = f"best median final value over {len(checked[0].values)} fresh seeds"
        info["confirmed"] = [
            {
                "of": c.of,
                "params": c.params,
                "seeds": c.seeds,
                "values": c.values,
                "median": c.median,
                "min": min(c.values),
                "max": max(c.values),
                "run_dirs": [str(r) for r in c.runs],
            }
            for c in checked
        ]
    if best is not None:
        shutil.copyfile(best.run_dir / "config.yaml", exp_dir / "best_config.yaml")
        ckpt = latest_checkpoint(best.run_dir / "checkpoints")
        info.update(
            {
                "trial_id": best.trial_id,
                sweep["metric"]: value,
                "params": best.params,
                "run_dir": str(best.run_dir),
                "checkpoint": str(ckpt) if ckpt else None,
                "generator": str(best.run_dir / "generator.pt") if (best.run_dir / "generator.pt").exists() else None,
                "best_config": str(exp_dir / "best_config.yaml"),
            }
        )
    write_json_atomic(exp_dir / "best.json", info)
    plots.plot_sweep(exp_dir / "plots", sweep, trials, best_so_far(trials), _importances(sweep, trials))
    from infgan.tune.pbt import MUTABLE, plot_lineage

    moving = [d["path"] for d in sweep.get("distributions", []) if d["path"] in MUTABLE and d["type"] != "choice"]
    plot_lineage(exp_dir, exp_dir / "plots" / "pbt_lineage.png", moving)
    if not quiet:
        print(table(sweep, trials))
        if checked:
            print(f"\nconfirmed on fresh seeds ({sweep['metric']} of each run's final generator):")
            print(confirmed_table(sweep, checked))
        if best is not None:
            how = "median over fresh seeds" if checked else "best evaluation"
            print(
                f"\nbest: trial {best.trial_id}, {sweep['metric']} {info[sweep['metric']]:.4f} ({how}); "
                f"config {exp_dir / 'best_config.yaml'}; checkpoint {info['checkpoint']}"
            )
    return info


def _importances(sweep: dict[str, Any], trials: list[TrialResult]) -> dict[str, float]:
    """fANOVA parameter importances (Optuna) over trials with a finite value; {} when too few."""
    specs = {p["path"]: p for p in sweep.get("distributions", [])}
    usable = [t for t in trials if math.isfinite(t.best)]
    if len(usable) < 3 or not specs:
        return {}
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    def dist(spec: dict[str, Any]) -> Any:
        if spec["type"] == "choice":
            return CategoricalDistribution(spec["values"])
        if spec["type"] == "int":
            return IntDistribution(int(spec["low"]), int(spec["high"]), log=spec["log"])
        return FloatDistribution(spec["low"], spec["high"], log=spec["type"] == "loguniform" or spec["log"])

    def inside(spec: dict[str, Any], value: Any) -> Any:
        # A value PBT or PB2 explored can pass its bound by float32 rounding (0.1 -> 0.10000000149),
        # which Optuna refuses outright.
        if spec["type"] == "choice" or not isinstance(value, (int, float)):
            return value
        return min(max(value, spec["low"]), spec["high"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for t in usable:
        params = {k: inside(specs[k], v) for k, v in t.params.items() if k in specs}
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions={k: dist(specs[k]) for k in params}, value=t.best)
        )
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ImportError):
        return {}
