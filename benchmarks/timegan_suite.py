"""TimeGAN's benchmark table (sines, stocks, energy, MuJoCo) for infgan's presets: train, score, tabulate; prints JSON.

    python benchmarks/timegan_suite.py                        # all four datasets, 3 seeds, 10 repeats
    python benchmarks/timegan_suite.py stocks --seeds 3 --jobs 2
    python benchmarks/timegan_suite.py --reuse                # keep what --out holds (runs, scores), do the rest
    python benchmarks/timegan_suite.py sines --set train.steps=1000   # a variant of the presets
    python benchmarks/timegan_suite.py --toy                  # tiny runs and classifiers: checks the pipeline only

Each dataset's preset (`sines`, `timegan_stocks`, `energy`, `mujoco`) is trained on seeds 0 .. N-1 exactly as a
user would (`infgan train --config PRESET --set seed=S --out OUT/DATASET/seed-S`), then scored with
TimeGAN's protocol (`infgan evaluate RUN --protocol timegan`: the discriminative and predictive
scores, `--repeats` classifiers each, default TimeGAN's 10, and their real-data floors). The table
gives each score as the mean ± std over the training seeds of each seed's mean over its repeats,
beside the published rows and beside real data against real data; then infgan's own classifier
score `val/disc` (median and range over the seeds, with its floor), the steps and the wall time
of each run. `OUT/table.md` holds the markdown; stdout the JSON. `--jobs 2` trains and scores two
runs at once (a run's training takes one thread). Never beside another benchmark.

The published rows are TimeGAN's protocol on TimeGAN's own files (sequence length 24): discriminative
score, lower is better, predictive in brackets; real data's own predictive score in the header. MuJoCo's
are Diffusion-TS's table on its hopper rollouts (TimeGAN's and TimeVAE's there are Diffusion-TS's runs of
them: neither paper reports MuJoCo; ImagenTime's MuJoCo is another data set and is left out).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

PRESETS = {"sines": "sines", "stocks": "timegan_stocks", "energy": "energy", "mujoco": "mujoco"}
REAL_PREDICTIVE = {"sines": 0.094, "stocks": 0.036, "energy": 0.250, "mujoco": 0.007}
# method -> dataset -> (discriminative, predictive)
PUBLISHED = {
    "TimeGAN (NeurIPS 2019)": {
        "sines": (0.011, 0.093),
        "stocks": (0.102, 0.038),
        "energy": (0.236, 0.273),
        "mujoco": (0.238, 0.025),
    },
    "TimeVAE (2021)": {
        "sines": (0.041, 0.093),
        "stocks": (0.145, 0.039),
        "energy": (0.499, 0.292),
        "mujoco": (0.230, 0.012),
    },
    "Diffusion-TS (ICLR 2024)": {
        "sines": (0.006, 0.093),
        "stocks": (0.067, 0.036),
        "energy": (0.122, 0.250),
        "mujoco": (0.008, 0.007),
    },
    "ImagenTime (NeurIPS 2024, as later papers quote it)": {"stocks": (0.037, 0.036), "energy": (0.040, 0.250)},
}
# Toy runs: a few steps of small models, and classifiers at 1/100 of the protocol's steps.
TOY = [
    "train.steps=4",
    "train.swa_start=2",
    "eval.every=4",
    "checkpoint.every=4",
    "model.hidden_size=4",
    "model.mlp_size=4",
    "eval.plots=false",
    "eval.tensorboard=false",
    "eval.gif_frames=0",
    "data.size=300",
    "eval.path_metrics=off",  # val/disc's classifiers and floors: most of a toy run's time, tested elsewhere
]
TOY_SHRINK = 100
SCORES = "timegan_suite.json"  # a run's TimeGAN scores, kept for --reuse


def train(dataset: str, seed: int, out: Path, sets: list[str], reuse: bool) -> Path:
    """Train one seed of the dataset's preset (unless --reuse finds it finished); its run directory."""
    run = out / dataset / f"seed-{seed}"
    if reuse and (run / "summary.json").exists():
        return run
    extra = [x for s in [*sets, f"seed={seed}"] for x in ("--set", s)]
    command = [
        sys.executable,
        "-m",
        "infgan",
        "train",
        "--config",
        PRESETS[dataset],
        "--out",
        str(run),
        "--no-progress",
        *extra,
    ]
    print("+", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=sys.stderr)
    return run


