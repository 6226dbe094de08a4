"""The run directory: config.yaml, data.json, metrics.jsonl, summary.json, generator.pt, checkpoints/, plots/."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infgan.atomic import write_json_atomic, write_text_atomic
from infgan.config import Config, ConfigError, flatten, read_yaml, resolve, save_config, to_dict
from infgan.train.checkpoint import checkpoints, step_of

# What `--resume --set` may change: how long the run trains and how often it evaluates and
# checkpoints. None of them changes a step's numbers, so an extended run matches one trained
# straight to the new length.
EXTENDABLE = ("train.steps", "eval.every", "checkpoint.every")


@dataclass
class RunDir:
    """Paths and readers/writers of one run's directory."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def data_path(self) -> Path:
        return self.root / "data.json"

    @property
    def generator_path(self) -> Path:
        return self.root / "generator.pt"

    @property
    def frames_path(self) -> Path:
        return self.root / "samples_frames.npz"

    def holds_run(self) -> bool:
        """Whether a run has already written here (Ray may have made an empty checkpoints/ first)."""
        return self.config_path.exists() or self.metrics_path.exists() or bool(checkpoints(self.checkpoints))

    def refuse_existing(self) -> None:
        """Raise the one-line error if a run has already written here (nothing is overwritten)."""
        if self.holds_run():
            raise ConfigError(f"{self.root} already holds a run: pass --resume to continue it, or choose another --out")

    def create(self, cfg: Config, data: dict[str, Any]) -> None:
        """Start a new run here; refuse to overwrite an existing one."""
        self.refuse_existing()
        self.root.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.config_path)
        write_json_atomic(self.data_path, data)
        self.metrics_path.write_text("")

    def saved_config(self) -> Config:
        """The config this run was started with."""
        if not self.config_path.exists():
            raise ConfigError(f"{self.root}: no infgan run here (no config.yaml)")
        return resolve(read_yaml(self.config_path))

    def check_resume_config(self, cfg: Config) -> Config:
        """The config to resume with: the run's own, with only the changes a resume accepts
        (`EXTENDABLE`: more training steps, another evaluation or checkpoint cadence); any other
        difference is refused (a resumed run must be the same run), as is fewer steps than reached."""
        saved, given = flatten(to_dict(self.saved_config())), flatten(to_dict(cfg))
        diff = [k for k in given if given[k] != saved[k]]
        fixed = [k for k in diff if k not in EXTENDABLE]
        if fixed:
            raise ConfigError(
                f"--resume: the config differs from {self.config_path} in '{fixed[0]}'; a resume may change only "
                f"{', '.join(EXTENDABLE)}; resume without other --config/--set, or start a new run with another --out"
            )
        reached = self.reached_step()
        if cfg.train.steps < reached:
            raise ConfigError(
                f"--resume: train.steps {cfg.train.steps} is below step {reached}, which the run has already reached; "
                f"give train.steps of at least {reached}"
            )
        return cfg

    def reached_step(self) -> int:
        """The step of the run's latest checkpoint (0 when there is none)."""
        found = checkpoints(self.checkpoints)
        return step_of(found[-1]) if found else 0

    def extend(self, cfg: Config) -> None:
        """Record the accepted changes of a resume in config.yaml (later resumes compare with them)."""
        if to_dict(cfg) != to_dict(self.saved_config()):
            save_config(cfg, self.config_path)

    def saved_floors(self) -> dict[str, float]:
        """The real-data floors stored with the run in data.json ({} if none, or from older metric protocols)."""
        from infgan.metrics.floors import VERSION

        if not self.data_path.exists():
            return {}
        data = json.loads(self.data_path.read_text())
        return dict(data.get("floors") or {}) if data.get("floors_version", 1) == VERSION else {}

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Add one evaluation's record to metrics.jsonl."""
        with self.metrics_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """All records of metrics.jsonl. A torn last line (a crash mid-write) is dropped, and said;
        a bad line elsewhere is a one-line error naming it."""
        if not self.metrics_path.exists():
            return []
        lines = [line for line in self.metrics_path.read_text(errors="replace").splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict) and "step" in record:
                records.append(record)
            elif i == len(lines) - 1:
                print(f"infgan: {self.metrics_path}: dropped a torn last line (a crash mid-write)", file=sys.stderr)
            else:
                raise ConfigError(f"{self.metrics_path}: line {i + 1} is not a metrics record; the file is damaged")
        return records

    def truncate_metrics(self, step: int) -> list[dict[str, Any]]:
        """Drop records after `step` (written after the checkpoint we resume from); return the rest."""
        kept = [r for r in self.read_metrics() if r["step"] <= step]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write summary.json."""
        write_json_atomic(self.summary_path, summary)
