"""A trained run read back from its directory, as every command that reads a run sees it: its
config, its data description (`data.json`: channels, times, normalisation, transforms,
conditions), its generator (the final one, or the latest intact checkpoint's for an unfinished or
damaged run), its critic or none, and the way back from normalised values to data units.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infgan.config import Config, ConfigError
from infgan.data import conditions
from infgan.data.dataset import to_data_units
from infgan.models import Generator
from infgan.text import error_line
from infgan.train.checkpoint import load_intact, load_latest_intact
from infgan.train.run_dir import RunDir
from infgan.train.state import TrainState, init_state


@dataclass
class TrainedRun:
    run: RunDir
    cfg: Config
    data: dict[str, Any]

    @classmethod
    def open(cls, run_dir: str | Path) -> TrainedRun:
        """The run in `run_dir`; a directory without a config or data.json is refused in one line."""
        run = RunDir(Path(run_dir))
        cfg = run.saved_config()
        if not run.data_path.exists():
            raise ConfigError(f"{run_dir}: no data.json; is this an infgan run directory?")
        return cls(run, cfg, json.loads(run.data_path.read_text()))

    @property
    def data_size(self) -> int:
        return len(self.data["channels"])

    @property
    def cond_width(self) -> int:
        return conditions.width(self.data.get("conditions") or [])

    @property
    def times(self) -> torch.Tensor:
        """The training grid (model time)."""
        return torch.tensor(self.data["times"], dtype=torch.get_default_dtype())

    def latest_state(self, missing: str) -> TrainState:
        """The whole training state of the latest intact checkpoint; `missing` says what to do without one."""
        found = load_latest_intact(self.run.checkpoints)
        if found is None:
            raise ConfigError(f"{self.run.root}: {missing}")
        state = init_state(self.cfg, self.data_size, torch.device("cpu"), cond_width=self.cond_width)
        state.load_state_dict(found[1])
        return state

    def generator(self) -> nn.Module:
        """The final generator, or the latest intact checkpoint's (an unfinished run, a damaged file)."""
        if self.run.generator_path.exists():
            try:
                generator = Generator(self.data_size, self.cfg.model, self.cond_width)
                generator.load_state_dict(load_intact(self.run.generator_path)["generator"])
                return generator
            except (ConfigError, KeyError, RuntimeError) as e:  # damaged, or not this run's shapes
                print(f"infgan: {error_line(e)}; using the latest intact checkpoint instead", file=sys.stderr)
        return self.latest_state("no usable generator.pt and no checkpoint; train first").eval_generator()

    def to_data_units(self, values: torch.Tensor, seed: int) -> torch.Tensor:
        """Normalised values (n, time, channels) in the data's own units (anchors drawn by `seed`)."""
        return to_data_units(values, self.data, seed=seed)
