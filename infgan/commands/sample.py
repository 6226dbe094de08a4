"""`infgan sample`: generated paths of a trained run, in data units, as an .npz file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infgan.config import ConfigError
from infgan.data import conditions
from infgan.limits import check_sample_memory
from infgan.metrics import generate
from infgan.outputs import check_output
from infgan.train.trained import TrainedRun


def load_generator(run_dir: Path) -> tuple[nn.Module, dict]:
    """The run's final generator (or, for an unfinished run, its latest checkpoint's) and data.json."""
    trained = TrainedRun.open(run_dir)
    return trained.generator(), trained.data


def condition_rows(data: dict, n: int, seed: int, given: Sequence[str] = ()) -> list[dict] | None:
    """The conditions of `n` paths of a conditional run: `given` (NAME=VALUE, the same for every
    path), else drawn from the training windows' (data.json's pool) by `seed`; None when unconditional."""
    specs = data.get("conditions") or []
    if given:
        return [conditions.parse(specs, given)] * n
    if not specs:
        return None
    pool = data["condition_pool"]
    idx = torch.randint(0, len(pool), (n,), generator=torch.Generator().manual_seed(seed + CONDITION_STREAM))
    return [pool[i] for i in idx.tolist()]


CONDITION_STREAM = 7919  # a seed offset: conditions are drawn apart from the anchors (seed itself)


def write_samples(run_dir: Path, n: int, out: Path, seed: int = 0, condition: Sequence[str] = ()) -> Path:
    """Write `n` generated paths: arrays `t` (time,), `paths` (n, time, channels), `channels`, and for a
    conditional run `condition_<name>` (n,) with each path's condition."""
    trained = TrainedRun.open(run_dir)
    data = trained.data
    rows = condition_rows(data, n, seed, condition)  # refuses a bad --condition before any work
    # Before the generator is built or any path generated.
    check_sample_memory(n, len(data["times"]), trained.data_size, trained.cfg.model.hidden_size)
    generator, ts = trained.generator(), trained.times
    cond = None if rows is None else conditions.encode(data["conditions"], rows)
    values = trained.to_data_units(generate(generator, ts, n, seed, cond=cond)[..., 1:], seed)
    ts = ts * data.get("time_scale", 1.0)  # data time units since the series' start
    arrays = {"t": ts.numpy(), "paths": values.numpy(), "channels": np.array(data["channels"])}
    if rows is not None:
        arrays.update({f"condition_{k}": np.array([r[k] for r in rows]) for k in rows[0]})
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out


# The command line


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-n", type=int, default=1000, help="number of paths (default 1000)")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--condition",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a conditional run: every path under this condition (repeat for each condition column); "
        "default: conditions drawn from the training series'",
    )


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"-n must be a positive number of paths, got {args.n}")
    out = check_output(Path(args.out), "file", "--out")
    path = write_samples(Path(args.run_dir), args.n, out, args.seed, args.condition)
    print(f"wrote {args.n} paths to {path}")
    return 0
