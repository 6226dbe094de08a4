"""Everything that runs in a trial's process and reports to Tune: the trainables (`tune_trial` for a
search trial, `confirm_trial` for a confirmation run), the one training of a trial (`train_trial`),
the trial's run context (`TuneTrialContext`: checkpoints as files, results to Tune), a Population
Based Training member (`Member`, and adopting a donor's checkpoint), and a trial of several Ray
Train workers (`fit_workers`). `report` is the one call of `ray.tune.report`.

A trial of several workers (`workers_per_trial` > 1): the trial process only drives a TorchTrainer
and hands on what its workers report:
- each report of the workers (rank 0's) is put on a queue by a Ray Train callback in the run's
  controller (`ForwardReports`) and reported to Tune from the trial's own thread, with its
  checkpoint when the trial is a PBT member (Tune's PBT can only copy a member that has
  checkpoints); the Train run goes on in a thread of the trial process meanwhile;
- a member restarted from a checkpoint (another member's after an exploit, or its own when a
  resumed sweep continues it) starts its workers from that state, adopted as a one-worker member
  adopts it; Ray Train's record of the earlier run, and its checkpoints past that step, are set
  aside so that the workers do not continue the run the exploit replaced;
- when Tune stops the trial (ASHA, or an exploit stopping a member at its report), the Train run is
  aborted through its controller, which stops the workers and removes their placement group, so the
  next trial finds the cluster free. Not killed: a killed controller leaves its placement group to
  Ray Train's detached cleaner, whose State API lookup fails where two Ray instances share a machine
  ("Found multiple active Ray instances", seen with Ray 2.60), and the next trial's workers then
  wait for CPUs that never come back. The queue is unbounded so that the callback never blocks the
  controller's event loop, which must stay free to take the abort.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray.train.v2.api.callback import UserCallback

from infgan import objective
from infgan.atomic import atomic_write
from infgan.config import Config, save_config
from infgan.train.checkpoint import RAY_STATE_FILE, latest_checkpoint, load_checkpoint, step_of
from infgan.train.context import RunContext, resolve_device
from infgan.train.loop import fit
from infgan.train.run_dir import RunDir
from infgan.tune.results import CONFIRM, TRIALS, record, record_restore
from infgan.tune.space import SearchSpace
from infgan.tune.spec import SCHEDULERS

# A PBT member hands each checkpoint to Tune, and Ray then logs two INFO lines per checkpoint in the
# trial's process ("Checkpoint successfully created at ...", "Restored on ... from checkpoint"),
# which the driver prints among the sweep's own lines: those lines already say what happened. Set
# here because Ray imports this module in the trial's process before it restores a checkpoint.
for _ray_logger in ("ray.train._internal.storage", "ray.tune.trainable.trainable"):
    logging.getLogger(_ray_logger).setLevel(logging.WARNING)

START = "pbt_start.pt"  # in the member's run directory: the adopted state its workers start from

TRAIN_RUN = "checkpoints"  # the TorchTrainer's run directory, as infgan.train.distributed names it

TRAIN_RECORD = "checkpoint_manager_snapshot.json"  # Ray Train's record of a run's checkpoints


def report(metrics: dict[str, Any], checkpoint_dir: str | Path | None = None) -> None:
    """Hand Tune a trial's result (and a checkpoint directory): the one place a trial reports to Tune."""
    import ray.tune

    checkpoint = ray.tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
    ray.tune.report(metrics, checkpoint=checkpoint)


def tune_trial(config: dict[str, Any], space: SearchSpace, exp_dir: str) -> None:
    """The Tune function trainable: one trial = one infgan run in `<exp>/trials/<trial_id>`."""
    import ray.tune

    trial_id = ray.tune.get_context().get_trial_id()
    run_dir = Path(exp_dir) / TRIALS / trial_id
    run_dir.mkdir(parents=True, exist_ok=True)
    population = SCHEDULERS[space.scheduler].population
    cfg = space.search_config(config)
    config = space.sampled(config)
    params = run_dir / "params.json"
    first = not params.exists()
    if first:  # written once: its time is the trial's start, for the reports
        params.write_text(json.dumps(config, indent=2))
    member = None
    if population:
        if first:
            record(Path(exp_dir), trial_id, 0, None, config)
        member = Member(
            trial_id,
            on_exploit=lambda step, donor: record(Path(exp_dir), trial_id, step, donor, config),
            on_restore=lambda step: record_restore(Path(exp_dir), trial_id, step, config),
        )
    train_trial(space, cfg, run_dir, member)


