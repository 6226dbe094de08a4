"""The `infgan` command: the registry of commands, the parser, and the exit code of each outcome.

Each command is one module under `infgan/commands/` with `arguments(parser)` (its flags) and
`run(args)` (its handler, returning the exit code), and one line in `COMMANDS`. Only the module of
the command given is imported, so `infgan --help` and every command start without the others'
imports. Bad input (config, command line, files) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from infgan.cluster import ClusterError
from infgan.commands.args import EXIT_FAILED, EXIT_USAGE, Failed
from infgan.config import ConfigError
from infgan.text import error_line

# name: (module under infgan.commands, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train one SDE-GAN in this process"),
    "tune": ("tune", "run a Ray Tune sweep (Optuna TPE + ASHA by default) of a search space"),
    "wandb-sweep": ("wandb_sweep", "write a W&B sweep file with the same parameters as a search space"),
    "compare": ("compare", "compare Ray Tune sweeps with W&B sweeps on one budget axis"),
    "cluster": ("cluster", "check a running Ray cluster before work is sent to it"),
    "report": ("report", "table, CSV, best config and plots of a finished or interrupted sweep"),
    "data": ("data", "look at a config's data before training on it"),
    "evaluate": ("evaluate", "every metric beside its real-data floor, for a run or a sweep's top trials"),
    "sample": ("sample", "write generated paths of a trained run, in data units"),
    "export": ("export", "write a trained run's generator as one TorchScript file that needs only torch to sample"),
    "score": ("score", "the trained critic's score of every series/window of a file, ranked (anomalies)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not usage text plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"infgan: error: {message}", file=sys.stderr)
    return code


def _module(name: str):
    return importlib.import_module(f"infgan.commands.{COMMANDS[name][0]}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: every command listed, with the flags of `command` (of every command if None)."""
    parser = _Parser(prog="infgan", description="Train and tune SDE-GANs (neural SDE vs neural CDE).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (_, help) in COMMANDS.items():
        p = sub.add_parser(name, help=help)
        if command is None or name == command:
            _module(name).arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `infgan` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    given = next((a for a in argv if not a.startswith("-")), "")  # the command comes first
    args = build_parser(given if given in COMMANDS else "").parse_args(argv)
    try:
        return _module(args.command).run(args)
    except ConfigError as e:
        return _fail(str(e))
    except (Failed, ClusterError) as e:
        return _fail(str(e), EXIT_FAILED)
    except (MemoryError, RuntimeError) as e:
        # PyTorch's CPU and CUDA allocators raise RuntimeError (or its subclass OutOfMemoryError).
        if isinstance(e, RuntimeError) and not any(w in str(e) for w in ("can't allocate memory", "out of memory")):
            raise
        return _fail(
            f"out of memory ({error_line(e)}); lower train.batch_size, data.t_size, data.size, "
            "model.hidden_size or model.mlp_size",
            EXIT_FAILED,
        )
