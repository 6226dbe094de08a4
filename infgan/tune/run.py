"""`infgan tune`: a Ray Tune sweep (Optuna TPE + ASHA by default) of one search space, resumable.

Layout of `<storage>/<name>/`: `sweep.yaml` (the validated space), `optuna.log` (the Optuna
study of a tpe or random searcher), `asha_state.json` or `hyperband_state.json` (the scheduler's
record), `wandb_sweep.yaml` (the sweep file a wandb-* searcher or scheduler reads),
`trials/<trial_id>/` (each trial's infgan run directory: config.yaml, metrics.jsonl, checkpoints,
plots...), `tune/` (Ray Tune's own experiment: its state, per-trial result.json, progress.csv and
TensorBoard event files) and, written at the end or by `infgan report`, `results.csv`,
`best_config.yaml`, `best.json` and `plots/`. Tune gets a folder of its own because it copies its
experiment folder's .json/.pkl files down on restore and back up on every save, which would
overwrite newer files of ours with stale copies.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from infgan.config import ConfigError
from infgan.interrupt import sigterm_as_interrupt
from infgan.tune.callbacks import StepBudget, SweepProgress
from infgan.tune.results import TRIALS, TUNE_CONFIRM, confirmation_points, finished_trials, read_runs
from infgan.tune.schedulers import make_scheduler
from infgan.tune.searchers import make_searcher, population
from infgan.tune.space import SearchSpace, check_scheduler
from infgan.tune.spec import SCHEDULERS
from infgan.tune.trial import confirm_trial, finish_cut_off, tune_trial
from infgan.wandb.tracking import Tracking

TUNE_DIR = "tune"


ORPHANS = "orphans"


def set_aside_orphans(exp_dir: Path, tune_dir: Path) -> list[str]:
    """Move the trials Tune's saved state does not know to `<exp>/orphans/`; returns their ids.

    Tune saves its record of the trials at most every second; a trial that a killed driver started
    in that last second trained (its files are real) but is unknown to the restored sweep, which
    samples its place again. Left in `trials/` it would count as an extra trial of the sweep; it is
    kept, out of the way, and named in one line."""
    from ray.tune import ExperimentAnalysis

    known = {t.trial_id for t in ExperimentAnalysis(str(tune_dir)).trials}
    root = exp_dir / TRIALS
    orphans = sorted(d.name for d in (root.iterdir() if root.is_dir() else []) if d.name not in known)
    for name in orphans:
        (exp_dir / ORPHANS).mkdir(exist_ok=True)
        (root / name).rename(exp_dir / ORPHANS / name)
    if orphans:
        print(
            f"trials {', '.join(orphans)} started after the killed driver last saved Tune's record: the sweep "
            f"samples their places again; their files are in {exp_dir / ORPHANS}",
            file=sys.stderr,
        )
    return orphans


def trial_cost(space: SearchSpace) -> tuple[float, float]:
    """(CPUs, GPUs) one trial occupies: its own process plus, for N > 1 workers, the workers."""
    if space.workers_per_trial == 1:
        return space.cpus_per_worker, space.gpus_per_worker
    # The trial process only drives the TorchTrainer; Tune does not see the workers' placement
    # group, so concurrency is limited by hand from this cost.
    return 1.0 + space.workers_per_trial * space.cpus_per_worker, space.workers_per_trial * space.gpus_per_worker


def concurrency_for(space: SearchSpace, cluster: dict[str, float]) -> int:
    """How many trials fit the cluster at once."""
    cpus, gpus = trial_cost(space)
    fits = [math.floor(cluster.get("CPU", 0) / cpus)]
    if gpus:
        fits.append(math.floor(cluster.get("GPU", 0) / gpus))
    return max(1, min(fits))


def run_sweep(
    space: SearchSpace,
    exp_dir: Path,
    resume: bool,
    concurrency: int | None,
    address: str | None,
    first_points: bool = True,
    max_total_steps: int | None = None,
    tracking: Tracking | None = None,
) -> Path:
    """Run (or resume) the sweep; returns the experiment directory.

    The space's `searcher` and `scheduler` pick the search (Optuna TPE or random; W&B's Bayesian
    or random) and the early stopping (ASHA, W&B's hyperband, none) or the population (PBT, PB2).
    The other settings exist for benchmarks/hpo_compare.py: no first points, and a total
    training-step budget for the sweep.
    """
    from ray import tune

    from infgan.cluster import check_resources, check_state_api, ray_session

    exp_dir = exp_dir.resolve()
    _preflight(space, exp_dir, resume, address)
    with ray_session(address):
        import ray

        check_state_api()
        check_resources("one trial", *trial_cost(space))
        limit = concurrency or concurrency_for(space, ray.cluster_resources())
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / "sweep.yaml").write_text(yaml.safe_dump(space_record(space), sort_keys=False))
        resources = trial_resources(space)
        trainable = tune.with_resources(tune.with_parameters(tune_trial, space=space, exp_dir=str(exp_dir)), resources)
        callbacks = _callbacks(space, exp_dir, resume, limit, tracking)
        tune_dir = exp_dir / TUNE_DIR
        if resume and tune.Tuner.can_restore(str(tune_dir)):
            set_aside_orphans(exp_dir, tune_dir)
        stop = StepBudget(max_total_steps) if max_total_steps else None
        search = lambda: _search(space, exp_dir, trainable, limit, callbacks, first_points, stop)  # noqa: E731
        results = _fit(_start_or_restore(tune_dir, trainable, callbacks, search))
        for trial_id in finish_cut_off(exp_dir, space.steps):
            print(
                f"{trial_id}  ended by Tune after its last step, before its summary: finished from its last checkpoint"
            )
        if max_total_steps is None and finished_trials(exp_dir) + results.num_errors < space.samples:
            raise KeyboardInterrupt  # Tune's SIGINT handler (Ctrl-C, or SIGTERM) saved the state and returned early
        if space.confirm_top and space.confirm_seeds:  # (a budgeted sweep too: hpo_compare confirms)
            run_confirmation(space, exp_dir, limit, resources)
    return exp_dir


def _preflight(space: SearchSpace, exp_dir: Path, resume: bool, address: str | None) -> None:
    """Everything refused in one line before Ray starts: the sweep directory, a resume of another
    space, a missing sweep engine or data package, a trial larger than this machine."""
    from infgan.cluster import check_local
    from infgan.data.named import check_source

    check_scheduler(space)
    if resume and not (exp_dir / "sweep.yaml").exists():
        raise ConfigError(f"--resume: no sweep to resume at {exp_dir}")
    if not resume and exp_dir.exists():
        raise ConfigError(f"{exp_dir} already holds a sweep: pass --resume to continue it, or choose another --name")
    if resume and yaml.safe_load((exp_dir / "sweep.yaml").read_text()) != space_record(space):
        raise ConfigError(f"--resume: the space or --set differs from the sweep's own ({exp_dir / 'sweep.yaml'})")
    if _uses_wandb(space):
        from infgan.tune.wandb_engine import import_sweeps

        import_sweeps()  # a missing engine fails here, before Ray starts
    first = space.trial_config((space.first_points() or [{}])[0])
    check_source(first.data)  # a missing data package: one line now, not a failure in every trial
    if address is None:  # before a local Ray starts
        from infgan.limits import check_run_memory

        check_local("one trial", *trial_cost(space))
        check_run_memory(first, channels=max(1, len(first.data.columns)))


def _uses_wandb(space: SearchSpace) -> bool:
    return space.searcher.startswith("wandb-") or space.scheduler == "wandb-hyperband"


def _callbacks(space: SearchSpace, exp_dir: Path, resume: bool, limit: int, tracking: Tracking | None) -> list[Any]:
    """What the sweep prints (its first line names the sweep directory), and its W&B runs when tracked."""
    callbacks: list[Any] = []
    if tracking is not None and tracking.mode != "off":
        from infgan.tune.callbacks import WandbTrials

        callbacks.append(WandbTrials(tracking, space, exp_dir, TRIALS))
    how = (
        f"population based training ({space.scheduler}), a perturbation every {space.pbt_interval} steps"
        if SCHEDULERS[space.scheduler].population
        else f"{space.searcher} search, {space.scheduler if space.scheduler != 'none' else 'no'} early stopping"
    )
    heading = (
        f"{'resuming' if resume else 'starting'} sweep {exp_dir}: {space.samples} trials of up to {space.steps} "
        f"steps, {how}, up to {limit} at once (TensorBoard: tensorboard --logdir {exp_dir})"
    )
    callbacks.append(SweepProgress(space, heading))
    return callbacks


def _search(
    space: SearchSpace,
    exp_dir: Path,
    trainable: Any,
    limit: int,
    callbacks: list[Any],
    first_points: bool,
    stop: StepBudget | None,
) -> Any:
    """A new Tuner for the search: the space's searcher (or population) and scheduler."""
    from ray import tune

    sweep = None
    if _uses_wandb(space):
        from infgan.tune.wandb_engine import SWEEP_FILE, read_sweep_file
        from infgan.tune.wandb_file import write_sweep

        method = "random" if space.searcher == "wandb-random" else "bayes"
        sweep = read_sweep_file(write_sweep(space, exp_dir / SWEEP_FILE, method))
    grown = SCHEDULERS[space.scheduler].population
    param_space = None
    if grown:
        import random

        random.seed(space.seed)  # PBT's explore draws from Python's random
        param_space = {"member": tune.grid_search(population(space))}
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=None if grown else make_searcher(space, exp_dir, first_points, sweep),
            scheduler=make_scheduler(space, exp_dir, sweep),
            num_samples=1 if grown else space.samples,
            max_concurrent_trials=limit,
            # A finished trial's process starts the next trial (and a PBT member continues from its
            # donor in place): no new process importing torch per trial. A trial whose training
            # thread does not end within Tune's timeout gets a new process.
            reuse_actors=True,
        ),
        run_config=_run_config(TUNE_DIR, exp_dir, callbacks, stop),
    )


