"""`infgan evaluate`: every metric beside its real-data floor, for one trained run or for a sweep.

- A run directory: its final generator (or, unfinished, its latest checkpoint's averaged one)
  generates paths from the run's own evaluation noise; `val/score`, the path-level metrics and
  every floor are computed against the run's held-out set.
- A sweep directory: the same for every trial that has a generator; the top K (by the sweep's
  own metric) are shown, `evaluate.csv` holds all of them, and the Spearman rank correlation
  between `val/score` and each path-level metric over all of them says whether the sweep's
  objective ranks generators the way path-level tests do (`plots/evaluate.png`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

from infgan import objective
from infgan.config import ConfigError, to_dict
from infgan.objective import floor_name, with_floor
from infgan.text import format_table

SHOWN = ("val/score", "val/disc", "val/pred", "val/pred_ratio", "val/sig_mmd")


def evaluate_run(
    run_dir: Path, n: int | None = None, datasets: dict[str, Any] | None = None, plots: Path | None = None
) -> dict[str, float]:
    """Every metric of the run's generator and every floor (`val/..._floor`), as one flat dict.

    `datasets` caches built datasets by data config, for the trials of one sweep. `plots`: a
    directory for the distribution diagnostics (correlation, norms, KS by time) of these paths.
    """
    import torch

    from infgan.data import build_dataset
    from infgan.metrics import generate, path_metrics, quality_metrics
    from infgan.metrics.floors import floors
    from infgan.metrics.path_level import metric_threads
    from infgan.train.state import rank_seed
    from infgan.train.trained import TrainedRun

    if n is not None and n < 2:
        raise ConfigError(f"--n must be at least 2 paths, got {n}")
    trained = TrainedRun.open(run_dir)
    run, cfg, generator = trained.run, trained.cfg, trained.generator()
    key = json.dumps([to_dict(cfg.data), cfg.seed], sort_keys=True)
    cache = datasets if datasets is not None else {}
    if key not in cache:
        cache[key] = build_dataset(cfg.data, cfg.seed)
    dataset = cache[key]
    seed = rank_seed(cfg.seed, 0, "eval")  # the noise the run evaluated with
    count = n or dataset.val.size(0)
    cond = None
    if dataset.cond_val is not None:  # each held-out path's conditions, cycled when --n asks for more
        cond = dataset.cond_val[torch.arange(count) % dataset.cond_val.size(0)]
    fake = generate(generator, dataset.ts, count, seed, cond=cond).cpu()
    saved = run.saved_floors()
    threads = metric_threads(cfg.eval.threads)
    found = saved if "val/pred_trtr" in saved else floors(dataset, cfg.data, cfg.seed, True, threads)
    out = {k: v for k, v in quality_metrics(dataset.val_grid, fake).items() if k.count("/") == 1}
    trtr = found.get("val/pred_trtr", math.nan)
    out.update(path_metrics(dataset.val_grid, fake, float(dataset.ts[-1]), seed, trtr, threads))
    if plots is not None and bool(fake.isfinite().all()):
        from infgan.diagnostics import plot_diagnostics

        real = dataset.denormalise(dataset.val_grid, dataset.val_anchors)
        plot_diagnostics(real, dataset.denormalise(fake), plots, dataset.names)
    return {**out, **found}


def timegan_sets(run_dir: Path) -> tuple[Any, Any, list[str], int, dict[str, Any]]:
    """The windows TimeGAN's protocol compares for a run: real (every window of the data, training
    and held-out, in data units) and as many generated ones (from the run's evaluation noise, inverted
    to data units with real windows' levels), both min-max scaled by the real windows' range as
    TimeGAN's loader scales its files (its sines are generated in [0, 1] and compared as they are);
    with the channel names, the evaluation seed and the key of the real windows' floors."""
    import torch

    from infgan.data import build_dataset
    from infgan.metrics import generate, timegan
    from infgan.train.state import rank_seed
    from infgan.train.trained import TrainedRun

    trained = TrainedRun.open(run_dir)
    cfg, generator = trained.cfg, trained.generator()
    dataset = build_dataset(cfg.data, cfg.seed)
    real = torch.cat([dataset.train, dataset.val])
    if bool(torch.isnan(real[..., 1:]).any()):
        raise ConfigError(f"--protocol timegan needs complete windows; this run's data ({cfg.data.dataset}) has gaps")
    if dataset.channels < 2:
        raise ConfigError("--protocol timegan needs at least 2 channels (it predicts the last from the others)")
    anchors = None
    if dataset.anchors is not None and dataset.val_anchors is not None:
        anchors = torch.cat([dataset.anchors, dataset.val_anchors])
    real_units = dataset.denormalise(real, anchors)[..., 1:]
    seed = rank_seed(cfg.seed, 0, "eval")
    cond = None
    if dataset.cond_train is not None and dataset.cond_val is not None:  # as `real`: training, then held out
        cond = torch.cat([dataset.cond_train, dataset.cond_val])
    fake = generate(generator, dataset.ts, real.size(0), seed, cond=cond).cpu()
    shuffle = torch.Generator().manual_seed(seed)
    pool = None if anchors is None else anchors[torch.randperm(anchors.size(0), generator=shuffle)]
    fake_units = dataset.denormalise(fake, pool)[..., 1:]
    if not bool(torch.isfinite(fake_units).all()):
        raise ConfigError(f"{run_dir}: the generator's paths are not finite in data units; nothing to score")
    if cfg.data.dataset not in timegan.UNSCALED:
        real_units, fake_units = timegan.minmax(real_units, fake_units)
    # The real windows in data units depend neither on data.transform nor on how the models see them
    # (data.normalise): runs that differ only there share floors.
    data_key = {**to_dict(cfg.data), "transform": [], "normalise": "start"}
    key = {"data": data_key, "seed": cfg.seed, "protocol": "timegan", "version": 1}
    return real_units, fake_units, list(dataset.names), seed, key


def evaluate_timegan(run_dir: Path, repeats: int, progress: bool = True, shrink: int = 1) -> dict[str, float]:
    """TimeGAN's published discriminative and predictive scores of the run's generator, with floors
    (the windows of `timegan_sets`). `shrink` > 1 divides the classifiers' steps: for toy runs and
    tests, not the protocol.
    """
    from tqdm.auto import tqdm

    from infgan.cache import cached_json
    from infgan.metrics import timegan

    if repeats < 1:
        raise ConfigError(f"--repeats must be a positive number, got {repeats}")
    real_units, fake_units, _, seed, key = timegan_sets(run_dir)
    key["repeats"] = repeats
    if shrink > 1:
        key["shrink"] = shrink
    # The bar counts classifiers: each score's `repeats` for the floors, then for the run.
    shown = "{l_bar}{bar}| {n:.1f}/{total} classifiers [{elapsed}<{remaining}]"
    with tqdm(total=4 * repeats, desc="TimeGAN scores and floors", disable=not progress, bar_format=shown) as bar:

        def advance(done: float) -> None:  # fractions of classifiers: their sum may pass the total by a rounding
            bar.update(min(done, bar.total - bar.n))

        found = cached_json("floors", key, lambda: timegan.protocol_floors(real_units, seed, repeats, advance, shrink))
        bar.update(2 * repeats - bar.n)  # cached: nothing was computed
        return {**timegan.scores(real_units, fake_units, seed, repeats, advance, shrink), **found}


def timegan_table(metrics: dict[str, float]) -> str:
    """TimeGAN's two scores: mean ± std over the repeats, beside the real-data floor."""

    def cell(k: str) -> str:
        return f"{metrics[k]:.4f} ± {metrics[k + '_std']:.4f}"

    names = (("disc", "discriminative"), ("pred", "predictive"))
    rows = [[name, cell(f"timegan/{k}"), cell(f"timegan/{k}_floor")] for k, name in names]
    return format_table(["TimeGAN score", "value", "floor (real vs real)"], rows)


def run_table(metrics: dict[str, float]) -> str:
    """metric | value | floor, one row per metric."""
    rows = [[k, metrics[k], metrics.get(floor_name(k), "-")] for k in SHOWN if k in metrics]
    rows += [[k, v, "-"] for k, v in metrics.items() if k not in SHOWN and "_floor" not in k and k.count("/") == 1]
    return format_table(["metric", "value", "floor (real vs real)"], rows)


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation over the pairs where both are finite (NaN with fewer than 3)."""
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return math.nan
    return float(spearmanr(*zip(*pairs)).statistic)


def evaluate_sweep(exp_dir: Path, top: int, n: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate every trial of a sweep that has a generator; write evaluate.csv and plots/evaluate.png."""
    from tqdm.auto import tqdm

    from infgan import plots
    from infgan.train.checkpoint import latest_checkpoint
    from infgan.tune.results import collect

    if top < 1:
        raise ConfigError(f"--top must be >= 1, got {top}")
    sweep, trials = collect(exp_dir)
    usable = [
        t for t in trials if (t.run_dir / "generator.pt").exists() or latest_checkpoint(t.run_dir / "checkpoints")
    ]
    if not usable:
        raise ConfigError(f"{exp_dir}: no trial has a generator or a checkpoint yet")
    usable.sort(key=lambda t: (not math.isfinite(t.best), t.best))  # best first, by the sweep's own metric
    datasets: dict[str, Any] = {}
    rows = []
    for t in tqdm(usable, desc="evaluate", unit="trial", disable=not progress):
        rows.append(
            {
                "trial_id": t.trial_id,
                "status": t.status,
                "steps": t.steps,
                f"sweep best {sweep['metric']}": objective.sign(sweep["mode"]) * t.best,
                **evaluate_run(t.run_dir, n, datasets),
            }
        )
    with (exp_dir / "evaluate.csv").open("w", newline="") as fh:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    correlations = {k: spearman([r["val/score"] for r in rows], [r.get(k, math.nan) for r in rows]) for k in SHOWN[1:]}
    plots.plot_evaluation(rows, correlations, exp_dir / "plots" / "evaluate.png")
    return {"rows": rows, "top": rows[:top], "correlations": correlations}


def sweep_table(result: dict[str, Any]) -> str:
    """The top trials with each metric and its floor, then the rank correlations."""
    top = result["top"]
    head = ["trial", "steps", *SHOWN]
    rows = [[r["trial_id"], r["steps"], *[with_floor(r, k) for k in SHOWN]] for r in top]
    corr = ", ".join(f"{k} {v:+.2f}" for k, v in result["correlations"].items())
    return (
        f"{format_table(head, rows)}\n\nSpearman rank correlation with val/score over "
        f"{len(result['rows'])} trials: {corr}"
    )


# The command line


def arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if args.protocol == "timegan":
        if (path / "sweep.yaml").exists():
            raise ConfigError("--protocol timegan takes a run directory, not a sweep's (pass one trial's run)")
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
