"""Where a whole `infgan train` run spends its time, by phase; prints JSON.

    python benchmarks/profile_run.py                          # the default run
    python benchmarks/profile_run.py --set train.steps=1000   # a variant
    python benchmarks/profile_run.py --config stocks --cold   # a preset, its floors computed afresh

The run is `infgan train` itself, in this process under cProfile (one thread): start-up (imports,
config), building the data, the real-data floors (cached per data config and seed after the first
run: `--cold` computes them in an empty cache, as a first run does), the training steps (with the
generator's forward pass and the loss inside them), the evaluations at every `eval.every` (the
quality metrics, and the TensorBoard figure and animation frame of each), the path-level metrics
of the final step (the classifiers behind `val/disc`, `val/pred`), checkpoints, and the final plots
with the GIF. Each phase is its cumulative time in the profile; phases inside others are indented
in their names ("step: ..."). cProfile adds a little to Python-heavy phases: read shares, not
absolute seconds, and time whole runs with `farm-bench` or `benchmarks/quality.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# phase -> (file suffix, function name); "step: " marks a part of the training steps
PHASES = {
    "data": ("infgan/data/dataset.py", "build_dataset"),
    "floors": ("infgan/metrics/floors.py", "floors"),
    "training steps": ("infgan/train/step.py", "train_step"),
    "step: generator forward": ("infgan/train/step.py", "_fake"),
    "step: fdm's loss": ("infgan/train/losses/fdm.py", "objective"),
    "step: the critic's forward": ("infgan/train/step.py", "_critic_terms"),
    "evaluations": ("infgan/train/sinks.py", "evaluate"),
    "evaluation: quality metrics": ("infgan/metrics/marginal.py", "quality_metrics"),
    "evaluation: path-level metrics": ("infgan/metrics/path_level.py", "path_metrics"),
    "evaluation: TensorBoard figure and animation frame": ("infgan/train/sinks.py", "_show"),
    "checkpoints": ("infgan/train/context.py", "publish"),
    "final plots and GIF": ("infgan/train/sinks.py", "write_final"),
    "final: GIF": ("infgan/train/animation.py", "write_gif"),
}


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    """Cumulative seconds of every function `name` defined in a file ending with `suffix`."""
    table = stats.stats  # type: ignore[attr-defined]
    return sum(v[3] for (file, _, func), v in table.items() if func == name and file.endswith(suffix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="preset or config file (default: the default run)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cold", action="store_true", help="compute the floors in an empty cache (a first run)")
    parser.add_argument("--save", type=Path, help="also write the raw profile here (for snakeviz, pstats)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.cold:
            os.environ["INFGAN_CACHE_DIR"] = tmp
        argv = ["train", "--out", str(Path(tmp) / "run"), "--no-progress"]
        argv += (["--config", args.config] if args.config else []) + [a for s in args.sets for a in ("--set", s)]
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        from infgan.cli import main as infgan

        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the JSON
            code = infgan(argv)
        profile.disable()
        wall = time.perf_counter() - start
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text()) if code == 0 else {}
    if args.save:
        profile.dump_stats(args.save)
    stats = pstats.Stats(profile)
    phases = {name: cumulative(stats, *where) for name, where in PHASES.items()}
    inside = sum(phases[k] for k in ("step: generator forward", "step: fdm's loss", "step: the critic's forward"))
    phases["step: the rest (backward, optimiser, averaging)"] = phases["training steps"] - inside
    phases["start-up (imports, config, run directory)"] = wall - cumulative(stats, "infgan/train/loop.py", "fit")
    steps = summary.get("steps") or 1
    out = {
        "command": "infgan " + " ".join(argv[:1] + argv[4:]),
        "exit_code": code,
        "wall_s_profiled": round(wall, 2),
        "steps": summary.get("steps"),
        "s_per_step": round(phases["training steps"] / steps, 4),
        "phases": {k: {"s": round(v, 2), "share": round(v / wall, 3)} for k, v in phases.items()},
        "final": {k: summary.get("path_metrics", {}).get(k) for k in ("val/disc", "val/pred_ratio")},
        "cold_floors": args.cold,
    }
    print(json.dumps(out, indent=2))
    sys.exit(0 if code == 0 else 1)


if __name__ == "__main__":
    main()
