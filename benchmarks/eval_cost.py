"""Seconds per evaluation metric at a config's sizes (default: the default run), one thread; prints JSON.

    python benchmarks/eval_cost.py                         # the default OU run
    python benchmarks/eval_cost.py --config goog --repeats 3

Generated paths come from the config's untrained generator (the cost does not depend on the
weights). Each metric is timed `--repeats` times and the median is printed, with
`path_metrics_s` (what `eval.path_metrics: end` adds once, at the final evaluation, and `every`
adds at each evaluation) and `floors_s` (computed once per data config and seed, then cached).
Compare them with the run's wall time (`infgan train` prints it) for the share.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="preset or config file (default: the default run)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from infgan.config import resolve
    from infgan.data import build_dataset
    from infgan.metrics import generate, quality_metrics
    from infgan.metrics.discriminative import discriminative_score
    from infgan.metrics.floors import compute_floors
    from infgan.metrics.predictive import predictive_mae
    from infgan.metrics.signature import sig_mmd
    from infgan.train.state import init_state

    torch.set_num_threads(1)
    cfg = resolve(source=args.config, sets=args.sets)
    data = build_dataset(cfg.data, cfg.seed)
    real, t_end = data.val_grid, float(data.ts[-1])
    fake = generate(init_state(cfg, data.channels, torch.device("cpu")).generator, data.ts, real.size(0), 0)

    def timed(fn) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(statistics.median(times), 3)

    seconds = {
        "generate": timed(
            lambda: generate(init_state(cfg, data.channels, torch.device("cpu")).generator, data.ts, real.size(0), 0)
        ),
        "val/score": timed(lambda: quality_metrics(real, fake, data.names)),
        "val/disc": timed(lambda: discriminative_score(real, fake, t_end, 0)),
        "val/pred": timed(lambda: predictive_mae(fake, real, t_end, 0)),
        "val/sig_mmd": timed(lambda: sig_mmd(real, fake, t_end, 0)),
    }
    floors_s = timed(lambda: compute_floors(data, cfg.seed, path_level=True))
    path_s = round(seconds["val/disc"] + seconds["val/pred"] + seconds["val/sig_mmd"], 3)
    print(
        json.dumps(
            {
                "config": args.config or "default",
                "held_out_paths": real.size(0),
                "time_points": real.size(1),
                "channels": data.channels,
                "repeats": args.repeats,
                "seconds": seconds,
                "path_metrics_s": path_s,
                "floors_s": floors_s,
            }
        )
    )


if __name__ == "__main__":
    main()
