"""Regenerates the rows of docs/quality.md: train or tune, then every metric beside its floor; prints JSON.

    python benchmarks/quality.py ou-run                 # `infgan train` at the defaults (about 4 min on 2 cores)
    python benchmarks/quality.py ou-sweep               # `infgan tune` at the defaults (about 15 min)
    python benchmarks/quality.py goog-run weather-run   # the presets' default runs (10-20 min each)
    python benchmarks/quality.py stocks-run             # preset stocks, plus TimeGAN's published scores
    python benchmarks/quality.py ou-run --reuse         # score runs already in --out without retraining
    python benchmarks/quality.py weather-sweep --samples 8   # a smaller sweep than the space's
    python benchmarks/quality.py ou-run --seeds 3       # the row on seeds 0, 1, 2: median and range

Each row runs the same command a user would (`infgan train --config PRESET`, `infgan tune [SPACE]`)
in a subprocess with one thread per process, times it, and scores the result with
`infgan evaluate`'s code: the run's generator (for a sweep, the trial best by the sweep's own
metric) against the held-out set, every value with its real-data floor and the value's multiple
of the floor. The stocks row adds TimeGAN's discriminative and predictive scores
(`infgan evaluate --protocol timegan`, `--repeats`, default 3). Quality, not speed: the wall
times say what the row costs on this machine. Never run two benchmarks at once.

One GAN seed is not a result: with `--seeds N` each row trains on seeds 0 .. N-1 (`--set seed=S`,
which seeds data, initialisation, noise and, for a sweep, its trials), each seed's result is
printed, and the row's summary gives each metric's median, lowest and highest over the seeds
(`"val/disc": {"median": ..., "min": ..., "max": ...}`), beside the floors' medians.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# row -> (command after `infgan`, what it trains: "run" or "sweep")
ROWS = {
    "ou-run": (["train"], "run"),
    "ou-sweep": (["tune"], "sweep"),
    "gauss-run": (["train", "--config", "gauss"], "run"),
    "goog-run": (["train", "--config", "goog"], "run"),
    "weather-run": (["train", "--config", "weather"], "run"),
    "stocks-run": (["train", "--config", "stocks"], "run"),
    "stocks-sweep": (["tune", "search_spaces/stocks.yaml"], "sweep"),
    "goog-sweep": (["tune", "search_spaces/goog.yaml"], "sweep"),
    "weather-sweep": (["tune", "search_spaces/weather.yaml"], "sweep"),
}
METRICS = ("val/score", "val/disc", "val/pred_ratio", "val/sig_mmd")


def train(row: str, out: Path, reuse: bool, sets: list[str], samples: int | None = None) -> tuple[list[Path], float]:
    """Run the row's command unless --reuse finds its result; the run directories to score and the wall
    time. A sweep's: the trial best by its metric or, when the sweep confirmed its winners on fresh
    seeds, the chosen config's confirmation runs (the row is then their median)."""
    args, kind = ROWS[row]
    target = out / row
    extra = [a for s in sets for a in ("--set", s)]
    if kind == "run":
        command = [sys.executable, "-m", "infgan", *args, "--out", str(target), *extra]
        done = (target / "summary.json").exists()
    else:
        command = [sys.executable, "-m", "infgan", *args, "--storage", str(out), "--name", row, *extra]
        command += ["--samples", str(samples)] if samples else []
        done = (target / "sweep.yaml").exists()
    wall = math.nan
    if not (reuse and done):
        print("+", " ".join(command), file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=sys.stderr)  # stdout is for the JSON
        wall = time.perf_counter() - start
    if kind == "sweep":
        from infgan.tune.results import collect

        best = target / "best.json"
        chosen = json.loads(best.read_text()) if best.exists() else {}
        if chosen.get("confirmed"):  # the confirmed winner: its runs on the fresh seeds
            runs = [
                d
                for d in sorted((target / "confirm").iterdir())
                if json.loads((d / "confirm.json").read_text())["of"] == chosen["trial_id"]
            ]
            return runs, wall
        sweep, trials = collect(target)
        finite = [t for t in trials if math.isfinite(t.best) and (t.run_dir / "generator.pt").exists()]
        if not finite:
            raise SystemExit(f"{target}: no trial finished with a generator")
        return [min(finite, key=lambda t: t.best).run_dir], wall
    return [target], wall


def score(row: str, run: Path, wall: float, repeats: int) -> dict:
    from infgan.commands.evaluate import evaluate_run, evaluate_timegan
    from infgan.objective import floor_name

    metrics = evaluate_run(run)
    summary = json.loads((run / "summary.json").read_text())
    out = {"row": row, "run": str(run), "wall_s": wall, "train_wall_s": summary.get("wall_time_s")}
    for k in METRICS:
        out[k], out[floor_name(k)] = metrics.get(k, math.nan), metrics.get(floor_name(k), math.nan)
    out["val/score_x_floor"] = out["val/score"] / out["val/score_floor"]
    if row.startswith("stocks"):
        out.update(evaluate_timegan(run, repeats, progress=True))
    return out


def over_seeds(row: str, results: list[dict]) -> dict:
    """A row's median, lowest and highest value of each metric over its seeds' results."""
    import statistics

    out: dict = {"row": row, "seeds": len(results), "runs": [r["run"] for r in results]}

    def value(x):  # a confirmed sweep's seed already summarised its runs: its median stands for it
        return x["median"] if isinstance(x, dict) and "median" in x else x

    for key in results[0]:
        values = [value(r.get(key)) for r in results]
        values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if values and key not in ("row", "run"):
            out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", choices=[*ROWS, "all"])
    parser.add_argument("--out", type=Path, default=Path("runs/quality"), help="where runs go (default runs/quality)")
    parser.add_argument("--reuse", action="store_true", help="score what --out already holds instead of training")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of TimeGAN's scores (stocks rows)")
    parser.add_argument("--samples", type=int, default=None, help="sweep rows: trials (default: the space's)")
    parser.add_argument("--seeds", type=int, default=1, help="train each row on seeds 0 .. N-1 (default 1: seed 0)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    rows = list(ROWS) if "all" in args.rows else args.rows
    results = []
    for row in rows:
        per_seed = []
        for seed in range(args.seeds):
            out = args.out / f"seed-{seed}" if args.seeds > 1 else args.out
            sets = [*args.sets, f"seed={seed}"] if args.seeds > 1 else args.sets
            runs, wall = train(row, out, args.reuse, sets, args.samples)
            scored = [{**score(row, run, wall, args.repeats), "seed": seed} for run in runs]
            for result in scored:
                print(json.dumps(result), file=sys.stderr, flush=True)
            per_seed.append(scored[0] if len(scored) == 1 else {**over_seeds(row, scored), "seed": seed})
        results.append(over_seeds(row, per_seed) if args.seeds > 1 else per_seed[0])
    print(json.dumps({"rows": results}, indent=2))


if __name__ == "__main__":
    main()
