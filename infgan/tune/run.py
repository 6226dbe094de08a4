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

import json
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any

import yaml
from ray.tune import Stopper

from infgan import objective
from infgan.config import Config, ConfigError, save_config
from infgan.interrupt import sigterm_as_interrupt
from infgan.train.context import Member, TuneTrialContext, resolve_device
from infgan.train.loop import fit
from infgan.tune.progress import SweepProgress
from infgan.tune.schedulers import SCHEDULERS
from infgan.tune.space import DefineByRun, SearchSpace, check_scheduler
from infgan.wandb.tracking import Tracking

TRIALS = "trials"
TUNE_DIR = "tune"


def tune_trial(config: dict[str, Any], space: SearchSpace, exp_dir: str) -> None:
    """The Tune function trainable: one trial = one infgan run in `<exp>/trials/<trial_id>`."""
    import ray.tune

    trial_id = ray.tune.get_context().get_trial_id()
    run_dir = Path(exp_dir) / TRIALS / trial_id
    run_dir.mkdir(parents=True, exist_ok=True)
    population = SCHEDULERS[space.scheduler].population
    config = space.sampled(config)
    params = run_dir / "params.json"
    first = not params.exists()
    if first:  # written once: its time is the trial's start, for the reports
        params.write_text(json.dumps(config, indent=2))
    member = None
    if population:
        from infgan.tune.pbt import record, record_restore

        if first:
            record(Path(exp_dir), trial_id, 0, None, config)
        member = Member(
            trial_id,
            on_exploit=lambda step, donor: record(Path(exp_dir), trial_id, step, donor, config),
            on_restore=lambda step: record_restore(Path(exp_dir), trial_id, step, config),
        )
    train_trial(space, space.trial_config(config), run_dir, member)


