"""Checkpoint safety without a model: complete-marking before rotation, leftovers of killed saves,
where a relaunch resumes, interrupted runs in the manifest, the whole run's train_loss, atomic final save."""

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import TrainerControl, TrainingArguments

from corral.checkpoints import (
    check_same_inputs,
    COMPLETE_MARKER,
    FAULT_TRACE_ENV,
    MarkCompleteCallback,
    clean_leftovers,
    complete_checkpoints,
    prepare_output_dir,
    prune_checkpoints,
    resolve_resume,
    save_atomically,
    whole_run_train_loss,
)
from corral.errors import CorralError
from corral.manifest import MANIFEST_NAME, mark_interrupted, start_manifest
from corral.recipe import resolved_config


def make_ckpt(root, step, complete=True):
    d = root / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text("{}")
    if complete:
        (d / COMPLETE_MARKER).write_text(json.dumps({"global_step": step}))
    return d


def names(root):
    return sorted(p.name for p in root.iterdir())


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_new_checkpoint_is_marked_before_the_old_one_is_deleted(tmp_path, monkeypatch):
    trace = tmp_path / "trace"
    monkeypatch.setenv(FAULT_TRACE_ENV, str(trace))
    out = tmp_path / "out"
    make_ckpt(out, 2)
    make_ckpt(out, 4, complete=False)  # the Trainer has just written it
    args = SimpleNamespace(output_dir=str(out), save_total_limit=1)
    state = SimpleNamespace(global_step=4, max_steps=10, is_world_process_zero=True, best_model_checkpoint=None)
    callback = MarkCompleteCallback()
    callback.on_train_begin(args, state, TrainerControl())
    assert args.save_total_limit is None  # the Trainer's own rotation (before any callback) is off
    callback.on_save(args, state, TrainerControl())
    assert names(out) == ["checkpoint-4"] and (out / "checkpoint-4" / COMPLETE_MARKER).is_file()
    order = [line.split()[:2] for line in trace.read_text().splitlines()]
    assert order == [["written", "4"], ["marked", "4"], ["rotate", "2"], ["deleting", "2"]]
    callback.on_train_end(args, state, TrainerControl())
    assert args.save_total_limit == 1


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    for step in (2, 4, 6, 8):
        make_ckpt(tmp_path, step)
    make_ckpt(tmp_path, 10, complete=False)  # never counted, never deleted by rotation
    removed = prune_checkpoints(tmp_path, 2, protect=str(tmp_path / "checkpoint-2"))
    assert [p.name for p in removed] == ["checkpoint-4"]
    assert names(tmp_path) == ["checkpoint-10", "checkpoint-2", "checkpoint-6", "checkpoint-8"]
    assert prune_checkpoints(tmp_path, None) == []


def test_clean_leftovers_removes_what_killed_saves_left(tmp_path):
    make_ckpt(tmp_path, 4)
    make_ckpt(tmp_path, 6, complete=False)
    (tmp_path / "checkpoint-6" / "model.safetensors").write_bytes(b"\x00" * 10)  # truncated by the kill
    for leftover in (".saving-123", ".deleting-checkpoint-2", "checkpoint-3.incomplete"):
        (tmp_path / leftover / "sub").mkdir(parents=True)
    (tmp_path / ".run_manifest.json.tmp-99").write_text("{")
    (tmp_path / "model.safetensors").write_bytes(b"final")
    removed = clean_leftovers(tmp_path)
    assert sorted(removed) == sorted([".saving-123", ".deleting-checkpoint-2", "checkpoint-3.incomplete",
                                      "checkpoint-6", ".run_manifest.json.tmp-99"])
    assert names(tmp_path) == ["checkpoint-4", "model.safetensors"]


def test_resume_picks_the_newest_complete_checkpoint_by_default(tmp_path):
    make_ckpt(tmp_path, 10)
    make_ckpt(tmp_path, 20)
    make_ckpt(tmp_path, 30, complete=False)
    assert resolve_resume(None, tmp_path) == str(tmp_path / "checkpoint-20")
    assert resolve_resume(True, tmp_path) == str(tmp_path / "checkpoint-20")
    assert resolve_resume(str(tmp_path / "checkpoint-10"), tmp_path) == str(tmp_path / "checkpoint-10")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-10", "checkpoint-20"]


def test_resume_choices_that_would_lose_or_contradict_are_one_line_errors(tmp_path):
    assert resolve_resume(None, tmp_path) is None and resolve_resume(True, tmp_path) is None
    assert resolve_resume("false", tmp_path) is None  # nothing to lose
    with pytest.raises(CorralError, match="is not a directory"):
        resolve_resume(str(tmp_path / "nope"), tmp_path)
    make_ckpt(tmp_path, 10)
    with pytest.raises(CorralError, match=r"false, but .* holds checkpoint-10 .*--overwrite_output_dir"):
        resolve_resume("false", tmp_path)
    with pytest.raises(CorralError, match="contradict"):
        resolve_resume(True, tmp_path, overwrite_output_dir=True)
    assert resolve_resume("false", tmp_path, overwrite_output_dir=True) is None


