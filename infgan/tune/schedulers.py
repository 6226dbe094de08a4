"""The schedulers a sweep stops or perturbs its trials with, built for the driver
(`make_scheduler`; what each kind is, as data, is `infgan/tune/spec.py: SCHEDULERS`):

- `asha`: `PersistentASHA`, Ray's ASHA on the training step whose rungs are written to a JSON file
  after every decision and read back on first use, because `Tuner.restore` does not restore a
  scheduler's state; `asha.judge: best` compares each trial's best value so far at a rung;
- `wandb-hyperband`: W&B's engine applying the sweep file's `early_terminate: hyperband`
  (`infgan/tune/wandb_engine.py: WandbHyperband`);
- `none`: Tune's FIFO order, every trial to its full budget;
- `pbt`, `pb2`: Ray's Population Based Training and PB2, with no perturbation at the budget's end
  (`EndsOwnRun`) and, synchronous, no member left waiting at a sync point nobody will reach
  (`SyncNeverStalls`). How a population trains, exploits and records its lineage: docs/search.md.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler

from infgan.atomic import write_json_atomic
from infgan.tune.space import SearchSpace, mutable
from infgan.tune.spec import SCHEDULERS

TIME_ATTR = "step"


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


class EndsOwnRun:
    """Mixin for Ray's PBT and PB2: a result at or past `budget` (the trial's last) is not perturbed."""

    budget: int = 0

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.budget and result.get("step", 0) >= self.budget:
            return "CONTINUE"  # TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]


class SyncNeverStalls:
    """Mixin for Ray's PBT and PB2 in synchronous mode (`pbt.synch: true`): members left waiting at a
    sync point that no running member will reach are run on.

    Ray pauses each member at the sync point until every live member has reached it, and then picks
    paused members to run only while they are behind the next sync point. A resumed sweep breaks that
    bargain: its fresh scheduler starts counting sync points again while its members come back from
    checkpoints at different steps, so a perturbation can set the next sync point at the furthest
    member's step; the member behind then runs to its end (its last result is not perturbed), and
    the others wait for a sync that never comes (a resumed sweep hung there, 3 times in 4). When
    nothing runs and nothing else can be chosen, the next sync point moves one interval past the
    paused members, so they go on and meet again there."""

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        trial = super().choose_trial_to_run(tune_controller)  # type: ignore[misc]
        if trial is not None or not getattr(self, "_synch", False):
            return trial
        trials = tune_controller.get_trials()
        paused = [t for t in trials if t.status == "PAUSED"]
        if not paused or any(t.status in ("RUNNING", "PENDING") for t in trials):
            return None
        state = self._trial_state  # type: ignore[attr-defined]
        furthest = max(state[t].last_train_time for t in paused)
        self._next_perturbation_sync = furthest + self._perturbation_interval  # type: ignore[attr-defined]
        return super().choose_trial_to_run(tune_controller)  # type: ignore[misc]


# The schedulers, built on first use (PB2 imports scikit-learn): module attributes all the same, so
# that Tune can pickle them with the sweep and unpickle them on resume.
_SCHEDULERS = {
    "PBTEndsOwnRun": ("ray.tune.schedulers", "PopulationBasedTraining"),
    "PB2EndsOwnRun": ("ray.tune.schedulers.pb2", "PB2"),
}


def __getattr__(name: str) -> type:
    if name not in _SCHEDULERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, base = _SCHEDULERS[name]
    bases = (EndsOwnRun, SyncNeverStalls, getattr(importlib.import_module(module), base))
    cls = type(name, bases, {"__module__": __name__})
    cls.__qualname__ = name
    globals()[name] = cls
    return cls


def make_pbt(space: SearchSpace, bandit: bool) -> Any:
    """Ray's PopulationBasedTraining (or PB2) on the training step, mutating the member config."""
    from ray import tune

    params = mutable(space)
    common: dict[str, Any] = {
        "time_attr": "step",
        "metric": space.metric,
        "mode": space.mode,
        "perturbation_interval": space.pbt_interval,
        "quantile_fraction": space.pbt_quantile,
        "synch": space.pbt_synch,
        "log_config": False,  # lineage.jsonl, written by the members themselves, is the record
    }
    if bandit:
        scheduler = __getattr__("PB2EndsOwnRun")(
            hyperparam_bounds={"member": {p.path: [p.low, p.high] for p in params}}, **common
        )
    else:
        domains = {p.path: (tune.loguniform if p.type == "loguniform" else tune.uniform)(p.low, p.high) for p in params}
        scheduler = __getattr__("PBTEndsOwnRun")(
            hyperparam_mutations={"member": domains}, resample_probability=space.pbt_resample, **common
        )
    scheduler.budget = space.steps
    return scheduler


def make_scheduler(space: SearchSpace, exp_dir: Path, sweep: dict[str, Any] | None) -> Any:
    """The space's scheduler for the Tuner (None: Tune's FIFO order); `sweep`: the W&B engine's sweep file."""
    kind = space.scheduler
    if kind == "asha":
        return PersistentASHA(
            str(exp_dir / str(SCHEDULERS[kind].state_file)),
            metric=space.metric,
            mode=space.mode,
            max_t=space.steps,
            grace_period=space.grace_period,
            reduction_factor=space.reduction_factor,
            judge=space.judge,
        )
    if kind == "wandb-hyperband":
        from infgan.tune.wandb_engine import WandbHyperband

        assert sweep is not None
        return WandbHyperband(sweep, space, str(exp_dir / str(SCHEDULERS[kind].state_file)))
    if kind in ("pbt", "pb2"):
        return make_pbt(space, bandit=kind == "pb2")
    return None
