"""Optuna TPE and ASHA as infgan needs them, on top of Ray Tune's own classes:

- `PruningOptunaSearch` tells Optuna that a trial ASHA stopped early was *pruned* (Ray's
  OptunaSearch tells it COMPLETE with its early value, so TPE mixes short and full budgets), and
  records intermediate values against the training step, not Tune's `training_iteration`
  (which restarts at 0 after a resume). Its study lives in the sweep directory (`run.py`,
  `optuna_storage`), which can be ahead of the searcher state Tune restores after a kill.
- `PersistentASHA` writes its rungs to a JSON file after every decision and reads them back on
  first use, because `Tuner.restore` does not restore a scheduler's state.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from infgan.atomic import write_json_atomic

TIME_ATTR = "step"


class PruningOptunaSearch(OptunaSearch):
    """OptunaSearch that reports ASHA-stopped trials as PRUNED and diverged ones as FAILED."""

    def __init__(self, *args: Any, full_budget: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.full_budget = full_budget

    def _stored(self, trial_id: str) -> Any:
        """The study's own record of a trial (its storage may be ahead of this searcher's state)."""
        trial = self._ot_trials[trial_id]
        return trial.storage.get_trial(trial._trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        value = result.get(self.metric)
        if trial_id in self._ot_trials and TIME_ATTR in result and value is not None and math.isfinite(value):
            stored = self._stored(trial_id)
            if not stored.state.is_finished() and result[TIME_ATTR] not in stored.intermediate_values:
                self._ot_trials[trial_id].report(value, result[TIME_ATTR])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        import optuna

        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        if self._stored(trial_id).state.is_finished():
            # Told before a driver was killed, after its last save of this searcher: the study in
            # the sweep directory already has it, and Optuna refuses to tell a trial twice.
            self._completed_trials.add(trial_id)
            return
        state = None
        if result and result.get("diverged"):
            state = optuna.trial.TrialState.FAIL
        elif result and not error and result.get(TIME_ATTR, self.full_budget) < self.full_budget:
            state = optuna.trial.TrialState.PRUNED
        if state is None:
            super().on_trial_complete(trial_id, result, error)
            return
        if state == optuna.trial.TrialState.PRUNED and result:
            self.on_trial_result(trial_id, result)  # the value ASHA stopped it on
        assert self._ot_study is not None  # set up by OptunaSearch once it has a metric and a space
        self._ot_study.tell(self._ot_trials[trial_id], state=state)
        self._completed_trials.add(trial_id)


class PersistentASHA(ASHAScheduler):
    """ASHAScheduler on a step-based time attribute whose rungs survive a driver restart."""

    def __init__(self, state_path: str, judge: str = "last", **kwargs: Any):
        # stop_last_trials=False: a trial at the full budget ends by itself, after writing its
        # summary and plots, instead of being cut off at its last report.
        super().__init__(time_attr=TIME_ATTR, stop_last_trials=False, **kwargs)
        self.state_path = state_path
        self.judge = judge  # "last": the value reported at the rung (Ray's ASHA); "best": the best so far
        self._loaded = False
        self.stopped: list[str] = []  # trials this scheduler stopped early, for the reports
        self.best: dict[str, float] = {}  # each trial's best value so far, for judge "best"

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        path = Path(self.state_path)
        if not path.exists():
            return
        saved = json.loads(path.read_text())
        for bracket, rungs in zip(self._brackets, saved["brackets"]):
            by_milestone = {float(m): rec for m, rec in rungs}
            for milestone, recorded in bracket._rungs:
                recorded.update(by_milestone.get(float(milestone), {}))
        self._num_stopped = saved.get("num_stopped", 0)
        self.stopped = list(saved.get("stopped", []))
        self.best = dict(saved.get("best", {}))

    def _save(self) -> None:
        state = {
            "brackets": [[[m, rec] for m, rec in b._rungs] for b in self._brackets],
            "num_stopped": self._num_stopped,
            "stopped": self.stopped,
            "best": self.best,
        }
        write_json_atomic(Path(self.state_path), state)

    def _bracket_for(self, trial: Any) -> None:
        # A trial restored by Tuner.restore may never have been added to this fresh scheduler.
        self._trial_info.setdefault(trial.trial_id, self._brackets[0])

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._ensure_loaded()
        super().on_trial_add(tune_controller, trial)

    def judged(self, trial_id: str, result: dict) -> dict:
        """The result ASHA compares at a rung: as reported, or with the trial's best value so far.

        Why "best": a GAN's metric is noisy and not monotone in the steps, and ASHA compares the
        single value reported at the rung, so a trial caught on a bad evaluation is stopped.
        """
        value = result.get(self._metric)
        if self.judge != "best" or not isinstance(value, (int, float)) or math.isnan(value):
            return result
        sign = -1.0 if self._mode == "max" else 1.0
        best = self.best.get(trial_id)
        self.best[trial_id] = value if best is None else sign * min(sign * best, sign * value)
        return {**result, self._metric: self.best[trial_id]}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._ensure_loaded()
        self._bracket_for(trial)
        action = super().on_trial_result(tune_controller, trial, self.judged(trial.trial_id, result))
        if action == self.STOP:
            if result.get(TIME_ATTR, 0) >= self._max_t:
                # At the full budget a stop saves nothing and would cut off the trial's last
                # writes (summary, plots): let it finish by itself.
                action = self.CONTINUE
                self._num_stopped -= 1
            else:
                self.stopped.append(trial.trial_id)
        self._save()
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._ensure_loaded()
        self._bracket_for(trial)
        super().on_trial_complete(tune_controller, trial, result)
        self._trial_info.pop(trial.trial_id, None)
        self._save()

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._trial_info.pop(trial.trial_id, None)
