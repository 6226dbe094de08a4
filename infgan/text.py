"""Text for the terminal: aligned tables, and errors cut to the one line a user is shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def error_line(error: BaseException | str, last: bool = False) -> str:
    """The first (or last) non-empty line of an error's message; the error's type name if it has none."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    if lines:
        return lines[-1 if last else 0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else "no message"


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, anything else as str()."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns left-aligned to their widest cell, separated by two spaces; a header line first."""
    cells = [[str(h) for h in head], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
