"""Where generated paths differ from real ones, per time: increment spread and starting values; prints JSON.

    python benchmarks/path_stats.py runs/train-a runs/train-b     # each run's generator against its data

For the real training paths and for 2048 paths of each run's generator (its evaluation noise), in
normalised units: the standard deviation of the step-to-step increment at a few times (pairs with
a missing end are skipped) and the quartiles of the starting value. On OU data the real increment
spread grows linearly in time (the diffusion does); a generator that is too calm late in the path,
or whose starting values are too concentrated, is what the classifier behind `val/disc` picks up
(docs/quality.md). Quality, not speed; one thread.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--times", type=int, nargs="+", default=[0, 5, 15, 31, 47, 62], help="increment indices")
    parser.add_argument("--n", type=int, default=2048, help="generated paths per run")
    args = parser.parse_args()

    import numpy as np
    import torch

    from infgan.commands.sample import load_generator
    from infgan.data import build_dataset
    from infgan.metrics import generate
    from infgan.train.run_dir import RunDir
    from infgan.train.state import rank_seed

    torch.set_num_threads(1)

    def stats(values: torch.Tensor) -> dict:
        # values: (n, time), the first channel
        x = values.double().numpy()
        steps = np.diff(x, axis=1)
        times = [t for t in args.times if t < steps.shape[1]]
        return {
            "increment_std": {str(t): float(np.nanstd(steps[:, t])) for t in times},
            "start_quartiles": [float(q) for q in np.nanpercentile(x[:, 0], [25, 50, 75])],
        }

    out = {}
    for run in args.runs:
        cfg = RunDir(run).saved_config()
        data = build_dataset(cfg.data, cfg.seed)
        generator, _ = load_generator(run)
        fake = generate(generator, data.ts, args.n, rank_seed(cfg.seed, 0, "eval"))
        out[str(run)] = {"real": stats(data.train[..., 1]), "generated": stats(fake[..., 1])}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
