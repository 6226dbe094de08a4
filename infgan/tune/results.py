"""A sweep's results from its files alone (no Ray): each trial's run (`collect`), the best, the
confirmed configs (their runs on fresh seeds, `confirmed`), and a population's lineage. Read by the
reports, by `infgan evaluate`/`compare` and by the driver; written by the trials (`record`).

Confirmation (a space's `confirm: {top: K, seeds: N}`, `infgan tune --confirm K,N`): one GAN seed is
noise, so after the search the K trials best by the sweep's metric train again from scratch on N
seeds no search trial used, and a config's confirmed value is the median of its runs' final values.
Layout: `<exp>/confirm/<trial_id>/` (one infgan run each, with `confirm.json`: the search trial it
re-checks, its seed and its parameters) and `<exp>/tune_confirm/` (Tune's own state).

Lineage (PBT, PB2): `<exp>/lineage.jsonl`, one line per member at its start and per exploit (time,
step, trial, donor, the member's parameters from then on), and a `restored` line when a resumed
sweep continues a member as it was before an exploit that a killed driver had not yet saved.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infgan import objective
from infgan.config import ConfigError
from infgan.train.run_dir import RunDir
from infgan.tune.space import SearchSpace
from infgan.tune.spec import SCHEDULERS

TRIALS = "trials"


STATUSES = ("completed", "stopped", "diverged", "incomplete")


CONFIRM = "confirm"

TUNE_CONFIRM = "tune_confirm"


LINEAGE = "lineage.jsonl"


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


def finished_trials(exp_dir: Path) -> int:
    """Trials that reached an end of their own: completed, diverged, or stopped by ASHA."""
    return sum(t.status != "incomplete" for t in collect(exp_dir)[1])


def fresh_seeds(space: SearchSpace, searched: list[dict[str, Any]], n: int) -> list[int]:
    """`n` seeds no search trial trained with: past the base seed and any searched seed."""
    used = {int(space.base.get("seed", 0))} | {int(p["seed"]) for p in searched if "seed" in p}
    start = max(used) + 1
    return list(range(start, start + n))


def confirmation_points(space: SearchSpace, exp_dir: Path) -> list[dict[str, Any]]:
    """One point per (top search trial, fresh seed): {"of": trial id, "seed": s, "params": {...}}."""
    _, trials = collect(exp_dir)
    ranked = sorted((t for t in trials if math.isfinite(t.best)), key=lambda t: t.best)[: space.confirm_top]
    seeds = fresh_seeds(space, [t.params for t in trials], space.confirm_seeds)
    return [{"of": t.trial_id, "seed": s, "params": t.params} for t in ranked for s in seeds]


def read_runs(exp_dir: Path) -> list[dict[str, Any]]:
    """Every confirmation run: its point, whether it finished, and its final record."""
    root = Path(exp_dir) / CONFIRM
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if not (d / "confirm.json").exists():
            continue
        run = RunDir(d)
        records = run.read_metrics() if run.metrics_path.exists() else []
        point = json.loads((d / "confirm.json").read_text())
        out.append({**point, "run_dir": d, "done": run.summary_path.exists(), "final": records[-1] if records else {}})
    return out


@dataclass
class Confirmed:
    """One search trial's config as its fresh seeds found it."""

    of: str
    params: dict[str, Any]
    seeds: list[int]
    values: list[float]  # each finished seed's final value of the metric (a diverged seed: the worst, +-inf)
    runs: list[Path]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan


def confirmed(exp_dir: Path, metric: str, mode: str) -> list[Confirmed]:
    """The confirmed configs, best median first (finished runs only)."""
    groups: dict[str, Confirmed] = {}
    for r in read_runs(exp_dir):
        if not r["done"]:
            continue
        c = groups.setdefault(r["of"], Confirmed(r["of"], r["params"], [], [], []))
        value = r["final"].get(metric, math.nan)
        value = float(value) if isinstance(value, (int, float)) else math.nan
        c.seeds.append(int(r["seed"]))
        c.values.append(value if math.isfinite(value) else objective.worst(mode))  # diverged: the worst
        c.runs.append(r["run_dir"])
    sign = objective.sign(mode)
    return sorted(groups.values(), key=lambda c: sign * c.median)


def record(exp_dir: Path, trial: str, step: int, donor: str | None, params: dict[str, Any]) -> None:
    """Append one lineage event (a member's start, or an exploit) to `<exp>/lineage.jsonl`."""
    line = json.dumps({"time": time.time(), "step": step, "trial": trial, "donor": donor, "params": params})
    with (Path(exp_dir) / LINEAGE).open("a") as fh:  # one short line per write: appends do not interleave
        fh.write(line + "\n")


def record_restore(exp_dir: Path, trial: str, step: int, params: dict[str, Any]) -> None:
    """A member continuing from its own checkpoint with other parameters than its lineage last gave
    it: after a driver was killed between an exploit and Tune's next save of its record, Tune
    restores the member as it was before that exploit. Recorded (donor none, `restored`), so the
    lineage says which parameters the member trains with from `step` on."""
    if current_params(exp_dir).get(trial) == params:
        return
    line = json.dumps(
        {"time": time.time(), "step": step, "trial": trial, "donor": None, "params": params, "restored": True}
    )
    with (Path(exp_dir) / LINEAGE).open("a") as fh:
        fh.write(line + "\n")


def lineage(exp_dir: Path) -> list[dict[str, Any]]:
    """Every lineage event, oldest first ([] for a sweep without PBT)."""
    path = Path(exp_dir) / LINEAGE
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a torn last line from a killed member
    return sorted(events, key=lambda e: e["time"])


def current_params(exp_dir: Path) -> dict[str, dict[str, Any]]:
    """Each member's parameters as its last lineage event left them."""
    return {e["trial"]: e["params"] for e in lineage(exp_dir)}
