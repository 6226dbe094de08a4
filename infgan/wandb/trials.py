"""W&B runs of a sweep's trials, logged from the Tune driver (a Tune callback).

Why the driver and not the trial: Tune ends a trial that ASHA stops by killing its process,
and W&B's writer goes with it, losing what the trial had logged. The driver sees every result
the trial reported (the same records as its metrics.jsonl) and outlives it. One W&B run per
trial: id = trial id, grouped by the sweep's name, config = the trial's full config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune import Callback

from infgan.tune.space import SearchSpace
from infgan.wandb.tracking import Tracker, Tracking

_PREFIXES = ("train/", "val/", "time/")


class WandbTrials(Callback):
    """Tune callback: one W&B run per trial of the sweep in `exp_dir`."""

    def __init__(self, tracking: Tracking, space: SearchSpace, exp_dir: Path, trials_dir: str):
        self.tracking = tracking.replace(group=exp_dir.name, job_type="tune-trial", dir=tracking.dir or str(exp_dir))
        self.space, self.trials_root = space, exp_dir / trials_dir
        self.trackers: dict[str, Tracker] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        cfg = self.space.trial_config(self.space.sampled(trial.config))
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
