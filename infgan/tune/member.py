"""A Population Based Training member whose trial is a TorchTrainer (`workers_per_trial` > 1).

A one-worker member trains in its Tune trial's process, whose run context hands each checkpoint to
Tune. Here the trial process only drives the TorchTrainer, so it does that part itself:

- Each checkpoint the workers report (rank 0's, marked with the member's trial id) is reported to
  Tune as the trial's checkpoint, with the metrics of the same step: Ray's `TuneReportCallback`
  hands on the metrics alone, and PBT can only copy a member that has checkpoints. The Train run
  goes on in a thread of the trial process while the trial's own thread reports.
- When Tune restarts the member from a checkpoint (another member's after an exploit, or its own
  when a resumed sweep continues it), that state, adopted as a one-worker member adopts it, is what
  the workers start from; Ray Train's record of the member's earlier run, and its checkpoints past
  that step, are set aside so that the workers do not continue the run the exploit replaced.
- When Tune stops the trial (an exploit stops a member at its report), the Train run is aborted
  through its controller, which stops the workers and removes their placement group, so that the
  restarted member finds the cluster free. Not killed: a killed controller leaves its placement
  group to Ray Train's detached cleaner, whose State API lookup fails where two Ray instances share
  a machine ("Found multiple active Ray instances", seen with Ray 2.60), and the restarted
  member's workers then wait for CPUs that never come back. The queue is unbounded so that the
  callback never blocks the controller's event loop, which must stay free to take the abort.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from ray.train.v2.api.callback import UserCallback

from infgan.atomic import atomic_write
from infgan.train.context import Member, member_checkpoint

START = "pbt_start.pt"  # in the member's run directory: the adopted state its workers start from
TRAIN_RUN = "checkpoints"  # the TorchTrainer's run directory, as infgan.train.distributed names it
TRAIN_RECORD = "checkpoint_manager_snapshot.json"  # Ray Train's record of a run's checkpoints


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


def fit_member(
    cfg: Any, run_dir: Path, member: Member, workers: int, gpus_per_worker: float, cpus_per_worker: float
) -> dict[str, Any]:
    """Train a PBT member's run over `workers` Ray Train workers; returns the run's summary."""
    import ray
    import ray.tune
    import torch
    from ray.util.queue import Empty, Queue

    from infgan.train.distributed import fit_distributed

    start = None
    adopted = member_checkpoint(member)
    if adopted is not None:
        start = run_dir / START
        atomic_write(start, lambda fh: torch.save(adopted, fh))
        _set_aside_train_run(run_dir, int(adopted["step"]))
    queue = Queue(actor_options={"num_cpus": 0})
    outcome: dict[str, Any] = {}

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
                owner=member.trial,
            )
        except BaseException as e:  # handed to the trial's thread below
            outcome["error"] = e

    thread = threading.Thread(target=drive, name=f"infgan-member-{member.trial}", daemon=True)
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
            checkpoint = ray.tune.Checkpoint.from_directory(path) if path else None
            ray.tune.report(metrics, checkpoint=checkpoint)  # Tune stops a trial here
    finally:
        if thread.is_alive() and controller is not None:
            _abort(controller)
        thread.join(timeout=60)
        queue.shutdown(force=True)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["summary"]