def _run_config(name: str, exp_dir: Path, callbacks: list[Any], stop: StepBudget | None = None) -> Any:
    """Tune's RunConfig for a sweep's search or confirmation (`<exp>/<name>/`)."""
    from ray import tune

    return tune.RunConfig(
        name=name,
        storage_path=str(exp_dir),
        stop=stop,
        failure_config=tune.FailureConfig(max_failures=1),
        verbose=0,  # SweepProgress prints a line per trial instead of Tune's tables
        callbacks=callbacks,
    )


def _start_or_restore(tune_dir: Path, trainable: Any, callbacks: list[Any], start: Any) -> Any:
    """The Tuner of `tune_dir` restored (its unfinished trials resumed, this run's callbacks and output
    given to it), or `start()`'s new one; the one restore of the search and of the confirmation."""
    from ray import tune

    if not tune.Tuner.can_restore(str(tune_dir)):
        return start()
    try:
        tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=True)
    except (ImportError, AttributeError) as e:
        if "infgan" not in str(e):
            raise
        raise ConfigError(
            f"{tune_dir}: this sweep was started by an infgan whose sweep classes have since moved ({e}); resume it "
            "with the infgan that started it, or start a new sweep (--name)"
        ) from None
    # The restored run config is the pickled original: this run's callbacks and output replace its own.
    assert tuner._local_tuner is not None  # a local driver, not Ray Client
    run_config = tuner._local_tuner.get_run_config()
    run_config.callbacks, run_config.verbose = callbacks, 0
    return tuner


