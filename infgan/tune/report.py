"""Sweep results from the files alone (no Ray): table, results.csv, best_config.yaml, best.json, plots.

Works on a finished or an interrupted sweep (`infgan report EXP_DIR`).

What the sweep found is read by `infgan/tune/results.py`; this module draws and writes it.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any

from infgan import objective
from infgan.atomic import atomic_write, write_json_atomic
from infgan.config import ConfigError
from infgan.objective import PATH_METRICS, floor_name, with_floor
from infgan.text import cell, format_table
from infgan.train.checkpoint import latest_checkpoint
from infgan.tune.params import Param, applied
from infgan.tune.results import STATUSES, TrialResult, best_so_far, best_trial, collect, confirmed, lineage
from infgan.tune.space import MUTABLE


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


def param_cells(sweep: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """A trial's parameters as table cells, "-" for those that did not apply to it (a condition that did
    not hold, a critic's setting under a loss kind without one) or that it does not have."""
    recorded = [Param.from_record(d) for d in sweep.get("distributions", [])]
    shown = applied(recorded, params, sweep.get("base", {}).get("loss", {}).get("kind", "fdm"))
    return [cell(shown[p]) if p in shown else "-" for p in sweep["parameters"]]


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
            *param_cells(sweep, c.params),
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
            *param_cells(sweep, t.params),
        ]
        for t in sorted(trials, key=lambda t: (not math.isfinite(t.best), t.best))
    ]
    return format_table(head, rows)


def build_report(exp_dir: Path, quiet: bool = False) -> dict[str, Any]:
    """Write results.csv, best_config.yaml, best.json and plots/; print the table; return best.json."""
    from infgan import plots

    exp_dir = Path(exp_dir)
    sweep, trials = collect(exp_dir)
    if not trials:
        raise ConfigError(f"{exp_dir}: no trial has reported yet")
    checked = confirmed(exp_dir, sweep["metric"], sweep["mode"])
    write_csv(exp_dir / "results.csv", sweep, trials, checked)
    best, info = _chosen(exp_dir, sweep, trials, checked)
    write_json_atomic(exp_dir / "best.json", info)
    plots.plot_sweep(exp_dir / "plots", sweep, trials, best_so_far(trials), _importances(sweep, trials))
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


def _chosen(
    exp_dir: Path, sweep: dict[str, Any], trials: list[TrialResult], checked: list
) -> tuple[TrialResult | None, dict[str, Any]]:
    """The chosen trial (the best confirmed median, else the best evaluation) and best.json's contents;
    its config is copied to best_config.yaml."""
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
                **{k: getattr(c, k) for k in ("of", "params", "seeds", "values", "median")},
                **{"min": min(c.values), "max": max(c.values), "run_dirs": [str(r) for r in c.runs]},
            }
            for c in checked
        ]
    if best is not None:
        shutil.copyfile(best.run_dir / "config.yaml", exp_dir / "best_config.yaml")
        ckpt = latest_checkpoint(best.run_dir / "checkpoints")
        generator = best.run_dir / "generator.pt"
        info.update(
            {
                "trial_id": best.trial_id,
                sweep["metric"]: value,
                "params": best.params,
                "run_dir": str(best.run_dir),
                "checkpoint": str(ckpt) if ckpt else None,
                "generator": str(generator) if generator.exists() else None,
                "best_config": str(exp_dir / "best_config.yaml"),
            }
        )
    return best, info


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


def plot_lineage(exp_dir: Path, out: Path, paths: list[str]) -> Path | None:
    """Each mutable parameter of each member over the steps, exploits marked; None without lineage."""
    events = lineage(exp_dir)
    if not events or not paths:
        return None
    from infgan.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(len(paths), 1, figsize=(8, 2.6 * len(paths)), squeeze=False, sharex=True)
    members = sorted({e["trial"] for e in events})
    ends: dict[str, int] = {}
    for m in members:
        records = Path(exp_dir) / "trials" / m / "metrics.jsonl"
        last = records.read_text().splitlines()[-1:] if records.exists() else []
        ends[m] = json.loads(last[0])["step"] if last else 0
    for ax, path in zip(axes[:, 0], paths):
        for m in members:
            mine = [e for e in events if e["trial"] == m]
            steps = [e["step"] for e in mine] + [max(ends[m], mine[-1]["step"])]
            values = [e["params"].get(path) for e in mine]
            values.append(values[-1])
            (line,) = ax.step(steps, values, where="post", label=m)
            jumps = [e for e in mine if e["donor"]]
            ax.scatter([e["step"] for e in jumps], [e["params"].get(path) for e in jumps], color=line.get_color())
        ax.set_ylabel(path.split(".")[-1])
        if "lr" in path or "sigma" in path:
            ax.set_yscale("log")
    axes[-1, 0].set_xlabel("training step (dots: the member copied a better one and explored)")
    axes[0, 0].legend(fontsize=7, ncol=4)
    fig.tight_layout()
    atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return out
