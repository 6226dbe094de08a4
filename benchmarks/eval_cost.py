"""Seconds per evaluation metric at a config's sizes (default: the default run), one thread; prints JSON.

    python benchmarks/eval_cost.py                         # the default OU run
    python benchmarks/eval_cost.py --config goog --repeats 3

Generated paths come from the config's untrained generator (the cost does not depend on the
weights). Each metric is timed `--repeats` times and the median is printed (`val/disc`: one of
its classifiers), with `path_metrics_s` (what `eval.path_metrics: end` adds once, at the final
evaluation, and `every` adds at each evaluation) and `floors_s` (computed once per data config and
seed, then cached), both as a run computes them: on one thread, and side by side on
`eval.threads` threads (`--threads`, default the config's: 0 = one per usable core, up to 4).
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
    parser.add_argument("--threads", type=int, default=None, help="eval.threads for the side-by-side timing")
    args = parser.parse_args()

    import torch

    from infgan.config import resolve
    from infgan.data import build_dataset
    from infgan.metrics import generate, quality_metrics
    from infgan.metrics.discriminative import discriminative_score
    from infgan.metrics.floors import compute_floors
    from infgan.metrics.path_level import metric_threads, path_metrics
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
    threads = metric_threads(cfg.eval.threads if args.threads is None else args.threads)
    path_s = {n: timed(lambda n=n: path_metrics(real, fake, t_end, 0, 1.0, n)) for n in sorted({1, threads})}
    floors_s = {n: timed(lambda n=n: compute_floors(data, cfg.seed, True, n)) for n in sorted({1, threads})}
    print(
        json.dumps(
            {
                "config": args.config or "default",
                "held_out_paths": real.size(0),
                "time_points": real.size(1),
                "channels": data.channels,
                "repeats": args.repeats,
                "seconds": seconds,
                "threads": threads,
                "path_metrics_s": {"1 thread": path_s[1], f"{threads} threads": path_s[threads]},
                "floors_s": {"1 thread": floors_s[1], f"{threads} threads": floors_s[threads]},
                "side_by_side_over_one": round(path_s[threads] / path_s[1], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
