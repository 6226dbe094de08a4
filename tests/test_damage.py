"""Damaged files and unusable outputs: a run resumes past a truncated checkpoint or a torn
metrics line, `sample` survives a truncated generator.pt, and output paths or cluster addresses
that cannot work are refused in one line with exit 2 before any work starts."""

from __future__ import annotations

import json
import time

import pytest

from infgan.cli import main
from infgan.train.checkpoint import checkpoints
from infgan.train.context import RunContext
from infgan.train.loop import fit

from conftest import TINY, stops_at, tiny


def quiet():
    return RunContext(progress=False)


def cut_at_step(cfg, out, step):
    """Train `cfg` into `out` and stop it (as a kill would) before training step `step`."""
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, out, quiet(), step=stops_at(step))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    return fit(tiny("checkpoint.keep=2"), out, quiet()), out


@pytest.mark.parametrize("damage", ["half", "empty", "garbage"])
def test_resume_falls_back_past_a_damaged_checkpoint(tmp_path, capsys, uninterrupted, damage):
    cfg = tiny("checkpoint.keep=2")
    cut_at_step(cfg, tmp_path / "cut", 11)
    found = checkpoints(tmp_path / "cut" / "checkpoints")
    assert [p.name for p in found] == ["step_000004.pt", "step_000008.pt"]
    data = found[-1].read_bytes()
    found[-1].write_bytes(
        {"half": data[: len(data) // 2], "empty": b"", "garbage": b"\x00not a checkpoint" * 9}[damage]
    )
    resumed = fit(cfg, tmp_path / "cut", quiet(), resume=True)
    err = capsys.readouterr().err
    assert "step_000008.pt is damaged" in err and "trying the one before" in err
    assert resumed["status"] == "completed" and resumed["final_score"] == uninterrupted[0]["final_score"]


def test_every_checkpoint_damaged_is_one_line(tmp_path, capsys):
    cfg = tiny("checkpoint.keep=2")
    cut_at_step(cfg, tmp_path / "cut", 11)
    for p in checkpoints(tmp_path / "cut" / "checkpoints"):
        p.write_bytes(b"")
    before = (tmp_path / "cut" / "metrics.jsonl").read_text()
    sets = sum((["--set", s] for s in TINY), [])
    assert (
        main(
            ["train", "--out", str(tmp_path / "cut"), "--resume", "--no-progress", *sets, "--set", "checkpoint.keep=2"]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert "every checkpoint is damaged" in err[-1] and "Traceback" not in "\n".join(err)
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == before  # nothing written was touched


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path, capsys, uninterrupted):
    cfg = tiny("checkpoint.keep=2")
    cut_at_step(cfg, tmp_path / "cut", 11)
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 12, "val/sco')  # a crash mid-write
    resumed = fit(cfg, tmp_path / "cut", quiet(), resume=True)
    assert "dropped a torn last line" in capsys.readouterr().err
    assert resumed["final_score"] == uninterrupted[0]["final_score"]
    records = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 4, 8, 12]


def test_sample_with_a_damaged_generator_uses_the_latest_checkpoint(tmp_path, uninterrupted, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(uninterrupted[1], run)
    (run / "generator.pt").write_bytes((run / "generator.pt").read_bytes()[:100])
    assert main(["sample", str(run), "-n", "5", "--out", str(tmp_path / "s.npz")]) == 0
    assert "generator.pt is damaged" in capsys.readouterr().err and (tmp_path / "s.npz").exists()
    for p in checkpoints(run / "checkpoints"):
        p.write_bytes(b"")
    assert main(["sample", str(run), "-n", "5", "--out", str(tmp_path / "t.npz")]) == 2
    assert "every checkpoint is damaged" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "argv, words",
    [
        (lambda f: ["train", "--out", str(f), "--set", "train.steps=1"], "is a file; give a directory"),
        (lambda f: ["sample", str(f.parent), "--out", str(f / "s.npz")], "is a file, so nothing can be written"),
        (lambda f: ["wandb-sweep", "-o", str(f.parent)], "is a directory; give a file name"),
        (lambda f: ["compare", str(f), "--out", str(f)], "is a file; give a directory"),
        (lambda f: ["tune", "--storage", str(f), "--name", "x"], "is a file; give a directory"),
    ],
)
def test_unusable_output_paths_are_refused(a_file, capsys, argv, words):
    assert main(argv(a_file)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert a_file.read_text() == "x"


@pytest.mark.parametrize(
    "argv",
    [
        ["cluster", "check", "--address", "127.0.0.1:1", "--timeout", "5"],
        ["train", "--workers", "1", "--address", "127.0.0.1:1", "--set", "train.steps=1"],
        ["tune", "--address", "127.0.0.1:1"],
    ],
)
def test_an_address_nothing_answers_is_refused_within_the_timeout(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing answers there" in err[0] and time.monotonic() - start < 30


def test_more_gpus_than_the_machine_has_is_refused_before_ray(tmp_path, capsys):
    import torch

    gpus = torch.cuda.device_count() + 1
    assert main(["tune", "--gpus-per-worker", str(gpus), "--storage", str(tmp_path), "--name", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this machine has" in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.ray
def test_an_address_other_than_the_connected_clusters_is_refused_not_replaced(ray_local, tmp_path, monkeypatch, capsys):
    """In a process already connected to Ray (a notebook, this test session), `--address` of another
    cluster must not run the command on the connected one."""
    import socket

    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--address", "127.0.0.1:1"]) == 2  # nothing answers there
    assert "nothing answers there" in capsys.readouterr().err
    with socket.socket() as listener:  # something answers, but it is not the connected cluster
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        assert main(["tune", "--address", address, "--storage", str(tmp_path / "runs"), "--name", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already connected to the Ray cluster at" in err[0]
    assert not (tmp_path / "runs" / "x").exists()
