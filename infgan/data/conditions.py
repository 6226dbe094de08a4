"""Static per-series conditions (`data.condition_columns`): what a conditional generator is given.

A condition column holds one value per series (the airport of a weather series, the transport
mode of a GeoLife trip). Each becomes part of one condition vector per path:

- categorical columns (any column whose values are not all numbers): one-hot over the values seen
  in training, in sorted order; a value training never saw is refused when asked for;
- numeric columns: standardised by the training series' mean and standard deviation.

The encoding (`specs`) is saved with the run (data.json), with a pool of the training windows'
conditions from which unconditioned samples draw, so `infgan sample` and the exported generator
encode `--condition origin=JFK` exactly as training did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from infgan.config import ConfigError

POOL = 1024  # training windows' conditions kept in data.json for unconditioned sampling


def _is_number(v: Any) -> bool:
    try:
        return math.isfinite(float(v)) and not isinstance(v, bool)
    except (TypeError, ValueError):
        return False


def fit_specs(names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The encoding of each condition column from the training windows' values."""
    specs = []
    for name in names:
        values = [r[name] for r in rows]
        if all(_is_number(v) for v in values):
            x = torch.tensor([float(v) for v in values], dtype=torch.float64)
            std = float(x.std(unbiased=False)) if len(values) > 1 else 1.0
            specs.append({"name": name, "kind": "number", "mean": float(x.mean()), "std": std or 1.0})
        else:
            specs.append({"name": name, "kind": "category", "values": sorted({str(v) for v in values})})
    return specs


def width(specs: Sequence[Mapping[str, Any]]) -> int:
    """Size of the condition vector."""
    return sum(len(s["values"]) if s["kind"] == "category" else 1 for s in specs)


def encode(specs: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> torch.Tensor:
    """(n, width) condition vectors of `rows` (one mapping of column to value per path)."""
    out = torch.zeros(len(rows), width(specs))
    col = 0
    for s in specs:
        for i, r in enumerate(rows):
            value = r[s["name"]]
            if s["kind"] == "number":
                if not _is_number(value):
                    raise ConfigError(f"condition {s['name']}: {value!r} is not a number")
                out[i, col] = (float(value) - s["mean"]) / s["std"]
            else:
                if str(value) not in s["values"]:
                    raise ConfigError(
                        f"condition {s['name']}: {value!r} was never seen in training; "
                        f"allowed: {', '.join(s['values'])}"
                    )
                out[i, col + s["values"].index(str(value))] = 1.0
        col += len(s["values"]) if s["kind"] == "category" else 1
    return out


def parse(specs: Sequence[Mapping[str, Any]], given: Sequence[str]) -> dict[str, Any]:
    """`--condition NAME=VALUE` arguments as one row; every condition column must be given once."""
    names = [s["name"] for s in specs]
    if not specs:
        raise ConfigError("--condition: this run was trained without data.condition_columns; leave --condition out")
    row: dict[str, Any] = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            raise ConfigError(f"--condition expects NAME=VALUE with NAME one of {', '.join(names)}; got {item!r}")
        row[name] = value
    missing = [n for n in names if n not in row]
    if missing:
        raise ConfigError(f"--condition: give every condition column; missing {', '.join(missing)}")
    encode(specs, [row])  # refuses unknown values now, in one line
    return row


def categories(specs: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each categorical column, each row's value (for metrics per condition value)."""
    return {s["name"]: [str(r[s["name"]]) for r in rows] for s in specs if s["kind"] == "category"}
