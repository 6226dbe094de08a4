"""Weights & Biases tracking, from rank 0 only; `wandb` is imported only when a mode other than off is used.

One W&B run per infgan run (or per sweep trial: run id = trial id, grouped by the sweep's name,
logged from the sweep's driver by `infgan.tune.callbacks`, so that a trial ASHA stops keeps
everything it logged).
Its config is the run's config with the same nested keys as a config file; metrics are logged
under their infgan names (`train/…`, `val/…`, `time/…`) against the training step (`step`, a W&B
step metric, so resumed runs and W&B sweeps share one x-axis); the final plots are logged as
images; the summary holds the best values. Offline runs are written under `<dir>/wandb/`
(`dir` defaults to the run or sweep directory) for `wandb sync` to upload later.
"""

from __future__ import annotations

import dataclasses
import netrc
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlparse

from infgan.config import Config, ConfigError, to_dict

MODES = ("off", "offline", "online")
_FROM_WANDB_MODE = {"disabled": "off", "offline": "offline", "dryrun": "offline", "online": "online", "run": "online"}


@dataclass(frozen=True)
class Tracking:
    """Where and how a run is tracked in W&B (not part of the run's config: it does not change results)."""

    mode: str = "off"
    project: str | None = "infgan"  # None: W&B's own choice (a sweep agent's project)
    entity: str | None = None
    group: str | None = None
    run_id: str | None = None
    name: str | None = None
    dir: str | None = None
    job_type: str = "train"

    def replace(self, **changes: Any) -> Tracking:
        return dataclasses.replace(self, **changes)


def wandb_mode(flag: str | None) -> str:
    """`--wandb` if given, else W&B's own WANDB_MODE variable (disabled = off), else off."""
    if flag is not None:
        return flag
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env and env not in _FROM_WANDB_MODE:
        raise ConfigError(f"WANDB_MODE={env!r} is not a W&B mode; use online, offline or disabled")
    return _FROM_WANDB_MODE.get(env, "off")


def has_api_key() -> bool:
    """Whether W&B can authenticate: WANDB_API_KEY, an identity token file, or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = os.environ.get("NETRC", str(Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check(tracking: Tracking) -> None:
    """Fail early, in one line, when the mode cannot work here (never printing a key)."""
    if tracking.mode not in MODES:
        raise ConfigError(f"--wandb must be one of {', '.join(MODES)}; got {tracking.mode!r}")
    if tracking.mode == "off":
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--wandb {tracking.mode} needs the wandb package: pip install 'infgan[wandb]' (or use --wandb off)"
        ) from None
    if tracking.mode == "online" and not has_api_key():
        raise ConfigError(
            "--wandb online needs a W&B API key: run `wandb login` or set WANDB_API_KEY; "
            "or log with --wandb offline and upload later with `wandb sync`"
        )


def in_sweep_agent() -> bool:
    """Whether a W&B sweep agent launched this process (it sets these before running the command)."""
    return bool(os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_SWEEP_PARAM_PATH"))


class Tracker:
    """One W&B run of one infgan run; every method is a no-op when tracking is off."""

    def __init__(self, tracking: Tracking, run_dir: Path):
        self.tracking, self.run_dir, self.config_set = tracking, Path(run_dir), False
        self.run: Any = None  # the wandb Run while one is open

    def start(self, cfg: Config | None) -> dict[str, Any]:
        """Start (or resume) the W&B run; returns the config W&B holds (a sweep agent's overrides)."""
        if self.tracking.mode == "off":
            return {}
        if self.run is None:
            import wandb

            t = self.tracking
            root = Path(t.dir or self.run_dir)
            root.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=t.project,
                entity=t.entity,
                group=t.group,
                id=self._run_id(),
                name=t.name,
                job_type=t.job_type,
                dir=str(root),
                mode=cast(Literal["offline", "online"], t.mode),  # "off" returned above
                resume="allow",
                reinit="create_new",  # a sweep driver holds one W&B run per running trial
                config=None if in_sweep_agent() else (to_dict(cfg) if cfg else None),
                settings=wandb.Settings(console="off", silent=True),
            )
            self.run.define_metric("step")
            for prefix in ("train/*", "val/*", "time/*", "plots/*"):
                self.run.define_metric(prefix, step_metric="step")
        elif cfg is not None and not self.config_set:  # an agent's run: its config once validated
            self.run.config.update(to_dict(cfg), allow_val_change=True)
        self.config_set = self.config_set or cfg is not None
        return dict(self.run.config)

    def update_config(self, cfg: Config) -> None:
        """The started run's config replaced by `cfg` (a population member's new values after an exploit)."""
        if self.run is not None:
            self.run.config.update(to_dict(cfg), allow_val_change=True)

    def _run_id(self) -> str | None:
        """The given id, the agent's (None: W&B reads it), or one kept in the run directory (a resumed
        run continues its W&B run)."""
        if self.tracking.run_id or in_sweep_agent():
            return self.tracking.run_id
        path = self.run_dir / "wandb_run_id"
        if not path.exists():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(4))  # W&B ids: letters and digits
        return path.read_text().strip()

    def log(self, record: dict[str, Any]) -> None:
        """One evaluation's record (its `step` is the x-axis)."""
        if self.run is not None:
            self.run.log({k: v for k, v in record.items() if isinstance(v, (int, float))})

    def finish(self, summary: dict[str, Any] | None, plots: Path | None = None, status: str | None = None) -> None:
        """Log the plots as images, put the best values in the summary, and close the run."""
        if self.run is None:
            return
        import wandb

        if status is not None:
            self.run.summary["status"] = status

        if plots is not None and summary is not None:
            images: dict[str, Any] = {f"plots/{p.stem}": wandb.Image(str(p)) for p in sorted(plots.glob("*.png"))}
            # The animation as W&B's video type (a gif file is logged as it is: no encoder needed).
            images.update({f"plots/{p.stem}_animation": wandb.Video(str(p), format="gif") for p in plots.glob("*.gif")})
            if images:
                self.run.log({"step": summary["steps"], **images})
        if summary is not None:
            # The final path-level metrics and every floor, so that W&B's tables show them side by side.
            self.run.summary.update({**summary.get("path_metrics", {}), **summary.get("floors", {})})
            self.run.summary.update(
                {
                    "best/val/score": summary["best_score"],
                    "best/step": summary["best_step"],
                    "final/val/score": summary["final_score"],
                    "status": summary["status"],
                    "steps": summary["steps"],
                    "wall_time_s": summary["wall_time_s"],
                }
            )
        failed = status == "error" or (summary is not None and summary["status"] != "completed")
        self.run.finish(exit_code=1 if failed else 0)
        self.run = None
