"""How far each metric puts wrong paths above its real-data floor; prints JSON.

    python benchmarks/metric_separation.py                         # default OU data, seeds 0 and 1
    python benchmarks/metric_separation.py --run runs/train-...    # add a trained run's generator

Every set is scored against the held-out paths of the config's data, the way a run scores its
generator: `real` is the floor (an equal-size slice of the training paths), the others are that
slice made wrong (completed by linear interpolation first): increments shuffled in time (same
start, same increments, broken order), increments scaled by 1.1 (10 % too volatile), shifted by
0.5 (normalised units), constant 0. A metric is useful when the wrong sets sit clearly above
`real` for every seed. Quality, not speed: the timings are there only to size the protocols.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="preset or config file (default: the default run)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--run", type=Path, default=None, help="also score this run's generator")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    import torch

    from infgan.config import resolve
    from infgan.data import build_dataset
    from infgan.data.dataset import interpolation_coeffs
    from infgan.metrics import generate, quality_metrics
    from infgan.metrics.discriminative import discriminative_score
    from infgan.metrics.floors import real_slices
    from infgan.metrics.predictive import predictive_mae
    from infgan.metrics.signature import sig_mmd

    torch.set_num_threads(1)
    if args.run is not None:
        from infgan.commands.sample import load_generator
        from infgan.train.run_dir import RunDir

        cfg = RunDir(args.run).saved_config()
    else:
        cfg = resolve(source=args.config, sets=args.sets)
    data = build_dataset(cfg.data, cfg.seed)
    held, a, b = real_slices(data, cfg.seed)
    t_end = float(data.ts[-1])
    full = interpolation_coeffs(b)
    time_channel, values = full[..., :1], full[..., 1:]

    def with_values(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([time_channel, v], dim=-1)

    inc = values[:, 1:] - values[:, :-1]
    order = torch.argsort(torch.rand(inc.shape[:2], generator=torch.Generator().manual_seed(1)), dim=1)
    shuffled = inc.gather(1, order.unsqueeze(-1).expand_as(inc))
    sets = {
        "real": b,
        "shuffled": with_values(torch.cat([values[:, :1], values[:, :1] + shuffled.cumsum(1)], dim=1)),
        "volatility_x1.1": with_values(values[:, :1] + 1.1 * (values - values[:, :1])),
        "shifted_0.5": with_values(values + 0.5),
        "constant_0": with_values(torch.zeros_like(values)),
    }
    if args.run is not None:
        from infgan.train.state import rank_seed

        generator, _ = load_generator(args.run)
        sets["run"] = generate(generator, data.ts, held.size(0), rank_seed(cfg.seed, 0, "eval")).cpu()

    rows: dict[str, dict[str, list[float]]] = {}
    seconds: list[float] = []
    for seed in args.seeds:
        trtr = predictive_mae(a, held, t_end, seed)
        for name, paths in sets.items():
            start = time.perf_counter()
            found = {
                "val/score": quality_metrics(held, paths, fake_missing=name == "real")["val/score"],
                "val/disc": discriminative_score(held, paths, t_end, seed),
                "val/pred_ratio": predictive_mae(paths, held, t_end, seed) / trtr,
                "val/sig_mmd": sig_mmd(held, paths, t_end, seed),
            }
            seconds.append(time.perf_counter() - start)
            for key, value in found.items():
                rows.setdefault(name, {}).setdefault(key, []).append(round(value, 4))
    print(
        json.dumps(
            {
                "config": str(args.run) if args.run else (args.config or "default"),
                "held_out_paths": held.size(0),
                "seeds": args.seeds,
                "metrics_by_set": rows,
                "seconds_per_set": round(sorted(seconds)[len(seconds) // 2], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
