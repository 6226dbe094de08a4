"""`infgan tune`: a Ray Tune sweep of a search space (the space's settings, overridden by the
flags), then its report."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infgan.commands.args import (
    EXIT_INTERRUPTED,
    add_set_arg,
    add_wandb_args,
    wandb_settings,
)
from infgan.config import ConfigError
from infgan.outputs import check_output
from infgan.tune.spec import SCHEDULERS, SEARCHERS


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", nargs="?", metavar="SPACE.yaml", help="search space (default: search_spaces/ou.yaml)")
    p.add_argument("--samples", type=int, metavar="N", help="number of trials (default: the space's)")
    p.add_argument("--concurrency", type=int, metavar="K", help="trials at once (default: as many as the cluster fits)")
    add_set_arg(p, "override the base config of every trial (repeatable)")
    p.add_argument(
        "--workers-per-trial", type=int, metavar="N", help="Ray Train workers per trial (default: the space's, 1)"
    )
    p.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs per worker (default: the space's, 0)")
    p.add_argument(
        "--address", metavar="ADDR", help="Ray cluster to join (auto or HOST:PORT); default: a fresh local Ray"
    )
    p.add_argument(
        "--searcher",
        choices=SEARCHERS,
        help="tpe or random (Optuna), wandb-bayes or wandb-random (W&B's sweep engine); default: the space's, tpe",
    )
    p.add_argument(
        "--scheduler",
        choices=tuple(SCHEDULERS),
        help="early stopping: asha, wandb-hyperband (W&B's) or none; default: the space's, asha",
    )
    p.add_argument(
        "--confirm",
        metavar="K,N",
        help="after the search, train the K best configs again on N fresh seeds each and pick the best median "
        "(default: the space's confirm:, else none; 0,0 turns it off)",
    )
    p.add_argument("--storage", default="runs/tune", metavar="DIR", help="where sweeps are written (default runs/tune)")
    p.add_argument("--name", metavar="NAME", help="sweep name (default: <space>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the sweep --name in --storage")
    add_wandb_args(p)


def run(args: argparse.Namespace) -> int:
    from infgan.config import parse_set
    from infgan.interrupt import sigterm_as_interrupt
    from infgan.tune.report import build_report
    from infgan.tune.run import run_sweep
    from infgan.tune.space import parse_space, read_space, space_path

    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {args.concurrency}")
    path = space_path(args.space)
    overrides = _overrides(args, read_space(path))
    space = parse_space(read_space(path, overrides), path, parse_set(args.sets))
    if args.resume and not args.name:
        raise ConfigError("--resume needs --name, the sweep to continue")
    name = args.name or f"{Path(space.name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    exp = check_output(Path(args.storage), "dir", "--storage") / name
    # SIGTERM (scancel, a time-limit warning) anywhere in the command, the report and Ray's shutdown
    # included, ends it as Ctrl-C does: one line, exit code 130, and the same command with --resume
    # continues (a sweep that had finished only writes its report again).
    with sigterm_as_interrupt():
        try:
            run_sweep(space, exp, args.resume, args.concurrency, args.address, tracking=wandb_settings(args))
            build_report(exp)
        except KeyboardInterrupt:
            print(
                f"\ninterrupted; continue with: infgan tune {args.space or ''} --name {name} "
                f"--storage {args.storage} --resume",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    print(f"sweep directory {exp.resolve()}")
    return 0


def _overrides(args: argparse.Namespace, doc: Any) -> dict[str, Any]:
    """The flags as overrides of the space file's own settings, checked with them by `parse_space`."""
    given = {
        "samples": args.samples,
        "searcher": args.searcher,
        "scheduler": args.scheduler,
        "resources": {
            k: v
            for k, v in (("workers_per_trial", args.workers_per_trial), ("gpus_per_worker", args.gpus_per_worker))
            if v is not None
        },
    }
    out: dict[str, Any] = {k: v for k, v in given.items() if v not in (None, {})}
    if args.confirm is not None:
        top, _, seeds = args.confirm.partition(",")
        if not (top.strip().isdigit() and seeds.strip().isdigit()) or (int(top) == 0) != (int(seeds) == 0):
            raise ConfigError(
                f"--confirm takes K,N (the K best configs on N fresh seeds, e.g. 2,3; 0,0: none); got {args.confirm!r}"
            )
        out["confirm"] = {"top": int(top), "seeds": int(seeds)} if int(top) else None  # None: no confirmation
    written = doc.get("searcher", "tpe") if isinstance(doc, Mapping) else "tpe"
    if args.scheduler is not None and SCHEDULERS[args.scheduler].population and written not in ("tpe", "random"):
        # A population scheduler named here draws its members itself: the space's searcher (chosen
        # for the space's own scheduler) is set aside, and the sweep says so before it starts.
        if args.searcher is not None:
            raise ConfigError(
                f"--scheduler {args.scheduler} draws its own population and takes no searcher; drop --searcher "
                f"{args.searcher}: infgan tune {args.space or ''} --scheduler {args.scheduler}".replace("  ", " ")
            )
        out["searcher"] = "random"
        print(
            f"infgan: --scheduler {args.scheduler} draws its own population at random: the space's searcher "
            f"{written} is not used",
            flush=True,
        )
    return out
