"""The `infgan` command: argument parsing only, then calls into the package.

Bad input (config, command line, files) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from infgan.cluster import ClusterError
from infgan.config import PRESETS, Config, ConfigError
from infgan.outputs import check_output
from infgan.text import error_line
from infgan.tune.space import SCHEDULERS, SEARCHERS

if TYPE_CHECKING:
    from infgan.train.run_dir import RunDir

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not usage text plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"infgan: error: {message}", file=sys.stderr)
    return code


def _add_set_arg(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=help)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE|PRESET",
        help=f"YAML file of overrides, or a preset: {', '.join(PRESETS)} (default: the default run)",
    )
    _add_set_arg(p, "override one config value, parsed as YAML (repeatable), e.g. --set train.steps=200")


def _add_wandb_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wandb",
        choices=("off", "offline", "online"),
        help="log to Weights & Biases (default: from WANDB_MODE, else off); offline files go under "
        "WANDB_DIR or the run/sweep directory, for `wandb sync`",
    )
    p.add_argument(
        "--wandb-project",
        default=os.environ.get("WANDB_PROJECT", "infgan"),
        metavar="NAME",
        help="W&B project (default: WANDB_PROJECT, else infgan)",
    )


def _tracking(args: argparse.Namespace):
    """The W&B settings of the command line, checked (one line if the mode cannot work here)."""
    from infgan.wandb.tracking import Tracking, check, in_sweep_agent, wandb_mode

    mode = wandb_mode(args.wandb)
    if in_sweep_agent() and mode == "off":
        raise ConfigError(
            "launched by a W&B sweep agent but --wandb is off: pass --wandb online (the generated "
            "sweep file does) so the run gets its config from the sweep"
        )
    tracking = Tracking(
        mode=mode, project=None if in_sweep_agent() else args.wandb_project, dir=os.environ.get("WANDB_DIR")
    )
    check(tracking)
    return tracking


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="infgan", description="Train and tune SDE-GANs (neural SDE vs neural CDE).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train one SDE-GAN in this process")
    _add_config_args(p)
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
    _add_wandb_args(p)

    p = sub.add_parser("tune", help="run a Ray Tune sweep (Optuna TPE + ASHA by default) of a search space")
    p.add_argument("space", nargs="?", metavar="SPACE.yaml", help="search space (default: search_spaces/ou.yaml)")
    p.add_argument("--samples", type=int, metavar="N", help="number of trials (default: the space's)")
    p.add_argument("--concurrency", type=int, metavar="K", help="trials at once (default: as many as the cluster fits)")
    _add_set_arg(p, "override the base config of every trial (repeatable)")
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
        choices=SCHEDULERS,
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
    _add_wandb_args(p)

    p = sub.add_parser("wandb-sweep", help="write a W&B sweep file with the same parameters as a search space")
    p.add_argument("space", nargs="?", metavar="SPACE.yaml", help="search space (default: search_spaces/ou.yaml)")
    p.add_argument("-o", "--out", required=True, metavar="SWEEP.yaml", help="the sweep file to write")
    p.add_argument("--method", choices=("bayes", "random"), default="bayes", help="W&B search method (default bayes)")
    _add_set_arg(p, "override the base config (repeatable)")

    p = sub.add_parser("compare", help="compare Ray Tune sweeps with W&B sweeps on one budget axis")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a Ray Tune sweep directory, a directory of W&B runs (offline-run-* inside), "
        "a W&B runs CSV export, or ENTITY/PROJECT/SWEEP_ID (online)",
    )
    p.add_argument("--out", metavar="DIR", help="where the table and plot go (default runs/compare-<time>)")
    p.add_argument("--metric", default="val/score", help="metric to compare (default val/score)")
    p.add_argument(
        "--mode",
        choices=("min", "max"),
        help="whether lower (min) or higher (max) values are better (default: the Ray Tune sweeps' own mode, else min)",
    )

    p = sub.add_parser("cluster", help="check a running Ray cluster before work is sent to it")
    cluster_sub = p.add_subparsers(dest="cluster_command", required=True, parser_class=_Parser)
    c = cluster_sub.add_parser("check", help="wait for the nodes to join, then check resources, State API, storage")
    c.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        metavar="HOST:PORT",
        help="the cluster's head (default: RAY_ADDRESS)",
    )
    c.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes that must have joined (default 1)")
    c.add_argument("--cpus", type=float, default=0.0, metavar="C", help="CPUs the cluster must have in all")
    c.add_argument("--gpus", type=float, default=0.0, metavar="G", help="GPUs the cluster must have in all")
    c.add_argument("--storage", metavar="DIR", help="a directory every node must be able to write and share")
    c.add_argument(
        "--timeout", type=float, default=300.0, metavar="S", help="seconds to wait for the nodes to join (default 300)"
    )

    p = sub.add_parser("report", help="table, CSV, best config and plots of a finished or interrupted sweep")
    p.add_argument("exp_dir", metavar="EXP_DIR")

    p = sub.add_parser("data", help="look at a config's data before training on it")
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    d = data_sub.add_parser("describe", help="series, lengths, sampling intervals, missing values per channel")
    _add_config_args(d)
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("evaluate", help="every metric beside its real-data floor, for a run or a sweep's top trials")
    p.add_argument("path", metavar="RUN_DIR|SWEEP_DIR")
    p.add_argument("--n", type=int, metavar="N", help="generated paths (default: as many as the held-out set)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="sweep: trials shown, best first (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--protocol",
        choices=("infgan", "timegan"),
        default="infgan",
        help="run: infgan's metrics and floors (default), or TimeGAN's published discriminative and predictive scores",
    )
    p.add_argument("--repeats", type=int, default=10, metavar="R", help="timegan: repeats averaged (default 10)")

    p = sub.add_parser("sample", help="write generated paths of a trained run, in data units")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=1000, help="number of paths (default 1000)")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--condition",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a conditional run: every path under this condition (repeat for each condition column); "
        "default: conditions drawn from the training series'",
    )

    p = sub.add_parser(
        "export", help="write a trained run's generator as one TorchScript file that needs only torch to sample"
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="FILE.ts", help="the file to write (.ts or .pt: TorchScript)")

    p = sub.add_parser("score", help="the trained critic's score of every series/window of a file, ranked (anomalies)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", required=True, metavar="FILE", help="a file in the run's data format (csv/parquet/npz)")
    p.add_argument("--out", metavar="FILE.csv", help="write every window's row here (default: only the table)")
    p.add_argument("--top", type=int, default=10, metavar="K", help="rows shown, lowest score first (default 10)")
    return parser


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
    from infgan.wandb.sweep_file import agent_overrides
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


def _train(args: argparse.Namespace) -> int:
    from infgan.interrupt import sigterm_as_interrupt
    from infgan.train.run_dir import RunDir
    from infgan.wandb.tracking import Tracker

    if args.resume and not args.out:
        return _fail("--resume needs --out DIR, the run to continue")
    out = check_output(_train_out(args), "dir", "--out")
    tracking = _tracking(args)
    tracker = Tracker(tracking, out)
    cfg = _train_config(args, out, tracker)
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
        return _fail(f"{summary['message']} (run directory {out})", EXIT_FAILED)
    print(_train_summary(summary, RunDir(out)))
    return 0


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
            raise _Failed(f"training failed after its restarts: {error_line(e)}") from None


class _Failed(Exception):
    """A run that failed for a reason other than bad input (exit code 1)."""


def _tune(args: argparse.Namespace) -> int:
    import dataclasses

    from infgan.config import parse_set
    from infgan.tune.report import build_report
    from infgan.tune.run import run_sweep
    from infgan.tune.space import load_space

    space = load_space(args.space, parse_set(args.sets))
    changes = {
        k: v
        for k, v in (
            ("samples", args.samples),
            ("workers_per_trial", args.workers_per_trial),
            ("gpus_per_worker", args.gpus_per_worker),
            ("searcher", args.searcher),
            ("scheduler", args.scheduler),
        )
        if v is not None
    }
    if any(isinstance(v, (int, float)) and v < (1 if k != "gpus_per_worker" else 0) for k, v in changes.items()):
        return _fail("--samples and --workers-per-trial must be >= 1, --gpus-per-worker >= 0")
    if args.concurrency is not None and args.concurrency < 1:
        return _fail(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.confirm is not None:
        top, _, seeds = args.confirm.partition(",")
        if not (top.strip().isdigit() and seeds.strip().isdigit()) or (int(top) == 0) != (int(seeds) == 0):
            return _fail(
                f"--confirm takes K,N (the K best configs on N fresh seeds, e.g. 2,3; 0,0: none); got {args.confirm!r}"
            )
        changes.update(confirm_top=int(top), confirm_seeds=int(seeds))
    space = dataclasses.replace(space, **changes)
    if args.resume and not args.name:
        return _fail("--resume needs --name, the sweep to continue")
    name = args.name or f"{Path(space.name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    exp = check_output(Path(args.storage), "dir", "--storage") / name
    try:
        run_sweep(space, exp, args.resume, args.concurrency, args.address, tracking=_tracking(args))
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; continue with: infgan tune {args.space or ''} --name {name} --storage {args.storage} "
            "--resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    build_report(exp)
    print(f"sweep directory {exp.resolve()}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from infgan.tune.report import build_report

    build_report(Path(args.exp_dir))
    return 0


def _wandb_sweep(args: argparse.Namespace) -> int:
    from infgan.config import parse_set
    from infgan.tune.space import load_space
    from infgan.wandb.sweep_file import write_sweep

    space = load_space(args.space, parse_set(args.sets))
    path = write_sweep(space, check_output(Path(args.out), "file", "--out"), args.method)
    print(
        f"wrote {path}: {len(space.params)} parameters, method {args.method}; "
        f"start it with `wandb sweep {path}` and `wandb agent ENTITY/PROJECT/SWEEP_ID`"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from infgan.commands.compare import compare

    out = check_output(Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}"), "dir", "--out")
    print(compare(args.paths, out, args.metric, args.mode))
    print(f"table {out / 'compare.csv'}, plot {out / 'compare.png'}")
    return 0


def _data(args: argparse.Namespace) -> int:
    import json

    from infgan.config import resolve
    from infgan.data.describe import describe_data, format_description

    description = describe_data(resolve(source=args.config, sets=args.sets))
    print(json.dumps(description, indent=2) if args.json else format_description(description))
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from infgan.cluster import check_cluster, ray_session

    if not args.address:
        return _fail("cluster check needs --address HOST:PORT (or RAY_ADDRESS) of a running Ray cluster")
    if args.nodes < 1 or args.cpus < 0 or args.gpus < 0 or args.timeout <= 0:
        return _fail("--nodes must be >= 1, --cpus and --gpus >= 0, --timeout > 0")
    with ray_session(args.address, timeout_s=args.timeout):
        print(
            check_cluster(args.nodes, args.cpus, args.gpus, Path(args.storage) if args.storage else None, args.timeout),
            flush=True,
        )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from infgan.commands.evaluate import (
        evaluate_run,
        evaluate_sweep,
        evaluate_timegan,
        run_table,
        sweep_table,
        timegan_table,
    )

    path = Path(args.path)
    if args.protocol == "timegan":
        if (path / "sweep.yaml").exists():
            return _fail("--protocol timegan takes a run directory, not a sweep's (pass one trial's run)")
        metrics = evaluate_timegan(path, args.repeats)
        print(json.dumps(metrics, indent=2) if args.json else timegan_table(metrics))
    elif (path / "sweep.yaml").exists():
        result = evaluate_sweep(path, args.top, args.n)
        print(json.dumps(result, indent=2) if args.json else sweep_table(result))
        if not args.json:
            print(f"all trials: {path / 'evaluate.csv'}; plot: {path / 'plots' / 'evaluate.png'}")
    else:
        metrics = evaluate_run(path, args.n, plots=path / "evaluate")
        print(json.dumps(metrics, indent=2) if args.json else run_table(metrics))
        if not args.json:
            print(f"plots: {path / 'evaluate'} (correlation.png, norms.png, ks.png)")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from infgan.commands.sample import write_samples

    if args.n < 1:
        return _fail(f"-n must be a positive number of paths, got {args.n}")
    out = check_output(Path(args.out), "file", "--out")
    path = write_samples(Path(args.run_dir), args.n, out, args.seed, args.condition)
    print(f"wrote {args.n} paths to {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from infgan.commands.export import export_generator

    out = export_generator(Path(args.run_dir), check_output(Path(args.out), "file", "--out"))
    print(f"wrote {out}: torch.jit.load('{out}')(n, seed) gives n paths in data units; .times(), .channels()")
    return 0


def _score(args: argparse.Namespace) -> int:
    from infgan.commands.score import score_file, scores_table, write_scores

    if args.top < 1:
        return _fail(f"--top must be a positive number of rows, got {args.top}")
    out = check_output(Path(args.out), "file", "--out") if args.out else None
    rows = score_file(Path(args.run_dir), Path(args.data))
    print(scores_table(rows, args.top))
    if out is not None:
        print(f"{len(rows)} windows ranked in {write_scores(rows, out)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `infgan` console script."""
    args = build_parser().parse_args(argv)
    handlers = {
        "train": _train,
        "tune": _tune,
        "report": _report,
        "evaluate": _evaluate,
        "data": _data,
        "sample": _sample,
        "export": _export,
        "score": _score,
        "wandb-sweep": _wandb_sweep,
        "compare": _compare,
        "cluster": _cluster,
    }
    try:
        return handlers[args.command](args)
    except ConfigError as e:
        return _fail(str(e))
    except (_Failed, ClusterError) as e:
        return _fail(str(e), EXIT_FAILED)
    except (MemoryError, RuntimeError) as e:
        # PyTorch's CPU and CUDA allocators raise RuntimeError (or its subclass OutOfMemoryError).
        if isinstance(e, RuntimeError) and not any(w in str(e) for w in ("can't allocate memory", "out of memory")):
            raise
        return _fail(
            f"out of memory ({error_line(e)}); lower train.batch_size, data.t_size, data.size, "
            "model.hidden_size or model.mlp_size",
            EXIT_FAILED,
        )
