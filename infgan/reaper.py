"""A watchdog that stops a local Ray instance whose driver died without stopping it.

`ray.shutdown()` stops the Ray processes a driver started, but a driver that is SIGKILLed (the
kernel's OOM killer, `kill -9`, a node's job teardown) never runs it. Ray's own fate sharing then
takes the GCS and raylet down quickly, but its dashboard and runtime-env agents and idle workers
linger for up to two minutes, holding memory and ports.

The driver starts this module as a small process (no torch, no Ray imported) in its own session,
holding the write end of a pipe to its standard input. The kernel closes that pipe when the driver
exits, however it exits. A driver that stopped Ray itself writes one byte first, and the watchdog
leaves quietly; on a bare end of file it stops every process of this user that has a file open in
the Ray instance's session directory (every Ray process keeps its logs there): SIGTERM, a few
seconds' grace, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 5.0


class Watchdog:
    """The driver's end: `release()` after a clean `ray.shutdown()`."""

    def __init__(self, session_dir: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infgan.reaper", session_dir, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C or a process-group kill aimed at the driver spares it
        )

    def release(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(b"x")
            stdin.close()
        except OSError:  # the watchdog is gone already
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def holders(session_dir: str, skip: set[int]) -> list[int]:
    """Ray processes (`ray` in the command line: raylet, gcs_server, ray::…, Ray's workers) of this
    user with a file open under `session_dir`; anything else (a `tail -f` of a log) is left alone."""
    prefix = session_dir.rstrip("/") + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if entry.stat().st_uid != os.getuid() or b"ray" not in (entry / "cmdline").read_bytes().lower():
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd).startswith(prefix):
                    found.append(int(entry.name))
                    break
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def reap(session_dir: str, skip: set[int], grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM every holder of the session directory, SIGKILL what is left after `grace_s`."""
    targets = holders(session_dir, skip)
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and holders(session_dir, skip):
        time.sleep(0.2)
    for pid in holders(session_dir, skip):
        _signal(pid, signal.SIGKILL)
    return targets


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):  # gone meanwhile
        os.kill(pid, sig)


def main(argv: list[str]) -> int:
    session_dir, driver = argv[0], int(argv[1])
    if sys.stdin.buffer.read(1):  # the driver stopped Ray itself
        return 0
    if not Path(session_dir).is_dir() or not Path("/proc").is_dir():
        return 0
    reap(session_dir, skip={os.getpid(), driver})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
