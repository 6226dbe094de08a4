"""Search strategies side by side on one space and one total training-step budget, over N seeds.

    python benchmarks/hpo_compare.py [--seeds 5] [--strategies random,tpe,...] [--metric val/score]
                                     [--space SPACE.yaml] [--full] [--trials 5] [--steps 144]
                                     [--confirm-seeds 3] [--out runs/hpo_compare] [--reuse]

Strategies (searcher + scheduler of `infgan tune`):
    random                  Optuna random search, every trial its full length
    tpe                     Optuna TPE, every trial its full length
    tpe+asha                Optuna TPE with ASHA (the default sweep before docs/search.md)
    wandb-bayes+hyperband   W&B's Bayesian search with W&B's hyperband early stopping
    wandb-random            W&B's random search, every trial its full length
    pbt, pb2                Ray Tune's Population Based Training and PB2 over a population that
                            spends the budget (its members drawn by Optuna's random sampler)

Every sweep gets the same total budget, `trials x steps` training steps summed over its trials,
and stops when it is spent; trials run 2 at a time. No strategy is handed the base config's own
values as a first trial (infgan's sweeps do that; here it would favour the Optuna searchers).
Each (strategy, seed) pair has a seed of its own, so no two strategies start from the same
configs. By default the space's base config is shrunk for speed (t_size 16, batch 64), trials are
`--steps` long, evaluated every eighth of that, with ASHA's grace period (and W&B's min_iter) at a
quarter; `--full` runs the space as written, with the budget `samples x budget.steps`.

After each sweep, its winner (the trial with the best report) trains again from scratch on
`--confirm-seeds` seeds no trial of the sweep used, at the full trial length (infgan's own
confirmation, `infgan/tune/run.py: run_confirmation`): each sweep is judged both by its best report
and by its winner's confirmed median, which is what a user would get from the config the sweep hands over.

Prints one JSON line per sweep (its best-so-far curve against cumulative training steps), then a
summary line: per strategy the median and interquartile range of the final best, the median
best-so-far curve, and the fraction of random search's budget the strategy needs to reach random
search's final median best (on its median curve, and per seed), and the median and IQR of the
sweeps' confirmed medians. The sweeps stay in `--out`, so
`infgan compare OUT/*` draws them (median line and band per strategy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

STRATEGIES = {
    "random": ("random", "none"),
    "tpe": ("tpe", "none"),
    "tpe+asha": ("tpe", "asha"),
    "wandb-bayes+hyperband": ("wandb-bayes", "wandb-hyperband"),
    "wandb-random": ("wandb-random", "none"),
    # Population Based Training: the population is the budget's worth of full-length trials, and
    # PBT's exploit-and-explore spends it (Ray's PBT takes no searcher: "random" names its draw).
    "pbt": ("random", "pbt"),
    "pb2": ("random", "pb2"),
}
SHRINK = {"data": {"t_size": 16}, "train": {"batch_size": 64}}


def bench_space(doc: dict, args: argparse.Namespace, strategy: str, seed: int):
    """The space of one sweep: the file's, with this strategy, seed, metric and (unless --full) size."""
    from infgan.config import merge
    from infgan.tune.space import parse_space

    searcher, scheduler = STRATEGIES[strategy]
    doc = {
        **doc,
        "searcher": searcher,
        "scheduler": scheduler,
        "seed": 100 * seed + list(STRATEGIES).index(strategy),  # a seed stream per (strategy, seed)
        "points": [],
    }
    if args.metric:
        doc["metric"] = args.metric
    doc["confirm"] = {"top": 1, "seeds": args.confirm_seeds} if args.confirm_seeds else {}
    if not args.full:
        eighth, quarter = max(1, args.steps // 8), max(1, args.steps // 8) * 2
        base = dict(doc.get("base") or {})
        base["overrides"] = merge(merge(base.get("overrides") or {}, SHRINK), {"train": {"swa_start": args.steps // 2}})
        doc.update(
            base=base,
            budget={"steps": args.steps, "eval_every": eighth},
            asha={**(doc.get("asha") or {}), "grace_period": quarter, "reduction_factor": 3},
        )
    space = parse_space(doc, f"{args.space or 'search_spaces/ou.yaml'} ({strategy}, seed {seed})")
    budget = (args.trials if not args.full else space.samples) * space.steps
    if scheduler in ("pbt", "pb2"):  # a population that trains the budget between its members
        # A perturbation every 2 evaluations (3 a trial), unless --full: at the default 4 (one, at
        # half way) no member was ever exploited in 10 sweeps. Asynchronous PBT copies only a member
        # that has itself passed an interval in the top quantile, and pauses each member at its
        # first interval while others wait to start, so one interval a trial leaves no donor.
        if not args.full:
            doc = {**doc, "pbt": {**(doc.get("pbt") or {}), "perturbation_interval": 2 * space.eval_every}}
        return parse_space({**doc, "samples": budget // space.steps}, space.name), budget
    # Enough trials that the step budget, not the trial count, ends every sweep.
    return parse_space({**doc, "samples": 10 * budget // space.steps}, space.name), budget


def sweep(space, exp: Path, budget: int) -> dict:
    """Run one budgeted sweep (its winner confirmed, where the space asks); return its record
    (best-so-far curve up to the budget)."""
    from infgan.tune.results import best_so_far, collect
    from infgan.tune.run import run_sweep

    start = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress lines: stdout stays JSON only
        run_sweep(space, exp, resume=False, concurrency=2, address=None, first_points=False, max_total_steps=budget)
    _, trials = collect(exp)
    sign = -1.0 if space.mode == "max" else 1.0
    curve = [[int(steps), sign * best] for steps, _, best in best_so_far(trials) if steps <= budget]
    return {
        "searcher": space.searcher,
        "scheduler": space.scheduler,
        "space_seed": space.seed,
        "budget_steps": budget,
        "trials": len(trials),
        "final_best": curve[-1][1] if curve else None,
        "wall_s": round(time.time() - start, 1),
        "dir": str(exp),
        "curve": curve,
        **confirmation(space, exp),
    }


def confirmation(space, exp: Path) -> dict:
    """The sweep's winner on fresh seeds: which trial, its seeds, each final value, their median."""
    from infgan.tune.results import confirmed

    found = confirmed(exp, space.metric, space.mode) if space.confirm_seeds else []
    if not found:
        return {}
    best = found[0]
    return {
        "confirmed_of": best.of,
        "confirmed_seeds": best.seeds,
        "confirmed_values": best.values,
        "confirmed_median": best.median,
    }


def confirm_only(space, exp: Path) -> dict:
    """Confirm the winner of a sweep an earlier run finished without confirming (`--reuse`)."""
    from infgan.tune.run import run_confirmation, trial_resources

    with contextlib.redirect_stdout(sys.stderr):
        run_confirmation(space, exp.resolve(), 2, trial_resources(space))
    return confirmation(space, exp)


def steps_to_reach(steps: list[float], values: list[float], target: float, sign: float) -> float | None:
    """The first step at which a best-so-far curve is at least as good as `target`."""
    return next((s for s, v in zip(steps, values) if sign * v <= sign * target + 1e-12), None)


def summary(records: list[dict], budget: int, sign: float) -> dict:
    """Median/IQR of the final best, median curves, and fractions of random's steps to match it."""
    from infgan.commands.compare import median_band

    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["strategy"], []).append(r)
    out: dict = {"summary": True, "budget_steps": budget, "strategies": {}}
    target = None
    if "random" in by:
        target = statistics.median(r["final_best"] for r in by["random"] if r["final_best"] is not None)
        out["random_final_median"] = target
    for name, recs in by.items():
        finals = sorted(r["final_best"] for r in recs if r["final_best"] is not None)
        curves = [[(s, sign * v) for s, v in r["curve"]] for r in recs if r["curve"]]
        band = median_band(curves, points=65)
        median_curve = [sign * v for v in band["median"]]
        entry: dict = {
            "seeds": len(recs),
            "final_best": finals,
            "median_final_best": statistics.median(finals) if finals else None,
            "iqr": [statistics.quantiles(finals, n=4)[i] for i in (0, 2)] if len(finals) > 1 else None,
            "median_curve": {"steps": [round(s) for s in band["steps"]], "best": [round(v, 5) for v in median_curve]},
            "median_wall_s": statistics.median(r["wall_s"] for r in recs),
        }
        confirmed = sorted(r["confirmed_median"] for r in recs if r.get("confirmed_median") is not None)
        if confirmed:
            entry["confirmed_medians"] = confirmed
            entry["median_confirmed"] = statistics.median(confirmed)
            entry["confirmed_iqr"] = (
                [statistics.quantiles(confirmed, n=4)[i] for i in (0, 2)] if len(confirmed) > 1 else None
            )
        if target is not None:
            reached = steps_to_reach(band["steps"], median_curve, target, sign)
            entry["fraction_of_random_steps_to_match"] = None if reached is None else round(reached / budget, 3)
            per_seed = [
                steps_to_reach([s for s, _ in r["curve"]], [v for _, v in r["curve"]], target, sign) for r in recs
            ]
            entry["per_seed_fraction"] = [None if p is None else round(p / budget, 3) for p in per_seed]
        out["strategies"][name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", help="search space (default: search_spaces/ou.yaml)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated, from: " + ", ".join(STRATEGIES)
    )
    parser.add_argument("--metric", help="objective (default: the space's, val/score); a path metric such as val/disc")
    parser.add_argument("--full", action="store_true", help="the space as written: its config, trial length and budget")
    parser.add_argument("--trials", type=int, default=5, help="budget = TRIALS full-length trials (default 5)")
    parser.add_argument("--steps", type=int, default=144, help="full trial length in steps (default 144)")
    parser.add_argument(
        "--confirm-seeds",
        type=int,
        default=3,
        help="fresh seeds each sweep's winner trains again on (default 3; 0: no confirmation)",
    )
    parser.add_argument(
        "--out", default="runs/hpo_compare", help="where the sweeps are kept (default runs/hpo_compare)"
    )
    parser.add_argument("--reuse", action="store_true", help="keep sweeps already finished in --out; run the rest")
    args = parser.parse_args()
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or args.seeds < 1 or args.trials < 1 or args.steps < 8 or args.confirm_seeds < 0:
        parser.error(
            f"unknown strategy {unknown[0]!r}; allowed: {', '.join(STRATEGIES)}"
            if unknown
            else "--seeds and --trials must be >= 1, --steps >= 8, --confirm-seeds >= 0"
        )

    import ray
    import yaml

    from infgan.config import ConfigError, read_yaml
    from infgan.tune.space import DEFAULT_SPACE

    try:
        doc = read_yaml(args.space or str(DEFAULT_SPACE))
        if not isinstance(doc, dict):
            raise ConfigError(f"{args.space}: a search space must be a mapping")
        spaces = {(st, seed): bench_space(doc, args, st, seed) for seed in range(args.seeds) for st in strategies}
    except ConfigError as e:
        parser.exit(2, f"hpo_compare.py: error: {e}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from infgan.cluster import local_init_args

    ray.init(**local_init_args(num_cpus=2), log_to_driver=False)
    records = []
    for (st, seed), (space, budget) in spaces.items():  # seed-major: every strategy's first seed first
        exp, done = out / f"{st}-seed{seed}", out / f"{st}-seed{seed}.json"
        if args.reuse and done.exists():
            record = json.loads(done.read_text())
            if space.confirm_seeds and "confirmed_median" not in record:
                record.update(confirm_only(space, exp))
                done.write_text(json.dumps(record))
        else:
            if exp.exists() and not args.reuse:
                parser.exit(2, f"hpo_compare.py: error: {exp} exists: pass --reuse, or another --out\n")
            shutil.rmtree(exp, ignore_errors=True)  # an unfinished sweep of an earlier run starts over
            record = {"strategy": st, "seed": seed, "metric": space.metric, **sweep(space, exp, budget)}
            done.write_text(json.dumps(record))
        records.append(record)
        print(json.dumps(record), flush=True)
    sign = -1.0 if spaces[next(iter(spaces))][0].mode == "max" else 1.0
    result = summary(records, spaces[next(iter(spaces))][1], sign)
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    (out / "spaces.yaml").write_text(yaml.safe_dump({"args": vars(args)}, sort_keys=False))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
