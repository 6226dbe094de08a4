"""`infgan train`: one run, in this process or over Ray Train workers (`--workers N`), new,
resumed (`--resume`) or launched by a W&B sweep agent; its config resolved once here."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from infgan.commands.args import (
    EXIT_INTERRUPTED,
    Failed,
    add_config_args,
    add_wandb_args,
    wandb_settings,
)
from infgan.config import Config, ConfigError
from infgan.outputs import check_output
from infgan.text import error_line

if TYPE_CHECKING:
    from infgan.train.run_dir import RunDir


def arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/train-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="train with N Ray Train workers (DDP; the batch is split across them) instead of in this process",
    )
    p.add_argument(
        "--gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs per worker (default 0: CPU, gloo)"
    )
    p.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="CPUs per worker (default 1)")
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join (auto or HOST:PORT); default: start a fresh local Ray and stop it after",
    )
    add_wandb_args(p)


def run(args: argparse.Namespace) -> int:
    from infgan.data.named import check_source
    from infgan.interrupt import sigterm_as_interrupt
    from infgan.train.run_dir import RunDir
    from infgan.wandb.tracking import Tracker

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR, the run to continue")
    out = check_output(_train_out(args), "dir", "--out")
    tracking = wandb_settings(args)
    tracker = Tracker(tracking, out)
    cfg = _train_config(args, out, tracker)
    check_source(cfg.data)
    if args.address is None:  # a remote cluster's nodes have their own memory
        from infgan.limits import check_run_memory

        check_run_memory(cfg, channels=max(1, len(cfg.data.columns)))
    try:
        with sigterm_as_interrupt():
            if args.workers is not None:
                if tracker.run is not None:  # rank 0 of the workers continues this W&B run
                    tracking = tracking.replace(run_id=tracker.run.id, project=tracker.run.project)
                    tracker.finish(None)
                summary = _train_distributed(args, cfg, out, tracking)
            else:
                from infgan.train.context import RunContext, resolve_device
                from infgan.train.loop import fit

                ctx = RunContext(device=resolve_device(cfg.train.device), progress=not args.no_progress)
                summary = fit(cfg, out, ctx, resume=args.resume, tracker=tracker)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: infgan train --out {out} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary["status"] == "diverged":  # one line: what happened, what to change, where the run is
        raise Failed(f"{summary['message']} (run directory {out})")
    print(_train_summary(summary, RunDir(out)))
    return 0


def _train_out(args: argparse.Namespace) -> Path:
    """The run directory: --out, else a W&B agent's run's own, else runs/train-<time>."""
    from infgan.wandb.tracking import in_sweep_agent

    if args.out:
        return Path(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if in_sweep_agent():
        return Path(
            f"runs/wandb-sweep-{os.environ['WANDB_SWEEP_ID']}/{os.environ.get('WANDB_RUN_ID', 'train-' + stamp)}"
        )
    return Path(f"runs/train-{stamp}")


def _train_config(args: argparse.Namespace, out: Path, tracker) -> Config:
    """The run's config, resolved once: a resumed run's own (--config/--set may only restate it), a W&B
    agent's run (the sweep's values over --config, under --set), or --config then --set."""
    from infgan.config import resolve, to_dict
    from infgan.train.run_dir import RunDir
    from infgan.wandb.agent import agent_overrides
    from infgan.wandb.tracking import in_sweep_agent

    if args.resume:
        run = RunDir(out)
        cfg = run.saved_config()
        if args.config or args.sets:
            # --set applies on top of the run's own config; a resumed run must stay the same run,
            # but may train for longer (or evaluate/checkpoint at another cadence).
            own = None if args.config else to_dict(cfg)
            cfg = run.check_resume_config(resolve(own, source=args.config, sets=args.sets))
            run.extend(cfg)
        return cfg
    if in_sweep_agent():
        RunDir(out).refuse_existing()
        sweep = agent_overrides(tracker.start(None))
        cfg = resolve(sweep, source=args.config, sets=args.sets)
        tracker.start(cfg)  # the W&B run's config, once validated
        return cfg
    return resolve(source=args.config, sets=args.sets)


def _train_summary(summary: dict, run: RunDir) -> str:
    """One line: status, steps, wall time, val/score from first to last and the best."""

    def score(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    first = run.read_metrics()[:1]
    start = f"{score(first[0]['val/score'])} -> " if first else ""
    return (
        f"{summary['status']}: {summary['steps']} steps in {summary['wall_time_s']:.0f} s; val/score "
        f"{start}{score(summary['final_score'])} (best {score(summary['best_score'])} at step "
        f"{summary['best_step'] if summary['best_step'] is not None else '-'}); run directory {run.root}"
    )


def _train_distributed(args: argparse.Namespace, cfg: Config, out: Path, tracking) -> dict:
    """`infgan train --workers N`: the same run under a Ray Train TorchTrainer."""
    from infgan.cluster import check_local, ray_session
    from infgan.interrupt import sigterm_as_interrupt
    from infgan.train.distributed import check_request, fit_distributed
    from infgan.train.run_dir import RunDir

    check_request(cfg, args.workers, args.gpus_per_worker, args.cpus_per_worker)
    if not args.resume:
        RunDir(out).refuse_existing()
    if args.address is None:
        n = args.workers
        check_local(f"--workers {n}", n * args.cpus_per_worker, n * args.gpus_per_worker)
    # ray.init installs Ray's own SIGTERM handler (a stack dump, exit 1): take SIGTERM back after it.
    with ray_session(args.address), sigterm_as_interrupt():
        try:
            return fit_distributed(
                cfg, out, args.workers, args.gpus_per_worker, args.cpus_per_worker, tracking=tracking
            )
        except Exception as e:  # Ray wraps worker failures; say what failed in one line
            if type(e).__name__ not in ("TrainingFailedError", "WorkerGroupError", "ControllerError"):
                raise
            raise Failed(f"training failed after its restarts: {error_line(e)}") from None
