"""The suite's own arrangement: tests that share a module-scoped fixture run on one pytest-xdist
worker (tests/conftest.py groups them), so each tiny run or sweep they read is built once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

SHARED = """
import os
import pytest

@pytest.fixture(scope="module")
def shared():
    return os.getpid()

@pytest.mark.parametrize("i", range(4))
def test_reads_shared(shared, i):
    with open("ran.txt", "a") as fh:
        print(i, shared, os.getpid(), file=fh)

@pytest.mark.parametrize("i", range(4))
def test_alone(i):
    pass
"""


def test_tests_sharing_a_module_fixture_run_on_one_worker_and_build_it_once(tmp_path):
    (tmp_path / "test_shared.py").write_text(SHARED)
    conftest = Path(__file__).with_name("conftest.py")
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    assert sorted(i for i, _, _ in ran) == ["0", "1", "2", "3"]
    assert len({fixture_pid for _, fixture_pid, _ in ran}) == 1  # built once
    assert len({test_pid for _, _, test_pid in ran}) == 1  # on one worker
