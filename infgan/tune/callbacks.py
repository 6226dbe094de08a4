"""The sweep driver's Tune callbacks and stopper: what a sweep prints (`SweepProgress`), the W&B runs
of its trials logged from the driver (`WandbTrials`), and a total step budget (`StepBudget`).

What a sweep prints, in place of Tune's own tables (a config table and a result table for every
trial, about 35 lines each: a 32-trial sweep printed over a thousand lines): one line per trial that
ends (how it ended, at which step, its value against the metric's real-data floor, the parameters
that applied to it) and, on a terminal, one bar of trials ended with the best value so far.

Why W&B runs are logged from the driver and not the trial: Tune ends a trial that ASHA stops by
killing its process, and W&B's writer goes with it, losing what the trial had logged. The driver
sees every result the trial reported (the same records as its metrics.jsonl) and outlives it. One
W&B run per trial: id = trial id, grouped by the sweep's name, config = the trial's full config.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper
from tqdm.auto import tqdm

from infgan.tune.space import SearchSpace
from infgan.wandb.tracking import Tracker, Tracking

_ENDED = ("TERMINATED", "ERROR")


_PREFIXES = ("train/", "val/", "time/")


class SweepProgress(Callback):
    """One line per ended trial on stdout; a bar of ended trials on stderr when it is a terminal."""

    def __init__(self, space: SearchSpace, heading: str, stream: Any = None, total: int | None = None):
        self.space, self.heading, self.total = space, heading, total or space.samples
        self.stream = stream  # None: sys.stdout at the time of writing (Tune pickles its callbacks)
        self.bar: Any = None
        self.best: float | None = None

    def setup(self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None, **info: Any) -> None:
        tqdm.write(self.heading, file=self.stream or sys.stdout)
        self.bar = tqdm(total=self.total, desc="trials", unit="trial", disable=not sys.stderr.isatty())

    def on_step(self, iteration: int, trials: list, **info: Any) -> None:
        if self.bar is None:
            return
        ended = sum(t.status in _ENDED for t in trials)
        if ended != self.bar.n:
            self.bar.n = ended
            self.bar.refresh()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, f"failed (Tune's error file: {getattr(trial, 'error_file', None) or trial.local_path})")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.bar is not None:
            self.on_step(0, trials)
            self.bar.close()
            self.bar = None

    def _line(self, trial: Any, failure: str | None) -> None:
        space, result = self.space, trial.last_result or {}
        metric, step = space.metric, result.get("step")
        value, floor = result.get(metric), result.get(f"{metric}_floor")
        if failure is None:
            if result.get("diverged"):
                how = "diverged"
            elif isinstance(step, int) and step < space.steps:
                how = "stopped early"
            else:
                how = "finished"
            how = f"{how} at step {step}/{space.steps}"
            if isinstance(value, (int, float)) and math.isfinite(value) and not result.get("diverged"):
                how += f"  {metric} {value:.4g}" + (f" (floor {floor:.3g})" if isinstance(floor, float) else "")
                if self.best is None or (value < self.best if space.mode == "min" else value > self.best):
                    self.best = value
                    if self.bar is not None:
                        self.bar.set_postfix_str(f"best {metric} {value:.4g}")
        else:
            how = failure
        if "point" in trial.config:  # a confirmation run: the search trial it re-checks and its seed
            shown = {"of": trial.config["point"]["of"], "seed": trial.config["point"]["seed"]}
        else:
            shown = self.space.applied(self.space.sampled(trial.config))
        params = " ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items()))
        tqdm.write(f"{trial.trial_id}  {how}  {params}", file=self.stream or sys.stdout)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class WandbTrials(Callback):
    """Tune callback: one W&B run per trial of the sweep in `exp_dir`."""

    def __init__(self, tracking: Tracking, space: SearchSpace, exp_dir: Path, trials_dir: str):
        self.tracking = tracking.replace(group=exp_dir.name, job_type="tune-trial", dir=tracking.dir or str(exp_dir))
        self.space, self.trials_root = space, exp_dir / trials_dir
        self.trackers: dict[str, Tracker] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        cfg = self.space.search_config(trial.config)
        if trial.trial_id in self.trackers:  # a population member restarted by an exploit: its run goes on
            self.trackers[trial.trial_id].update_config(cfg)
            return
        tracker = Tracker(
            self.tracking.replace(run_id=trial.trial_id, name=trial.trial_id), self.trials_root / trial.trial_id
        )
        tracker.start(cfg)
        self.trackers[trial.trial_id] = tracker

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        tracker = self.trackers.get(trial.trial_id)
        if tracker is not None and "step" in result and any(k.startswith("val/") for k in result):
            tracker.log({k: v for k, v in result.items() if k == "step" or k.startswith(_PREFIXES)})

    def _end(self, trial: Any, status: str) -> None:
        tracker = self.trackers.pop(trial.trial_id, None)
        if tracker is None:
            return
        run_dir = self.trials_root / trial.trial_id
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        tracker.finish(summary, run_dir / "plots" if summary else None, status=None if summary else status)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "stopped")  # without a summary, the trial was stopped early (ASHA or the budget)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "error")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial in trials:
            self._end(trial, "interrupted")


class StepBudget(Stopper):
    """A Tune stopper that ends the sweep once its trials have trained `max_steps` steps in all."""

    def __init__(self, max_steps: int):
        self.max_steps = max_steps
        self.steps: dict[str, int] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.steps[trial_id] = int(result.get("step", 0))
        return False

    def stop_all(self) -> bool:
        return sum(self.steps.values()) >= self.max_steps
