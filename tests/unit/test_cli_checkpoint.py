"""CLI and checkpoints: train, save, resume, evaluate; bad files give a message, never code."""

import os
import pickle

import pytest
import torch

from flowviz import FMRun, OptimConfig, build_fm, checkpoint, train_steps
from flowviz.cli import main
from flowviz.models import MLPConfig

TINY = ["--hidden", "32", "--depth", "1", "--batch", "64", "--chunk", "20"]


def test_resuming_from_a_checkpoint_continues_the_same_run(tmp_path):
    run = FMRun(batch=64, model=MLPConfig(hidden=32, depth=1), optim=OptimConfig(steps=40))
    straight = build_fm(run)
    train_steps(straight, 40)
    half = build_fm(run)
    train_steps(half, 20)
    checkpoint.save(tmp_path / "half.pt", half, run)
    _, resumed = checkpoint.load_fm(tmp_path / "half.pt")
    train_steps(resumed, 20)
    assert resumed.step == 40
    for p, q in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_cli_trains_resumes_and_extends(tmp_path):
    ck = tmp_path / "a.pt"
    assert main(["train", *TINY, "--steps", "20", "--out", str(ck)]) == 0
    assert main(["train", "--resume", str(ck), "--steps", "40", "--chunk", "20"]) == 0
    assert checkpoint.load_fm(ck)[1].step == 40


def test_eval_prints_a_quality_table(tmp_path, capsys):
    ck = tmp_path / "m.pt"
    main(["train", *TINY, "--steps", "10", "--out", str(ck)])
    capsys.readouterr()
    assert main(["eval", str(ck), "--n", "100", "--solver", "euler", "heun"]) == 0
    out = capsys.readouterr().out
    assert "NFE 128" in out and "euler" in out and "heun" in out and "straightness" in out


def test_garbage_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["eval", str(bad)]) == 2
    assert "Not a readable checkpoint" in capsys.readouterr().err


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/flowviz_pwned",))


def test_pickled_code_is_never_executed(tmp_path):
    if os.path.exists("/tmp/flowviz_pwned"):
        os.remove("/tmp/flowviz_pwned")
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"format": checkpoint.FORMAT, "kind": "fm", "x": _Evil()}, f)
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.read(evil)
    assert not os.path.exists("/tmp/flowviz_pwned")


def test_checkpoint_for_another_model_is_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "meanflow", "config": {}}, other)
    with pytest.raises(checkpoint.CheckpointError, match="meanflow"):
        checkpoint.load_fm(other)
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "fm", "config": {"batch": 8},
                "model": {"net.0.weight": torch.zeros(3, 3)}, "ema": None, "optimizer": {}},
               wrong)
    with pytest.raises(checkpoint.CheckpointError, match="does not match"):
        checkpoint.load_fm(wrong)
