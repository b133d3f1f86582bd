"""Checkpoint safety: only complete checkpoints are resumed from; atomic final save."""

import json

import pytest

from corral.checkpoints import COMPLETE_MARKER, complete_checkpoints, resolve_resume, save_atomically
from corral.errors import CorralError


def make_ckpt(root, step, complete=True):
    d = root / f"checkpoint-{step}"
    d.mkdir()
    (d / "trainer_state.json").write_text("{}")
    if complete:
        (d / COMPLETE_MARKER).write_text(json.dumps({"global_step": step}))
    return d


def test_resume_true_picks_newest_complete_and_moves_incomplete_aside(tmp_path):
    make_ckpt(tmp_path, 10)
    make_ckpt(tmp_path, 20)
    make_ckpt(tmp_path, 30, complete=False)
    assert resolve_resume(True, tmp_path) == str(tmp_path / "checkpoint-20")
    assert (tmp_path / "checkpoint-30.incomplete").is_dir() and not (tmp_path / "checkpoint-30").exists()
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-10", "checkpoint-20"]


def test_resume_without_checkpoints_starts_fresh_and_bad_path_is_one_line(tmp_path):
    assert resolve_resume(True, tmp_path) is None
    assert resolve_resume(None, tmp_path) is None
    with pytest.raises(CorralError, match="is not a directory"):
        resolve_resume(str(tmp_path / "nope"), tmp_path)


def test_save_atomically_moves_all_files_and_leaves_no_temp(tmp_path):
    def save(d):
        from pathlib import Path

        Path(d, "sub").mkdir(parents=True)
        Path(d, "model.safetensors").write_bytes(b"new")
        Path(d, "sub", "x.json").write_text("{}")

    (tmp_path / "model.safetensors").write_bytes(b"old")
    save_atomically(save, tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == b"new"
    assert (tmp_path / "sub" / "x.json").is_file()
    assert not list(tmp_path.glob(".saving-*"))
