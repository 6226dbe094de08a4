"""A local Ray instance whose driver is SIGKILLed is stopped by the driver's watchdog, at once;
one whose driver ends normally is stopped by `ray.shutdown()` as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from infgan.reaper import holders

DRIVER = """
import os, sys, time, ray
from infgan.cluster import ray_session
with ray_session(None, num_cpus=1):
    ray.get(ray.remote(lambda: 1).remote())  # a worker too, not only the node's own processes
    print(ray._private.worker._global_node.get_session_dir_path(), flush=True)
    print(os.environ.get("RAY_AUTH_MODE"), flush=True)  # Ray sets it when it turns token auth on
    if sys.argv[1] == "hang":
        time.sleep(600)
"""


def _start(mode: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert driver.stdout is not None
    session_dir = driver.stdout.readline().strip()
    assert session_dir, "the driver did not start Ray"
    return driver, session_dir


def _gone_within(session_dir: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := holders(session_dir, skip=set())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the watchdog finds Ray's processes through /proc")
def test_a_killed_drivers_ray_processes_are_stopped():
    driver, session_dir = _start("hang")
    assert holders(session_dir, skip={driver.pid})  # Ray's processes are there to be found
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    # Without the watchdog Ray's agents and idle workers outlive their driver by up to two minutes.
    assert _gone_within(session_dir, 20) == []


def test_a_normal_end_leaves_nothing_behind():
    """... and a fresh local instance runs with token authentication without Ray's warning that it does."""
    driver, session_dir = _start("end")
    assert driver.wait(timeout=60) == 0
    assert _gone_within(session_dir, 20) == []
    assert driver.stdout is not None and driver.stderr is not None
    assert driver.stdout.readline().strip() == "token"
    assert "Token authentication is enabled" not in driver.stderr.read()