def test_prepare_output_dir_cleans_marks_interrupted_and_resumes(tmp_path):
    out = tmp_path / "run"
    make_ckpt(out, 4)
    make_ckpt(out, 6, complete=False)
    (out / ".saving-77").mkdir()
    (out / MANIFEST_NAME).write_text(json.dumps({"status": "running", "started_at": "yesterday",
                                                 "pid": dead_pid(), "host": "elsewhere"}))
    args = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none")
    assert prepare_output_dir(args) == str(out / "checkpoint-4")
    assert args.resume_from_checkpoint == str(out / "checkpoint-4")  # recorded in the manifest's config
    assert names(out) == ["checkpoint-4", MANIFEST_NAME]
    assert json.loads((out / MANIFEST_NAME).read_text())["status"] == "interrupted"

    args = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none")
    assert prepare_output_dir(args, overwrite_output_dir=True) is None
    assert names(out) == [MANIFEST_NAME]

    (tmp_path / "file").write_text("x")
    with pytest.raises(CorralError, match="is a file"):
        prepare_output_dir(TrainingArguments(output_dir=str(tmp_path / "file"), use_cpu=True, report_to="none"))


def test_a_live_run_is_not_marked_interrupted_and_attempts_are_kept(tmp_path):
    import os
    import platform

    live = {"status": "running", "started_at": "t0", "pid": os.getppid(), "host": platform.node()}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(live))
    assert mark_interrupted(tmp_path) is None
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({**live, "pid": dead_pid()}))
    assert mark_interrupted(tmp_path) == "t0"
    manifest = start_manifest(str(tmp_path), "finetune/sft.py", {}, {})
    assert manifest["status"] == "running" and manifest["pid"] == os.getpid()
    assert [a["status"] for a in manifest["previous_attempts"]] == ["interrupted"]


def test_whole_run_train_loss_weights_each_logged_loss_by_its_steps():
    # logging every 5 steps, a save (forced log) at 6; resumed from 6 to 10 with mean loss 1.0
    history = [{"step": 5, "loss": 3.0}, {"step": 6, "loss": 2.0}, {"step": 10, "loss": 1.0}]
    assert whole_run_train_loss(history, 6, 1.0, 10) == pytest.approx((3.0 * 5 + 2.0 * 1 + 1.0 * 4) / 10)


def test_save_atomically_moves_all_files_and_leaves_no_temp(tmp_path):
    def save(d):
        Path(d, "sub").mkdir(parents=True)
        Path(d, "model.safetensors").write_bytes(b"new")
        Path(d, "sub", "x.json").write_text("{}")

    (tmp_path / "model.safetensors").write_bytes(b"old")
    save_atomically(save, tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == b"new"
    assert (tmp_path / "sub" / "x.json").is_file()
    assert not list(tmp_path.glob(".saving-*"))


def test_resuming_a_checkpoint_of_other_settings_is_a_one_line_error(tmp_path):
    out = tmp_path / "run"
    make_ckpt(out, 4)
    earlier = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", learning_rate=1e-4, max_steps=64)
    start_manifest(str(out), "finetune/dpo.py", resolved_config([earlier]), {})
    same = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", learning_rate=1e-4, max_steps=64,
                             logging_steps=3)  # logging is not part of what the steps compute
    assert prepare_output_dir(same) == str(out / "checkpoint-4")
    edited = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", learning_rate=5e-5, max_steps=48)
    with pytest.raises(CorralError) as e:
        prepare_output_dir(edited)
    assert str(e.value) == (f"output_dir {out} holds checkpoint-4 of a run with other settings (learning_rate 0.0001 "
                            "-> 5e-05); resuming would continue that run: pass "
                            "--overwrite_output_dir to start over, or another output_dir")
    longer = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", learning_rate=1e-4, max_steps=128)
    assert prepare_output_dir(longer) == str(out / "checkpoint-4")  # training on for more steps is a resume
    shorter = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", learning_rate=1e-4, max_steps=3)
    with pytest.raises(CorralError, match=r"\(max_steps 64 -> 3, below the checkpoint's step 4\)"):
        prepare_output_dir(shorter)
    edited = TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", learning_rate=5e-5, max_steps=48)
    assert prepare_output_dir(edited, overwrite_output_dir=True) is None  # starting over is allowed


def test_resuming_a_checkpoint_of_other_data_or_another_start_model_is_a_one_line_error(tmp_path):
    """Session 9: a run killed before the tiny base was rebuilt resumed on the new base (another tokenizer) and
    wrote a model that answered nothing; the manifest's data and start-model fingerprints now stop it."""
    out, base = tmp_path / "run", tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    (base / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (base / "model.safetensors").write_bytes(b"0" * 64)
    make_ckpt(out, 4)
    fp = check_same_inputs(out, None, "data-1", str(base))  # a fresh start checks nothing, returns the fingerprint
    start_manifest(str(out), "finetune/sft.py", {}, {"fingerprint": "data-1", "start_model_fingerprint": fp})
    ckpt = str(out / "checkpoint-4")
    assert check_same_inputs(out, ckpt, "data-1", str(base)) == fp
    with pytest.raises(CorralError) as e:
        check_same_inputs(out, ckpt, "data-2", str(base))
    assert str(e.value) == (f"output_dir {out} holds checkpoint-4 of a run on other inputs (data fingerprint data-1 -> "
                            "data-2); resuming would continue that run: pass --overwrite_output_dir to start over, "
                            "or another output_dir")
    (base / "tokenizer.json").write_text('{"model": {"vocab": {"b": 0}}}')  # the base rebuilt: another tokenizer
    with pytest.raises(CorralError, match=f"start model {base} fingerprint {fp} -> "):
        check_same_inputs(out, ckpt, "data-1", str(base))
    assert check_same_inputs(out, str(tmp_path / "elsewhere" / "checkpoint-9"), "data-2", str(base)) != fp
    assert check_same_inputs(out, ckpt, "data-1", "meta-llama/Meta-Llama-3-8B") is None  # a hub id: data only