def confirm_trial(config: dict[str, Any], space: SearchSpace, exp_dir: str) -> None:
    """The Tune trainable of the confirmation: a search trial's config on a fresh seed."""
    import ray.tune

    point = config["point"]
    run_dir = Path(exp_dir) / CONFIRM / ray.tune.get_context().get_trial_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "confirm.json").write_text(json.dumps(point, indent=2))
    values = {**point["params"], "seed": point["seed"]}
    if space.base["eval"]["path_metrics"] not in ("end", "off"):
        # Judged by its final evaluation alone (no scheduler acts on it): the path-level metrics once.
        values["eval.path_metrics"] = "end"
    train_trial(space, space.trial_config(values), run_dir)


def train_trial(space: SearchSpace, cfg: Config, run_dir: Path, member: Member | None = None) -> None:
    """Train one trial's run in `run_dir` (in this process, or over the space's Ray Train workers).

    `member`: a PBT member, whose checkpoints also go to Tune and who may resume from another
    member's (recorded in the sweep's lineage).
    """
    import ray

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
        from infgan.train.distributed import check_request

        check_request(cfg, space.workers_per_trial, space.gpus_per_worker, space.cpus_per_worker)
        summary = fit_workers(
            cfg, run_dir, member, space.workers_per_trial, space.gpus_per_worker, space.cpus_per_worker
        )
    if summary["status"] == "diverged":
        # A diverged trial gets the worst value and is marked, so the sweep goes on and TPE learns.
        report({"step": summary["steps"], space.metric: objective.worst(space.mode), "diverged": True})


def finish_cut_off(exp_dir: Path, steps: int) -> list[str]:
    """Trials that reached their budget's last checkpoint but wrote no summary, finished here: their
    final plots, weights and summary written from that checkpoint, with no training (a run resumed at
    its end). Returns their ids.

    Why: Tune has ended a PBT member after its final report but before its summary (seen in two
    clean-clone CI runs of the PBT test, after a resumed sweep's exploits; in the one whose files were
    read, the trial was TERMINATED with a last result not `done`; the cause inside Tune not found), and
    a sweep counts its finished trials by their summaries, so it took itself for interrupted."""
    from infgan.tune.results import collect

    finished = []
    for t in collect(exp_dir)[1]:
        run = RunDir(t.run_dir)
        last = latest_checkpoint(run.checkpoints)
        if t.status != "incomplete" or last is None or step_of(last) < steps:
            continue
        fit(run.saved_config(), run.root, RunContext(device=torch.device("cpu"), progress=False), resume=True)
        finished.append(t.trial_id)
    return finished


@dataclass(frozen=True)
class Member:
    """A Population Based Training member as its trial's context sees it: its trial id, what to call
    (step, donor's trial id) when it continues from another member's checkpoint, and (step) when
    it continues from its own."""

    trial: str
    on_exploit: Callable[[int, str], None]
    on_restore: Callable[[int], None] = lambda step: None  # continuing from its own checkpoint at `step`


@dataclass
class TuneTrialContext(RunContext):
    """A one-worker trial inside its Tune function: checkpoints as files, results via `ray.tune.report`.

    A member of a Population Based Training sweep (`member` given) also hands each checkpoint to
    Tune, whose scheduler may restart the member from another member's: the member then continues
    from the donor's whole state, with its own random stream re-seeded and the exploit handed to
    `member.on_exploit` (the sweep's lineage).
    """

    member: Member | None = None

    def restore(self, run_dir: Path, resume: bool) -> dict[str, Any] | None:
        adopted = member_checkpoint(self.member, run_dir) if self.member is not None else None
        if adopted is not None:
            return adopted
        return super().restore(run_dir, True)  # a restarted trial always continues its own run directory

    def publish(
        self, run_dir: Path, step: int, record: dict[str, Any] | None, payload: dict[str, Any] | None, keep: int
    ) -> None:
        super().publish(run_dir, step, record, payload, keep)
        metrics = dict(record) if record is not None else {"step": step}
        if payload is None or self.member is None:
            report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({**payload, "owner": self.member.trial}, Path(tmp) / RAY_STATE_FILE)
            report(metrics, tmp)


def member_checkpoint(member: Member, run_dir: Path) -> dict[str, Any] | None:
    """The Tune checkpoint a PBT member's trial was (re)started from, as the member continues from
    it (see `adopt`), or None when Tune gave it none: a member's first start, or a resumed sweep
    whose saved record of the member holds no checkpoint (seen when the driver was killed right
    after an exploit). In the latter case the member continues from its own newest checkpoint in
    `run_dir` with the parameters Tune restored, which the lineage records as a restore."""
    import ray.tune

    checkpoint = ray.tune.get_checkpoint()
    if checkpoint is None:
        own = latest_checkpoint(RunDir(run_dir).checkpoints)
        if own is not None:
            member.on_restore(step_of(own))
        return None
    with checkpoint.as_directory() as d:
        return adopt(load_checkpoint(Path(d) / RAY_STATE_FILE), member)


