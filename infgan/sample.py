"""`infgan sample`: generated paths of a trained run, in data units, as an .npz file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infgan.config import Config, ConfigError
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


def _generator(run: RunDir, cfg: Config, data_size: int) -> nn.Module:
    """The final generator, or the latest intact checkpoint's (an unfinished run, a damaged file)."""
    if run.generator_path.exists():
        try:
            generator = Generator(data_size, cfg.model)
            generator.load_state_dict(load_intact(run.generator_path)["generator"])
            return generator
        except (ConfigError, KeyError, RuntimeError) as e:  # damaged, or not this run's shapes
            print(f"infgan: {error_line(e)}; using the latest intact checkpoint instead", file=sys.stderr)
    found = load_latest_intact(run.checkpoints)
    if found is None:
        raise ConfigError(f"{run.root}: no usable generator.pt and no checkpoint; train first")
    state = init_state(cfg, data_size, torch.device("cpu"))
    state.load_state_dict(found[1])
    return state.eval_generator()


def load_generator(run_dir: Path) -> tuple[nn.Module, dict]:
    """The run's final generator (or, for an unfinished run, its latest checkpoint's) and data.json."""
    generator, _, data = load_run_generator(run_dir)
    return generator, data


def load_run_generator(run_dir: Path) -> tuple[nn.Module, Config, dict]:
    """`load_generator`, with the run's config."""
    run, cfg, data = _run_files(run_dir)
    return _generator(run, cfg, len(data["channels"])), cfg, data


def write_samples(run_dir: Path, n: int, out: Path, seed: int = 0) -> Path:
    """Write `n` generated paths: arrays `t` (time,), `paths` (n, time, channels), `channels`."""
    run, cfg, data = _run_files(run_dir)
    # Before the generator is built or any path generated.
    check_sample_memory(n, len(data["times"]), len(data["channels"]), cfg.model.hidden_size)
    generator = _generator(run, cfg, len(data["channels"]))
    ts = torch.tensor(data["times"], dtype=torch.get_default_dtype())
    values = to_data_units(generate(generator, ts, n, seed)[..., 1:], data, seed=seed)
    ts = ts * data.get("time_scale", 1.0)  # data time units since the series' start
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, t=ts.numpy(), paths=values.numpy(), channels=np.array(data["channels"]))
    return out