def train_trial(space: SearchSpace, cfg: Config, run_dir: Path, member: Member | None = None) -> None:
    """Train one trial's run in `run_dir` (in this process, or over the space's Ray Train workers).

    `member`: a PBT member, whose checkpoints also go to Tune and who may resume from another
    member's (recorded in the sweep's lineage).
    """
    import ray
    import ray.tune

    # Where this trial (last) ran: on a cluster, the node to look at when a trial fails.
    (run_dir / "node.json").write_text(
        json.dumps({"hostname": socket.gethostname(), "ray_node_id": ray.get_runtime_context().get_node_id()})
    )
    if member is not None and (run_dir / "config.yaml").exists():
        save_config(cfg, run_dir / "config.yaml")  # the member's parameters from now on
    if space.workers_per_trial == 1:
        ctx = TuneTrialContext(device=resolve_device(cfg.train.device), progress=False, member=member)
        summary = fit(cfg, run_dir, ctx, resume=True)
    else:
        from infgan.train.distributed import check_request, fit_distributed

        check_request(cfg, space.workers_per_trial, space.gpus_per_worker, space.cpus_per_worker)
        workers = (space.workers_per_trial, space.gpus_per_worker, space.cpus_per_worker)
        if member is not None:  # a PBT member: its checkpoints go to Tune too, see infgan.tune.member
            from infgan.tune.member import fit_member

            summary = fit_member(cfg, run_dir, member, *workers)
        else:
            from ray.tune.integration.ray_train import TuneReportCallback

            summary = fit_distributed(cfg, run_dir, *workers, callbacks=[TuneReportCallback()], check=False)
    if summary["status"] == "diverged":
        # A diverged trial gets the worst value and is marked, so the sweep goes on and TPE learns.
        ray.tune.report({"step": summary["steps"], space.metric: objective.worst(space.mode), "diverged": True})


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
    or random) and the early stopping (ASHA, W&B's hyperband, none). The other settings exist for
    benchmarks/hpo_compare.py: no first points, and a total training-step budget for the sweep.
    """
    from ray import tune

    from infgan.cluster import check_local, check_resources, check_state_api, ray_session
    from infgan.data.named import check_source

    exp_dir = exp_dir.resolve()
    check_scheduler(space)
    if resume and not (exp_dir / "sweep.yaml").exists():
        raise ConfigError(f"--resume: no sweep to resume at {exp_dir}")
    if not resume and exp_dir.exists():
        raise ConfigError(f"{exp_dir} already holds a sweep: pass --resume to continue it, or choose another --name")
    if resume:
        saved = yaml.safe_load((exp_dir / "sweep.yaml").read_text())
        if saved != space_record(space):
            raise ConfigError(f"--resume: the space or --set differs from the sweep's own ({exp_dir / 'sweep.yaml'})")
    uses_wandb = space.searcher.startswith("wandb-") or space.scheduler == "wandb-hyperband"
    if uses_wandb:
        from infgan.wandb.engine import import_sweeps

        import_sweeps()  # a missing engine fails here, before Ray starts
    first = space.trial_config((space.first_points() or [{}])[0])
    check_source(first.data)  # a missing data package: one line now, not a failure in every trial
    if address is None:  # before a local Ray starts
        from infgan.limits import check_run_memory

        check_local("one trial", *trial_cost(space))
        check_run_memory(first, channels=max(1, len(first.data.columns)))
    with ray_session(address):
        import ray

        check_state_api()
        cpus, gpus = trial_cost(space)
        check_resources("one trial", cpus, gpus)
        limit = concurrency or concurrency_for(space, ray.cluster_resources())
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / "sweep.yaml").write_text(yaml.safe_dump(space_record(space), sort_keys=False))
        trainable = tune.with_parameters(tune_trial, space=space, exp_dir=str(exp_dir))
        callbacks: list[tune.Callback] = []
        if tracking is not None and tracking.mode != "off":
            from infgan.wandb.trials import WandbTrials

            callbacks.append(WandbTrials(tracking, space, exp_dir, TRIALS))
        resources = trial_resources(space)
        trainable = tune.with_resources(trainable, resources)
        # Save the experiment state at least every second (the default is every 10 s or more; a
        # save took 13 ms here), so a killed driver loses at most a second of trial bookkeeping.
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
        tune_dir = exp_dir / TUNE_DIR
        how = (
            f"population based training ({space.scheduler}), a perturbation every {space.pbt_interval} steps"
            if SCHEDULERS[space.scheduler].population
            else f"{space.searcher} search, {space.scheduler if space.scheduler != 'none' else 'no'} early stopping"
        )
        callbacks.append(
            SweepProgress(
                space,
                f"{'resuming' if resume else 'starting'} sweep {exp_dir}: {space.samples} trials of up to "
                f"{space.steps} steps, {how}, up to {limit} at once",
            )
        )
        if resume and tune.Tuner.can_restore(str(tune_dir)):
            set_aside_orphans(exp_dir, tune_dir)
            tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=True)
            # The restored run config is the pickled original: give it this run's callbacks and
            # output (a sweep started by an older infgan printed Tune's trial tables).
            assert tuner._local_tuner is not None  # a local driver, not Ray Client
            run_config = tuner._local_tuner.get_run_config()
            run_config.callbacks, run_config.verbose = callbacks, 0
        else:
            sweep = None
            if uses_wandb:
                from infgan.wandb.engine import SWEEP_FILE, read_sweep_file
                from infgan.wandb.sweep_file import write_sweep

                method = "random" if space.searcher == "wandb-random" else "bayes"
                sweep = read_sweep_file(write_sweep(space, exp_dir / SWEEP_FILE, method))
            kind = SCHEDULERS[space.scheduler]
            param_space = None
            if kind.population:
                import random

                from infgan.tune.pbt import population

                random.seed(space.seed)  # PBT's explore draws from Python's random
                param_space = {"member": tune.grid_search(population(space))}
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    search_alg=None if kind.population else make_searcher(space, exp_dir, first_points, sweep),
                    scheduler=kind.build(space, exp_dir, sweep),
                    num_samples=1 if kind.population else space.samples,
                    max_concurrent_trials=limit,
                    # A finished trial's process starts the next trial (and a PBT member continues
                    # from its donor in place): no new process importing torch per trial. A trial
                    # whose training thread does not end within Tune's timeout gets a new process.
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=TUNE_DIR,
                    storage_path=str(exp_dir),
                    stop=StepBudget(max_total_steps) if max_total_steps else None,
                    failure_config=tune.FailureConfig(max_failures=1),
                    verbose=0,  # SweepProgress prints a line per trial instead of Tune's tables
                    callbacks=callbacks,
                ),
            )
        with sigterm_as_interrupt():
            results = tuner.fit()
        if max_total_steps is None and _finished_trials(exp_dir) + results.num_errors < space.samples:
            # Tune's SIGINT handler (Ctrl-C, or SIGTERM above) saved the state and returned early.
            raise KeyboardInterrupt
        if space.confirm_top and space.confirm_seeds:  # (a budgeted sweep too: hpo_compare confirms)
            from infgan.tune.confirm import run_confirmation

            run_confirmation(space, exp_dir, limit, resources)
    return exp_dir


def trial_resources(space: SearchSpace) -> dict[str, float]:
    """What Tune reserves for one trial: its worker's CPUs and GPUs, or one CPU for the process that
    drives a TorchTrainer of several workers (which reserve their own)."""
    if space.workers_per_trial == 1:
        return {"cpu": space.cpus_per_worker, "gpu": space.gpus_per_worker}
    return {"cpu": 1}


OPTUNA_FILE = "optuna.log"  # the Optuna study (journal file storage), for optuna.load_study and optuna-dashboard


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
        from infgan.wandb.engine import WandbSearch

        assert sweep is not None
        return WandbSearch(sweep, space, space.first_points() if first_points else None)
    from optuna.samplers import RandomSampler, TPESampler

    from infgan.tune.search import PruningOptunaSearch

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


def _finished_trials(exp_dir: Path) -> int:
    """Trials that reached an end of their own: completed, diverged, or stopped by ASHA."""
    from infgan.tune.report import collect

    return sum(t.status != "incomplete" for t in collect(exp_dir)[1])


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
