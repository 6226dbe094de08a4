"""Winners re-checked on fresh seeds (a space's `confirm: {top: K, seeds: N}`, `infgan tune --confirm K,N`).

One GAN seed is noise: the best of 8 single-seed trials picks luck about as much as a config. After
the search, the K trials best by the sweep's metric train again from scratch on N seeds that no
search trial used (data, initialisation and noise all follow the seed), as Tune trials on the same
cluster. Each confirmation run's value is its *final* evaluation's metric (the generator a user
would take), and a config's confirmed value is the median over its seeds, shown with the lowest
and highest; `best_config.yaml` is then the config with the best median, not the luckiest trial.

Layout: `<exp>/confirm/<trial_id>/` (one infgan run each, with `confirm.json`: the search trial it
re-checks, its seed and its parameters) and `<exp>/tune_confirm/` (Tune's own state, so a killed
driver resumes the confirmation where it stopped).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infgan import objective
from infgan.train.run_dir import RunDir
from infgan.tune.space import SearchSpace

CONFIRM = "confirm"
TUNE_CONFIRM = "tune_confirm"


def fresh_seeds(space: SearchSpace, searched: list[dict[str, Any]], n: int) -> list[int]:
    """`n` seeds no search trial trained with: past the base seed and any searched seed."""
    used = {int(space.base.get("seed", 0))} | {int(p["seed"]) for p in searched if "seed" in p}
    start = max(used) + 1
    return list(range(start, start + n))


def confirmation_points(space: SearchSpace, exp_dir: Path) -> list[dict[str, Any]]:
    """One point per (top search trial, fresh seed): {"of": trial id, "seed": s, "params": {...}}."""
    from infgan.tune.report import collect

    _, trials = collect(exp_dir)
    ranked = sorted((t for t in trials if math.isfinite(t.best)), key=lambda t: t.best)[: space.confirm_top]
    seeds = fresh_seeds(space, [t.params for t in trials], space.confirm_seeds)
    return [{"of": t.trial_id, "seed": s, "params": t.params} for t in ranked for s in seeds]


def confirm_trial(config: dict[str, Any], space: SearchSpace, exp_dir: str) -> None:
    """The Tune trainable of the confirmation: a search trial's config on a fresh seed."""
    import ray.tune

    from infgan.tune.run import train_trial

    point = config["point"]
    run_dir = Path(exp_dir) / CONFIRM / ray.tune.get_context().get_trial_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "confirm.json").write_text(json.dumps(point, indent=2))
    train_trial(space, space.trial_config({**point["params"], "seed": point["seed"]}), run_dir)


def run_confirmation(space: SearchSpace, exp_dir: Path, limit: int, resources: dict[str, float]) -> None:
    """Train the top configs on fresh seeds (or resume doing so); a Tune run of its own."""
    from ray import tune

    from infgan.tune.progress import SweepProgress

    tune_dir = exp_dir / TUNE_CONFIRM
    trainable = tune.with_resources(tune.with_parameters(confirm_trial, space=space, exp_dir=str(exp_dir)), resources)
    points = confirmation_points(space, exp_dir)
    if not points:
        return
    heading = (
        f"confirming the best {space.confirm_top} configs on {space.confirm_seeds} fresh seeds each "
        f"({len(points)} runs of {space.steps} steps)"
    )
    progress = SweepProgress(space, heading, total=len(points))
    if tune.Tuner.can_restore(str(tune_dir)):
        tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=True)
        assert tuner._local_tuner is not None
        run_config = tuner._local_tuner.get_run_config()
        run_config.callbacks, run_config.verbose = [progress], 0
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"point": tune.grid_search(points)},
            tune_config=tune.TuneConfig(max_concurrent_trials=limit, reuse_actors=True),  # as the search's
            run_config=tune.RunConfig(
                name=TUNE_CONFIRM,
                storage_path=str(exp_dir),
                failure_config=tune.FailureConfig(max_failures=1),
                verbose=0,
                callbacks=[progress],
            ),
        )
    from infgan.interrupt import sigterm_as_interrupt

    with sigterm_as_interrupt():
        tuner.fit()
    if len([c for c in read_runs(exp_dir) if c["done"]]) < len(points):
        raise KeyboardInterrupt  # Tune's SIGINT handler saved the state and returned early


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
