"""The searchers a sweep proposes its trials with, built for the driver: Optuna's TPE or random
sampler through `PruningOptunaSearch` (its study kept in the sweep directory), W&B's sweep engine
through `WandbSearch` (`infgan/tune/wandb_engine.py`), and, for the population schedulers (which
take no searcher), the population drawn up front.

`PruningOptunaSearch` tells Optuna that a trial ASHA stopped early was *pruned* (Ray's OptunaSearch
tells it COMPLETE with its early value, so TPE mixes short and full budgets), and records
intermediate values against the training step, not Tune's `training_iteration` (which restarts at 0
after a resume). Its study can be ahead of the searcher state Tune restores after a kill.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from infgan.tune.params import DefineByRun
from infgan.tune.space import SearchSpace

TIME_ATTR = "step"


OPTUNA_FILE = "optuna.log"  # the Optuna study (journal file storage), for optuna.load_study and optuna-dashboard


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


def optuna_storage(exp_dir: Path) -> Any:
    """Optuna's journal file storage in the sweep directory.

    A journal file, not SQLite: the sweep directory is often on a cluster's shared file system
    (NFS, Lustre), where SQLite's file locking is unreliable; Optuna's journal storage with its
    open-lock (O_EXCL lock files) is built for those. `optuna-dashboard <exp>/optuna.log` opens it.
    """
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(exp_dir / OPTUNA_FILE)
    return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def make_searcher(space: SearchSpace, exp_dir: Path, first_points: bool, sweep: dict[str, Any] | None) -> Any:
    """The space's searcher: Optuna TPE or random (study kept in the sweep directory), or W&B's engine."""
    if space.searcher.startswith("wandb-"):
        from infgan.tune.wandb_engine import WandbSearch

        assert sweep is not None
        return WandbSearch(sweep, space, space.first_points() if first_points else None)
    from optuna.samplers import RandomSampler, TPESampler

    return PruningOptunaSearch(
        space=DefineByRun(space.params),
        metric=space.metric,
        mode=space.mode,
        points_to_evaluate=space.first_points() if first_points else None,
        # TPE starts with random trials (10 by default): half the sweep at most, so that small
        # sweeps get some model-based suggestions too.
        sampler=TPESampler(seed=space.seed, n_startup_trials=max(2, min(10, space.samples // 2)))
        if space.searcher == "tpe"
        else RandomSampler(seed=space.seed),
        study_name=exp_dir.name,
        storage=optuna_storage(exp_dir),
        full_budget=space.steps,
    )


def population(space: SearchSpace) -> list[dict[str, Any]]:
    """`samples` members: the space's first points, then random draws, every parameter present."""
    import optuna

    from infgan.config import flatten

    base = flatten(space.base)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=space.seed))
    draw = DefineByRun(space.params)
    members = []
    firsts = space.first_points()
    for i in range(space.samples):
        trial = study.ask()
        draw(trial)
        member = {p.path: base[p.path] for p in space.params}
        member.update(trial.params)
        if i < len(firsts):
            member.update(firsts[i])
        members.append(member)
    return members
