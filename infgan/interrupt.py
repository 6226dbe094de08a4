"""SIGTERM (scancel, a SLURM time limit, an sbatch script forwarding its signal) ends a run the way
Ctrl-C does: the run stops where it is, keeps what it has saved, and says how to continue."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_received: list[int] = []


def _on_term(*_: Any) -> None:
    _received.append(signal.SIGTERM)
    if callable(signal.getsignal(signal.SIGINT)):
        # Python's or Ray Tune's SIGINT handler (Tune's saves the experiment state, then ends the run).
        os.kill(os.getpid(), signal.SIGINT)
    else:
        # SIGINT is ignored in a background job of a non-interactive shell (an sbatch script).
        raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block, SIGTERM acts as SIGINT.

    Whatever ends the block after a SIGTERM becomes KeyboardInterrupt: Ray Train's own SIGINT
    handler aborts its run, after which `fit` fails in its own way (or exits), and the caller's
    "interrupted; continue with ..." is the one thing to say.
    """
    previous = signal.signal(signal.SIGTERM, _on_term)
    _received.clear()
    try:
        yield
    except BaseException:
        if _received:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
