"""What an SDE-GAN learns of each random-walk family (infgan/data/walks.py); prints one JSON line per family.

    python benchmarks/families.py                  # the four presets at the default run's 1000 steps
    python benchmarks/families.py --steps 300 --family cauchy

Each family's preset (2 dimensions at correlation 0.5, 64 points) is trained with the default
run's model and training, path-level metrics at the end. Reported beside their real-data floors:
`val/score` and the path-level metrics; and, against the family's reference quantiles (closed
form for gauss and cauchy, Monte Carlo for trunc_gauss and uniform), the median over times of the
generated paths' 5/25/50/75/95 % quantile errors relative to the reference interquartile range,
with the same for a second real sample of the same size (its floor).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def quantile_error(paths, reference) -> float:
    """Median over times of max |empirical - reference| quantile over the reference IQR (one dimension)."""
    import numpy as np

    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    emp = np.nanquantile(paths, qs, axis=0).T  # (time, q)
    iqr = reference[:, 3] - reference[:, 1]
    return float(np.median(np.abs(emp - reference).max(axis=1) / iqr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", help="family (default: all four)")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    import torch

    from infgan.commands.sample import load_generator
    from infgan.config import resolve
    from infgan.data import build_dataset, walks
    from infgan.metrics import generate
    from infgan.train.context import RunContext
    from infgan.train.loop import fit

    torch.set_num_threads(1)
    for family in args.family or list(walks.FAMILIES):
        cfg = resolve(source=family, sets=[f"train.steps={args.steps}", "eval.path_metrics=end", "eval.gif_frames=0"])
        with tempfile.TemporaryDirectory() as tmp:
            summary = fit(cfg, Path(tmp) / "run", RunContext(progress=False))
            generator, _ = load_generator(Path(tmp) / "run")
            ds = build_dataset(cfg.data, cfg.seed)
            n = ds.val.size(0)
            fake = ds.denormalise(generate(generator, ds.ts, n, 0))[..., 1].numpy()
        reference, how = walks.reference_quantiles(cfg.data)
        other = walks.sample(cfg.data, torch.Generator().manual_seed(12345))[:n, :, 0].numpy()
        record = {
            "family": family,
            "steps": summary["steps"],
            "status": summary["status"],
            "val/score": summary["final_score"],
            "val/score_floor": summary["floors"].get("val/score_floor"),
            **summary["path_metrics"],
            **{f"{k}_floor": summary["floors"].get(f"{k}_floor") for k in summary["path_metrics"]},
            "quantile_error": round(quantile_error(fake, reference), 4),
            "quantile_error_floor": round(quantile_error(other, reference), 4),
            "reference": how,
            "wall_s": summary["wall_time_s"],
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
