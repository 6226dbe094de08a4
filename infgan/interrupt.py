"""SIGTERM (scancel, a SLURM time limit, an sbatch script forwarding its signal) ends a run the way
Ctrl-C does: the run stops where it is, keeps what it has saved, and says how to continue."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _on_term(*_: Any) -> None:
    if callable(signal.getsignal(signal.SIGINT)):
        # Python's or Ray Tune's SIGINT handler (Tune's saves the experiment state, then ends the run).
        os.kill(os.getpid(), signal.SIGINT)
    else:
        # SIGINT is ignored in a background job of a non-interactive shell (an sbatch script).
        raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block, SIGTERM acts as SIGINT."""
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
