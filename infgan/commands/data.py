"""`infgan data describe`: a config's data, looked at before training on it."""

from __future__ import annotations

import argparse

from infgan.commands.args import (
    add_config_args,
)


def arguments(p: argparse.ArgumentParser) -> None:
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=type(p))
    d = data_sub.add_parser("describe", help="series, lengths, sampling intervals, missing values per channel")
    add_config_args(d)
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from infgan.config import resolve
    from infgan.data.describe import describe_data, format_description

    description = describe_data(resolve(source=args.config, sets=args.sets))
    print(json.dumps(description, indent=2) if args.json else format_description(description))
    return 0