def score(run: Path, repeats: int, shrink: int, reuse: bool) -> dict:
    """TimeGAN's two scores and floors of one run, and what its summary says (steps, wall time, val/disc).

    The scores are kept in RUN/timegan_suite.json; --reuse reads them back when they were computed
    with the same repeats and classifier size and the run has not changed since."""
    import torch

    from infgan.commands.evaluate import evaluate_timegan

    torch.set_num_threads(1)
    summary = json.loads((run / "summary.json").read_text())
    kept = run / SCORES
    key = {"repeats": repeats, "shrink": shrink, "generator_mtime": (run / "generator.pt").stat().st_mtime}
    if reuse and kept.exists() and json.loads(kept.read_text()).get("key") == key:
        out = json.loads(kept.read_text())["scores"]
    else:
        out = evaluate_timegan(run, repeats, progress=False, shrink=shrink)
        kept.write_text(json.dumps({"key": key, "scores": out}, indent=2))
    path = summary.get("path_metrics", {})
    floors = summary.get("floors", {})
    return {
        "run": str(run),
        **out,
        "steps": summary["steps"],
        "train_wall_s": summary["wall_time_s"],
        "val/disc": path.get("val/disc", math.nan),
        "val/disc_floor": floors.get("val/disc_floor", math.nan),
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def summarise(dataset: str, runs: list[dict]) -> dict:
    """One dataset's row: the scores' mean ± std over seeds, floors, val/disc's median and range."""
    disc, pred = mean_std([r["timegan/disc"] for r in runs]), mean_std([r["timegan/pred"] for r in runs])
    own = [r["val/disc"] for r in runs]
    return {
        "dataset": dataset,
        "preset": PRESETS[dataset],
        "seeds": len(runs),
        "disc_mean": disc[0],
        "disc_std": disc[1],
        "pred_mean": pred[0],
        "pred_std": pred[1],
        "disc_floor": statistics.fmean(r["timegan/disc_floor"] for r in runs),
        "pred_real": statistics.fmean(r["timegan/pred_floor"] for r in runs),
        "repeats_std_median": statistics.median(r["timegan/disc_std"] for r in runs),
        "val_disc_median": statistics.median(own),
        "val_disc_min": min(own),
        "val_disc_max": max(own),
        "val_disc_floor_median": statistics.median(r["val/disc_floor"] for r in runs),
        "steps": sorted({r["steps"] for r in runs}),
        "train_wall_s": [round(r["train_wall_s"]) for r in runs],
        "per_seed": [
            {k: r[k] for k in ("run", "timegan/disc", "timegan/disc_std", "timegan/pred", "val/disc")} for r in runs
        ],
    }


def markdown(rows: dict[str, dict], repeats: int) -> str:
    """The published table with infgan's row and real data's, then infgan's own scores and costs."""
    names = [d for d in PRESETS if d in rows]

    def cell(d: str) -> str:
        r = rows[d]
        return f"**{r['disc_mean']:.3f} ± {r['disc_std']:.3f}** ({r['pred_mean']:.3f} ± {r['pred_std']:.3f})"

    head = "| method | " + " | ".join(f"{d} (real {REAL_PREDICTIVE[d]:.3f})" for d in names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    for method, scores in PUBLISHED.items():
        cells = [f"{scores[d][0]:.3f} ({scores[d][1]:.3f})" if d in scores else "–" for d in names]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    seeds = ", ".join(sorted({str(rows[d]["seeds"]) for d in names}))
    lines.append(
        f"| infgan, neural SDE ({seeds} seeds × {repeats} repeats, mean ± std over seeds) | "
        + " | ".join(cell(d) for d in names)
        + " |"
    )
    real = [f"{rows[d]['disc_floor']:.3f} ({rows[d]['pred_real']:.3f})" for d in names]
    lines.append("| real against real (infgan's floors, same protocol) | " + " | ".join(real) + " |")
    head = ["dataset", "preset", "steps", "training wall per seed (s)", "infgan `val/disc` median (range; floor)"]
    lines += ["", "| " + " | ".join([*head, "TimeGAN disc per seed"]) + " |", "|---" * (len(head) + 1) + "|"]
    for d in names:
        r = rows[d]
        own = f"{r['val_disc_median']:.3f} ({r['val_disc_min']:.3f}–{r['val_disc_max']:.3f}; "
        own += f"{r['val_disc_floor_median']:.3f})"
        if not math.isfinite(r["val_disc_median"]):
            own = "– (not computed)"
        cells = [d, f"`{r['preset']}`", "/".join(map(str, r["steps"])), ", ".join(map(str, r["train_wall_s"])), own]
        cells.append(", ".join(f"{s['timegan/disc']:.3f}" for s in r["per_seed"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "datasets", nargs="*", metavar="DATASET", help="sines, stocks, energy, mujoco (default: all four)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0 .. N-1 (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="TimeGAN's classifiers per score (default 10)")
    parser.add_argument("--out", type=Path, default=Path("runs/timegan_suite"), help="default runs/timegan_suite")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained and scored at once (default 1)")
    parser.add_argument("--reuse", action="store_true", help="keep runs in --out, and scores at the same --repeats")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--toy", action="store_true", help="tiny runs and classifiers: checks the pipeline only")
    args = parser.parse_args()
    if args.seeds < 1 or args.repeats < 1 or args.jobs < 1:
        parser.exit(2, "timegan_suite.py: error: --seeds, --repeats and --jobs must be >= 1\n")
    unknown = [d for d in args.datasets if d not in PRESETS]
    if unknown:
        parser.exit(2, f"timegan_suite.py: error: unknown dataset {unknown[0]!r}; choose from {', '.join(PRESETS)}\n")
    datasets = args.datasets or list(PRESETS)
    shrink = TOY_SHRINK if args.toy else 1
    jobs = [(d, s) for d in datasets for s in range(args.seeds)]

    def sets_for(d: str) -> list[str]:
        return [*(TOY if args.toy else []), *args.sets]

    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(train, *zip(*[(d, s, args.out, sets_for(d), args.reuse) for d, s in jobs])))
        scored = list(pool.map(score, runs, *zip(*[(args.repeats, shrink, args.reuse)] * len(runs))))
    rows = {d: summarise(d, [r for (dd, _), r in zip(jobs, scored) if dd == d]) for d in datasets}
    table = markdown(rows, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table)
    print(table, file=sys.stderr)
    print(json.dumps({"repeats": args.repeats, "toy": args.toy, "sets": args.sets, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