def adopt(payload: dict[str, Any], member: Member) -> dict[str, Any]:
    """A checkpoint as `member` continues from it: another member's (an exploit) gets this member's
    own random stream, re-seeded from its trial and the step, and is recorded as an exploit; its own
    (a resumed sweep) is recorded as a restore."""
    from infgan.train.state import rank_seed

    donor, trial = payload.get("owner"), member.trial
    step = int(payload["step"])
    if donor and donor != trial:
        # Every rank's stream anew (`reseed` names them; ranks past 0 are seeded in the loop's `_load`).
        payload["reseed"] = f"exploit {trial}"
        payload["rng"] = torch.Generator().manual_seed(rank_seed(step, 0, payload["reseed"])).get_state()
        payload["ranks"] = []
        member.on_exploit(step, donor)
    else:
        member.on_restore(step)
    return payload


class ForwardReports(UserCallback):
    """A Ray Train callback (it runs in the Train run's controller) that puts each report, its
    checkpoint's path and the controller's handle on a queue for the trial process."""

    def __init__(self, queue: Any):
        self.queue = queue

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        import ray

        path = checkpoint.path if checkpoint is not None else None
        self.queue.put((metrics[0], path, ray.get_runtime_context().current_actor))


def _set_aside_train_run(run_dir: Path, step: int) -> None:
    """Ray Train's record of the member's earlier run and its checkpoints past `step` go to
    `<run>/superseded/`: the member continues from the state it adopted at `step` instead."""
    train_run = run_dir / TRAIN_RUN
    if not train_run.is_dir():
        return
    later = [d for d in train_run.glob("step_*") if d.is_dir() and int(d.name.split("_")[1]) > step]
    record = train_run / TRAIN_RECORD
    if not later and not record.exists():
        return
    aside = run_dir / "superseded"
    if aside.exists():
        shutil.rmtree(aside)  # what an earlier exploit set aside
    aside.mkdir()
    for path in [*later, *([record] if record.exists() else [])]:
        path.rename(aside / path.name)


def _abort(controller: Any, timeout_s: float = 60.0) -> None:
    """Abort a Train run through its controller (workers stopped, placement group removed); kill the
    controller only if that does not answer within `timeout_s`."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError

    try:
        ray.get(controller.abort.remote(), timeout=timeout_s)
    except GetTimeoutError:
        ray.kill(controller, no_restart=True)
    except RayError:
        pass  # the controller exits as it aborts: its call ends with the actor gone


def fit_workers(
    cfg: Any, run_dir: Path, member: Member | None, workers: int, gpus_per_worker: float, cpus_per_worker: float
) -> dict[str, Any]:
    """Train a trial's run over `workers` Ray Train workers, handing on their reports to Tune (a PBT
    member's with its checkpoints); returns the run's summary."""
    from ray.util.queue import Empty, Queue

    from infgan.train.distributed import fit_distributed

    start = None
    adopted = member_checkpoint(member, run_dir) if member is not None else None
    if adopted is not None:
        start = run_dir / START
        atomic_write(start, lambda fh: torch.save(adopted, fh))
        _set_aside_train_run(run_dir, int(adopted["step"]))
    queue = Queue(actor_options={"num_cpus": 0})
    outcome: dict[str, Any] = {}
    owner = member.trial if member is not None else None

    def drive() -> None:
        try:
            outcome["summary"] = fit_distributed(
                cfg,
                run_dir,
                workers,
                gpus_per_worker,
                cpus_per_worker,
                callbacks=[ForwardReports(queue)],
                check=False,
                start=start,
                owner=owner,
            )
        except BaseException as e:  # handed to the trial's thread below
            outcome["error"] = e

    thread = threading.Thread(target=drive, name=f"infgan-workers-{run_dir.name}", daemon=True)
    thread.start()
    controller = None
    try:
        while True:
            try:
                metrics, path, controller = queue.get(timeout=1.0)
            except Empty:
                if not thread.is_alive():
                    break
                continue
            report(metrics, path if member is not None else None)  # Tune stops a trial here
    finally:
        if thread.is_alive() and controller is not None:
            _abort(controller)
        thread.join(timeout=60)
        queue.shutdown(force=True)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["summary"]
