"""Errors reach the user as one line, even when an exception carries no message at all."""

from __future__ import annotations

import contextlib

import pytest

import infgan.cluster
import infgan.train.distributed
from infgan.cli import main
from infgan.text import error_line, format_table

from conftest import TINY, set_args


@pytest.mark.parametrize(
    "error, want",
    [
        (RuntimeError(""), "RuntimeError"),
        (RuntimeError("  \n"), "RuntimeError"),
        (RuntimeError("\nfirst\nsecond\n"), "first"),
        ("", "no message"),
    ],
)
def test_error_line_never_fails(error, want):
    assert error_line(error) == want


def test_error_line_last():
    assert error_line("Traceback\n  File x\nValueError: bad\n\n", last=True) == "ValueError: bad"


def test_format_table_aligns_columns():
    lines = format_table(["a", "bbb"], [[1.234567, "x"], ["long cell", 2]]).splitlines()
    assert lines == ["a          bbb", "1.235      x", "long cell  2"]


class TrainingFailedError(Exception):
    """Named like Ray Train's error, which the CLI turns into one line."""


def test_workers_failure_without_a_message_is_one_line(tmp_path, monkeypatch, capsys):
    def fails(*args, **kwargs):
        raise TrainingFailedError()

    monkeypatch.setattr(infgan.cluster, "ray_session", lambda address: contextlib.nullcontext())
    monkeypatch.setattr(infgan.train.distributed, "fit_distributed", fails)
    code = main(["train", "--workers", "1", "--out", str(tmp_path / "r"), "--no-progress", *set_args(TINY)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["infgan: error: training failed after its restarts: TrainingFailedError"]


def test_wandb_api_error_without_a_message_is_one_line(tmp_path, monkeypatch, capsys):
    wandb = pytest.importorskip("wandb")
    import infgan.wandb.tracking

    class Api:
        def sweep(self, path):
            raise ValueError()

    monkeypatch.setattr(infgan.wandb.tracking, "check", lambda tracking: None)
    monkeypatch.setattr(wandb, "Api", Api)
    assert main(["compare", "ent/proj/abc123", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == "infgan: error: ent/proj/abc123: cannot read this W&B sweep: ValueError"
