"""What several commands share on the command line: `--config`/`--set`, the W&B flags and their
checked settings, and the exit codes. Bad input is a `ConfigError` (one line, exit code 2); a run
that failed for another reason is `Failed` (exit code 1)."""

from __future__ import annotations

import argparse
import os

from infgan.config import PRESETS, ConfigError

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class Failed(Exception):
    """A run that failed for a reason other than bad input (exit code 1)."""


def add_set_arg(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE|PRESET",
        help=f"YAML file of overrides, or a preset: {', '.join(PRESETS)} (default: the default run)",
    )
    add_set_arg(p, "override one config value, parsed as YAML (repeatable), e.g. --set train.steps=200")


def add_wandb_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wandb",
        choices=("off", "offline", "online"),
        help="log to Weights & Biases (default: from WANDB_MODE, else off); offline files go under "
        "WANDB_DIR or the run/sweep directory, for `wandb sync`",
    )
    p.add_argument(
        "--wandb-project",
        default=os.environ.get("WANDB_PROJECT", "infgan"),
        metavar="NAME",
        help="W&B project (default: WANDB_PROJECT, else infgan)",
    )


def wandb_settings(args: argparse.Namespace):
    """The W&B settings of the command line, checked (one line if the mode cannot work here)."""
    from infgan.wandb.tracking import Tracking, check, in_sweep_agent, wandb_mode

    mode = wandb_mode(args.wandb)
    if in_sweep_agent() and mode == "off":
        raise ConfigError(
            "launched by a W&B sweep agent but --wandb is off: pass --wandb online (the generated "
            "sweep file does) so the run gets its config from the sweep"
        )
    settings = Tracking(
        mode=mode, project=None if in_sweep_agent() else args.wandb_project, dir=os.environ.get("WANDB_DIR")
    )
    check(settings)
    return settings
