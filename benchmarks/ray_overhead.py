"""What Ray Train costs: the same run in-process, under a TorchTrainer with 1 worker, and with N workers.

    python benchmarks/ray_overhead.py [--steps 400] [--workers 2] [--gpus-per-worker 0] [--set KEY=VALUE]

Prints one JSON object per mode: `steps_per_s` over the training loop (evaluations included),
`startup_s` (everything else: imports, Ray start, workers, data, shutdown) and `total_s`; then a
summary with `trainer1_vs_inprocess` (the target is >= 0.9 on a run of 60 s or more). Each mode
runs in a fresh subprocess, starting its own local Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_mode(workers: int | None, steps: int, gpus: float, sets: list[str]) -> dict:
    """Run `infgan train` once and read its summary."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "infgan",
            "train",
            "--out",
            str(out),
            "--no-progress",
            "--set",
            f"train.steps={steps}",
        ] + [x for s in sets for x in ("--set", s)]
        if workers is not None:
            cmd += ["--workers", str(workers), "--gpus-per-worker", str(gpus)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        total = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        summary = json.loads((out / "summary.json").read_text())
    loop = summary["wall_time_s"]
    return {
        "mode": "in-process" if workers is None else f"torchtrainer-{workers}",
        "workers": workers or 0,
        "steps": steps,
        "steps_per_s": round(steps / loop, 3),
        "train_loop_s": round(loop, 2),
        "startup_s": round(total - loop, 2),
        "total_s": round(total, 2),
        "final_score": summary["final_score"],
        "gpus_per_worker": gpus,
        "sets": sets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps (default 400: about 80 s here)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the multi-worker mode (default 2)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    results = []
    for workers in (None, 1, args.workers):
        results.append(run_mode(workers, args.steps, args.gpus_per_worker if workers else 0.0, args.sets))
        print(json.dumps(results[-1]), flush=True)
    base, one, many = results
    print(
        json.dumps(
            {
                "summary": True,
                "trainer1_vs_inprocess": round(one["steps_per_s"] / base["steps_per_s"], 3),
                f"trainer{args.workers}_vs_inprocess": round(many["steps_per_s"] / base["steps_per_s"], 3),
                "target_trainer1_vs_inprocess": 0.9,
            }
        )
    )


if __name__ == "__main__":
    main()