def _fit(tuner: Any) -> Any:
    """`tuner.fit()` with SIGTERM taken as Ctrl-C, and Ray's own banner left out (SweepProgress's
    first line names the sweep directory and its TensorBoard logs instead)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy output engine prints nothing at verbose 0
    # Save the experiment state at least every second (the default is every 10 s or more; a save
    # took 13 ms here), so a killed driver loses at most a second of trial bookkeeping.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    logging.getLogger("ray.tune.tune").addFilter(_tune_chatter)
    with sigterm_as_interrupt():
        return tuner.fit()


def _tune_chatter(record: logging.LogRecord) -> bool:
    """Drop two of Tune's own lines: "Resume experiment with: Tuner.restore(...)" after an interrupt (a
    user resumes with `infgan tune ... --resume`, the line `infgan tune` prints instead), and "Wrote the
    latest version of all result files and experiment state to ..." at the end of each Tune run (its
    own state folder; infgan's report names the sweep directory)."""
    message = record.getMessage()
    return "Tuner.restore" not in message and not message.startswith("Wrote the latest version of all result files")


def trial_resources(space: SearchSpace) -> dict[str, float]:
    """What Tune reserves for one trial: its worker's CPUs and GPUs, or one CPU for the process that
    drives a TorchTrainer of several workers (which reserve their own)."""
    if space.workers_per_trial == 1:
        return {"cpu": space.cpus_per_worker, "gpu": space.gpus_per_worker}
    return {"cpu": 1}


