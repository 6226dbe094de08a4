"""W&B's own sweep engine (PyPI `sweeps`) driving a Ray Tune sweep, with no W&B server.

`WandbSearch` is a Ray Tune `Searcher`: for each new trial it hands `sweeps.next_run` the sweep
file's configuration and every trial so far, as W&B's controller would, and returns the proposal.
`WandbHyperband` is a Ray Tune `TrialScheduler`: on each report it asks `sweeps.stop_runs` which
running trials W&B's `early_terminate: hyperband` would stop. Both read the sweep file that
`infgan wandb-sweep` writes from the same space (written into the sweep directory as
`wandb_sweep.yaml`), so what runs here is what a W&B sweep of the space would run. Being Tune's own
plug-ins, resume, storage, reports, W&B logging and the SLURM scripts work unchanged.

How infgan's trials are shown to the engine (`SweepRun`s):
- name = Tune's trial id; config = the trial's sampled values, keyed by config path;
- history = the trial's reports of the metric in step order (one per evaluation, step 0 first),
  so W&B's hyperband "iteration" b is step b * eval_every;
- state: `running` while it trains; `finished` when it ends, including when hyperband or ASHA
  stopped it (W&B's Bayesian search then uses its best value, as for any finished run);
  `failed` when it diverged and `crashed` when it errored (the engine imputes the worst value).

Seeds: `sweeps` draws from Python's `random` and NumPy's global generator. Each proposal seeds
both from (sweep seed, number of trials so far) and puts the caller's generator states back, so
proposals repeat for a seed and nothing else's randomness is touched.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from infgan.atomic import write_json_atomic
from infgan.config import ConfigError
from infgan.tune.params import Param
from infgan.tune.space import SearchSpace

SWEEP_FILE = "wandb_sweep.yaml"

STATE_FILE = "hyperband_state.json"

TIME_ATTR = "step"


def import_sweeps() -> Any:
    """`sweeps`, or a clear error saying how to install it (it is one of infgan's dependencies)."""
    try:
        with warnings.catch_warnings():
            # sweeps 0.2.0 declares a pydantic-v1 config key; pydantic 2 warns on import.
            warnings.filterwarnings("ignore", message="Valid config keys have changed", category=UserWarning)
            import sweeps
    except ImportError:
        raise ConfigError(
            "the wandb-* searchers and wandb-hyperband need W&B's sweep engine, missing here: pip install 'sweeps>=0.2'"
        ) from None
    return sweeps


def engine_config(sweep: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep file's configuration as the engine is given it: parameters flattened to config paths.

    The file nests parameters as W&B shows them in a run's config (`train: {parameters: {lr: ..}}`)
    and lists every base value as a constant; the engine gets the searched ones only, keyed
    `train.lr`, so its proposals are infgan overrides as they are.
    """

    def walk(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, spec in node.items():
            if isinstance(spec, Mapping) and "parameters" in spec:
                out.update(walk(spec["parameters"], f"{prefix}{key}."))
            elif isinstance(spec, Mapping) and "value" not in spec:
                out[prefix + key] = dict(spec)
        return out

    return {**{k: v for k, v in sweep.items() if k != "parameters"}, "parameters": walk(sweep["parameters"], "")}


def read_sweep_file(path: Path) -> dict[str, Any]:
    return engine_config(yaml.safe_load(path.read_text()))


def _plain(param: Param, value: Any) -> Any:
    """A proposed value as the space's own type (the engine hands out NumPy floats, 16.0 for 16)."""
    if param.type == "choice":
        return next(v for v in param.values if v == value)
    if param.type == "int":
        return int(round(float(value)))
    return float(value)


class _Runs:
    """Each trial's config, metric history (by step) and state, as the engine's `SweepRun`s."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.config: dict[str, dict[str, Any]] = {}
        self.history: dict[str, dict[int, float]] = {}
        self.state: dict[str, str] = {}

    def record(self, trial_id: str, result: Mapping[str, Any]) -> None:
        value = result.get(self.metric)
        if TIME_ATTR in result and isinstance(value, (int, float)) and math.isfinite(value):
            self.history.setdefault(trial_id, {})[int(result[TIME_ATTR])] = float(value)
        self.state.setdefault(trial_id, "running")

    def end(self, trial_id: str, result: Mapping[str, Any] | None, error: bool) -> None:
        if result:
            self.record(trial_id, result)
        diverged = bool(result and result.get("diverged"))
        self.state[trial_id] = "crashed" if error else "failed" if diverged else "finished"

    def sweep_runs(self) -> list[Any]:
        from sweeps import SweepRun

        names = list(dict.fromkeys([*self.config, *self.state]))
        return [
            SweepRun(
                name=name,
                state=self.state.get(name, "pending"),
                config={k: {"value": v} for k, v in self.config.get(name, {}).items()},
                # The alias: under pydantic 2, `history=` is silently dropped.
                sampledHistory=[{self.metric: v} for _, v in sorted(self.history.get(name, {}).items())],
            )
            for name in names
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "history": self.history, "state": self.state}

    def load(self, saved: Mapping[str, Any]) -> None:
        self.config = dict(saved.get("config", {}))
        self.history = {t: {int(s): v for s, v in h.items()} for t, h in saved.get("history", {}).items()}
        self.state = dict(saved.get("state", {}))


class _Seeded:
    """Python's and NumPy's global generators seeded for one call, then put back."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        import numpy as np

        self.saved = random.getstate(), np.random.get_state()
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)

    def __exit__(self, *exc: Any) -> None:
        import numpy as np

        random.setstate(self.saved[0])
        np.random.set_state(self.saved[1])


class WandbSearch(Searcher):
    """Ray Tune searcher that asks W&B's sweep engine (`method: bayes` or `random`) for each trial.

    `points` (the space's first points: the base config's own values, then its `points:`) go first,
    as Optuna's `points_to_evaluate` do: W&B's engine has no such notion, so each is laid over the
    engine's own proposal (which fills the parameters a point leaves out) and the engine then learns
    from it as from any run.
    """

    def __init__(self, sweep: Mapping[str, Any], space: SearchSpace, points: list[dict[str, Any]] | None = None):
        super().__init__(metric=space.metric, mode=space.mode)
        import_sweeps()
        self.sweep = dict(sweep)
        self.params = {p.path: p for p in space.params}
        self.seed = space.seed
        self.runs = _Runs(space.metric)
        self.points = [dict(p) for p in points or []]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        sweeps = import_sweeps()
        with _Seeded(self.seed * 1_000_003 + len(self.runs.config)), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's GP convergence warnings, once per proposal
            proposal = sweeps.next_run(self.sweep, self.runs.sweep_runs())
        if proposal is None:  # a finished grid; infgan writes bayes and random sweeps only
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's own sentinel, a str
        config = {k: _plain(self.params[k], spec["value"]) for k, spec in proposal.config.items() if k in self.params}
        if self.points:
            config.update(self.points.pop(0))
        self.runs.config[trial_id] = config
        self.runs.state[trial_id] = "running"
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.runs.config:
            self.runs.record(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.runs.config:
            self.runs.end(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"sweep": self.sweep, "seed": self.seed, "runs": self.runs.as_dict(), "points": self.points}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            saved = pickle.load(f)
        self.sweep, self.seed = saved["sweep"], saved["seed"]
        self.runs.load(saved["runs"])
        self.points = list(saved.get("points", []))


class WandbHyperband(FIFOScheduler):
    """Ray Tune scheduler applying the sweep file's `early_terminate: hyperband` through `sweeps`.

    Its record of the trials is written to a JSON file after every decision and read back on first
    use, because `Tuner.restore` does not restore a scheduler's state.
    """

    def __init__(self, sweep: Mapping[str, Any], space: SearchSpace, state_path: str):
        super().__init__()
        import_sweeps()
        self.sweep = dict(sweep)
        self.max_t = space.steps
        self.state_path = Path(state_path)
        self.runs = _Runs(space.metric)
        self.stopped: list[str] = []  # trials this scheduler stopped early, for the reports
        self._loaded = False

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.state_path.exists():
            saved = json.loads(self.state_path.read_text())
            self.runs.load(saved)
            self.stopped = list(saved.get("stopped", []))

    def _save(self) -> None:
        write_json_atomic(self.state_path, {**self.runs.as_dict(), "stopped": self.stopped})

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._ensure_loaded()
        self.runs.config[trial.trial_id] = dict(trial.config)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._ensure_loaded()
        self.runs.config.setdefault(trial.trial_id, {})
        self.runs.record(trial.trial_id, result)
        self.runs.state[trial.trial_id] = "running"
        action = TrialScheduler.CONTINUE
        # At the full budget a stop saves nothing and would cut off the trial's last writes.
        if result.get(TIME_ATTR, 0) < self.max_t:
            stop = {run.name for run in import_sweeps().stop_runs(self.sweep, self.runs.sweep_runs())}
            if trial.trial_id in stop:
                action = TrialScheduler.STOP
                self.stopped.append(trial.trial_id)
                self.runs.state[trial.trial_id] = "finished"
        self._save()
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._ensure_loaded()
        self.runs.end(trial.trial_id, result, error=False)
        self._save()

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._ensure_loaded()
        self.runs.end(trial.trial_id, None, error=True)
        self._save()

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._ensure_loaded()
        if self.runs.state.get(trial.trial_id) == "running":
            self.runs.state[trial.trial_id] = "finished"
        self._save()

    def debug_string(self) -> str:
        return f"W&B hyperband: {len(self.stopped)} trials stopped early"
