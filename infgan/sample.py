"""`infgan sample`: generated paths of a trained run, in data units, as an .npz file."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infgan.config import Config, ConfigError
from infgan.data import conditions
from infgan.data.dataset import to_data_units
from infgan.limits import check_sample_memory
from infgan.metrics import generate
from infgan.models import Generator
from infgan.text import error_line
from infgan.train.checkpoint import load_intact, load_latest_intact
from infgan.train.run_dir import RunDir
from infgan.train.state import init_state


def _run_files(run_dir: Path) -> tuple[RunDir, Config, dict]:
    """The run directory, its config and its data.json."""
    run = RunDir(run_dir)
    cfg = run.saved_config()
    if not run.data_path.exists():
        raise ConfigError(f"{run_dir}: no data.json; is this an infgan run directory?")
    return run, cfg, json.loads(run.data_path.read_text())


def _generator(run: RunDir, cfg: Config, data: dict) -> nn.Module:
    """The final generator, or the latest intact checkpoint's (an unfinished run, a damaged file)."""
    data_size, cond_width = len(data["channels"]), conditions.width(data.get("conditions", []))
    if run.generator_path.exists():
        try:
            generator = Generator(data_size, cfg.model, cond_width)
            generator.load_state_dict(load_intact(run.generator_path)["generator"])
            return generator
        except (ConfigError, KeyError, RuntimeError) as e:  # damaged, or not this run's shapes
            print(f"infgan: {error_line(e)}; using the latest intact checkpoint instead", file=sys.stderr)
    found = load_latest_intact(run.checkpoints)
    if found is None:
        raise ConfigError(f"{run.root}: no usable generator.pt and no checkpoint; train first")
    state = init_state(cfg, data_size, torch.device("cpu"), cond_width=cond_width)
    state.load_state_dict(found[1])
    return state.eval_generator()


def load_generator(run_dir: Path) -> tuple[nn.Module, dict]:
    """The run's final generator (or, for an unfinished run, its latest checkpoint's) and data.json."""
    generator, _, data = load_run_generator(run_dir)
    return generator, data


def load_run_generator(run_dir: Path) -> tuple[nn.Module, Config, dict]:
    """`load_generator`, with the run's config."""
    run, cfg, data = _run_files(run_dir)
    return _generator(run, cfg, data), cfg, data


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
    run, cfg, data = _run_files(run_dir)
    rows = condition_rows(data, n, seed, condition)  # refuses a bad --condition before any work
    # Before the generator is built or any path generated.
    check_sample_memory(n, len(data["times"]), len(data["channels"]), cfg.model.hidden_size)
    generator = _generator(run, cfg, data)
    ts = torch.tensor(data["times"], dtype=torch.get_default_dtype())
    cond = None if rows is None else conditions.encode(data["conditions"], rows)
    values = to_data_units(generate(generator, ts, n, seed, cond=cond)[..., 1:], data, seed=seed)
    ts = ts * data.get("time_scale", 1.0)  # data time units since the series' start
    arrays = {"t": ts.numpy(), "paths": values.numpy(), "channels": np.array(data["channels"])}
    if rows is not None:
        arrays.update({f"condition_{k}": np.array([r[k] for r in rows]) for k in rows[0]})
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out