def run_confirmation(space: SearchSpace, exp_dir: Path, limit: int, resources: dict[str, float]) -> None:
    """Train the top configs on fresh seeds (or resume doing so); a Tune run of its own."""
    from ray import tune

    points = confirmation_points(space, exp_dir)
    if not points:
        return
    trainable = tune.with_resources(tune.with_parameters(confirm_trial, space=space, exp_dir=str(exp_dir)), resources)
    heading = (
        f"confirming the best {space.confirm_top} configs on {space.confirm_seeds} fresh seeds each "
        f"({len(points)} runs of {space.steps} steps)"
    )
    callbacks = [SweepProgress(space, heading, total=len(points))]
    tuner = _start_or_restore(
        exp_dir / TUNE_CONFIRM,
        trainable,
        callbacks,
        lambda: tune.Tuner(
            trainable,
            param_space={"point": tune.grid_search(points)},
            tune_config=tune.TuneConfig(max_concurrent_trials=limit, reuse_actors=True),  # as the search's
            run_config=_run_config(TUNE_CONFIRM, exp_dir, callbacks),
        ),
    )
    _fit(tuner)
    if len([c for c in read_runs(exp_dir) if c["done"]]) < len(points):
        raise KeyboardInterrupt  # Tune's SIGINT handler saved the state and returned early


def space_record(space: SearchSpace) -> dict[str, Any]:
    """What sweep.yaml holds: enough to check a resume and to build reports without Ray."""
    return {
        "name": space.name,
        "metric": space.metric,
        "mode": space.mode,
        "samples": space.samples,
        "seed": space.seed,
        "steps": space.steps,
        "eval_every": space.eval_every,
        "grace_period": space.grace_period,
        "reduction_factor": space.reduction_factor,
        # Only when not Ray's own rule, so that sweeps written before the option still resume.
        **({"judge": space.judge} if space.judge != "last" else {}),
        **({"searcher": space.searcher} if space.searcher != "tpe" else {}),
        **({"scheduler": space.scheduler} if space.scheduler != "asha" else {}),
        **({"confirm": {"top": space.confirm_top, "seeds": space.confirm_seeds}} if space.confirm_top else {}),
        "workers_per_trial": space.workers_per_trial,
        "parameters": [p.path for p in space.params],
        "distributions": [
            {
                "path": p.path,
                "type": p.type,
                "values": list(p.values),
                "low": p.low,
                "high": p.high,
                "log": p.log,
                "when": {k: list(v) for k, v in p.when},
            }
            for p in space.params
        ],
        "base": space.base,
    }
