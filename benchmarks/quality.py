"""Regenerates the rows of docs/quality.md: train or tune, then every metric beside its floor; prints JSON.

    python benchmarks/quality.py ou-run                 # `infgan train` at the defaults (about 4 min on 2 cores)
    python benchmarks/quality.py ou-sweep               # `infgan tune` at the defaults (about 15 min)
    python benchmarks/quality.py goog-run weather-run   # the presets' default runs (10-20 min each)
    python benchmarks/quality.py stocks-run             # preset stocks, plus TimeGAN's published scores
    python benchmarks/quality.py ou-run --reuse         # score runs already in --out without retraining
    python benchmarks/quality.py weather-sweep --samples 8   # a smaller sweep than the space's

Each row runs the same command a user would (`infgan train --config PRESET`, `infgan tune [SPACE]`)
in a subprocess with one thread per process, times it, and scores the result with
`infgan evaluate`'s code: the run's generator (for a sweep, the trial best by the sweep's own
metric) against the held-out set, every value with its real-data floor and the value's multiple
of the floor. The stocks row adds TimeGAN's discriminative and predictive scores
(`infgan evaluate --protocol timegan`, `--repeats`, default 3). Quality, not speed: the wall
times say what the row costs on this machine. Never run two benchmarks at once.
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
    "goog-run": (["train", "--config", "goog"], "run"),
    "weather-run": (["train", "--config", "weather"], "run"),
    "stocks-run": (["train", "--config", "stocks"], "run"),
    "stocks-sweep": (["tune", "search_spaces/stocks.yaml"], "sweep"),
    "goog-sweep": (["tune", "search_spaces/goog.yaml"], "sweep"),
    "weather-sweep": (["tune", "search_spaces/weather.yaml"], "sweep"),
}
METRICS = ("val/score", "val/disc", "val/pred_ratio", "val/sig_mmd")


def train(row: str, out: Path, reuse: bool, sets: list[str], samples: int | None = None) -> tuple[Path, float]:
    """Run the row's command unless --reuse finds its result; the run directory and the wall time."""
    args, kind = ROWS[row]
    target = out / row
    extra = [a for s in sets for a in ("--set", s)]
    if kind == "run":
        command = ["infgan", *args, "--out", str(target), *extra]
        done = (target / "summary.json").exists()
    else:
        command = ["infgan", *args, "--storage", str(out), "--name", row, *extra]
        command += ["--samples", str(samples)] if samples else []
        done = (target / "sweep.yaml").exists()
    wall = math.nan
    if not (reuse and done):
        print("+", " ".join(command), file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=sys.stderr)  # stdout is for the JSON
        wall = time.perf_counter() - start
    if kind == "sweep":
        from infgan.tune.report import collect

        sweep, trials = collect(target)
        finite = [t for t in trials if math.isfinite(t.best) and (t.run_dir / "generator.pt").exists()]
        if not finite:
            raise SystemExit(f"{target}: no trial finished with a generator")
        return min(finite, key=lambda t: t.best).run_dir, wall
    return target, wall


def score(row: str, run: Path, wall: float, repeats: int) -> dict:
    from infgan.evaluate import evaluate_run, evaluate_timegan
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", choices=[*ROWS, "all"])
    parser.add_argument("--out", type=Path, default=Path("runs/quality"), help="where runs go (default runs/quality)")
    parser.add_argument("--reuse", action="store_true", help="score what --out already holds instead of training")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of TimeGAN's scores (stocks rows)")
    parser.add_argument("--samples", type=int, default=None, help="sweep rows: trials (default: the space's)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    rows = list(ROWS) if "all" in args.rows else args.rows
    results = []
    for row in rows:
        run, wall = train(row, args.out, args.reuse, args.sets, args.samples)
        results.append(score(row, run, wall, args.repeats))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"rows": results}, indent=2))


if __name__ == "__main__":
    main()
