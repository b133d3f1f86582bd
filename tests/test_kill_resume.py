"""SIGKILL real SFT/DPO runs (benchmarks/kill_harness.py) and relaunch them: no checkpoint marked complete
is corrupt, no more than one save interval of progress is lost, the final weights equal the uninterrupted
run's bitwise. The default tier kills once inside checkpoint rotation and once inside the final save; the
slow tier kills each trainer 20 times at random moments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral.checkpoints import COMPLETE_MARKER

REPO = Path(__file__).resolve().parent.parent


def harness(tiny_small: Path, tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "kills.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/kill_harness.py"), "--tiny", str(tiny_small),
                           "--work", str(tmp_path / "work"), "--json", str(out), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=3600)
    print(proc.stdout)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_kill_inside_rotation_and_final_save_then_relaunch_gives_the_uninterrupted_weights(tiny_small, tmp_path):
    [sft] = harness(tiny_small, tmp_path, "--trainer", "sft", "--kills", "2", "--windows", "rotate,final",
                    "--steps", "6", "--save_steps", "2")
    assert sft["landed"] == {"rotation": 1, "final save": 1}
    assert sft["corrupt_complete_checkpoints"] == 0 and sft["complete_checkpoints_checked"] >= 2
    assert sft["kills_losing_more_than_one_interval"] == 0
    # the relaunch after the final-save kill resumes at max_steps: a step past it would change the weights
    assert sft["final_weights_equal"] is True
    assert sft["train_loss"] == pytest.approx(sft["reference_train_loss"], rel=1e-6)
    assert sft["interrupted_in_manifest"] == 2 and sft["leftovers"] == []
    assert sft["ok"], sft["problems"]


def test_resume_false_over_existing_checkpoints_is_a_one_line_choice(tiny_small, tmp_path, capsys):
    from corral.recipe import run_cli
    from finetune.sft import main as sft_main

    out = tmp_path / "run"
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / COMPLETE_MARKER).write_text("{}")
    with pytest.raises(SystemExit) as err:
        run_cli(sft_main, [str(REPO / "recipes/tiny/sft/full.yaml"), "--model_name_or_path",
                           str(tiny_small / "tiny-base"), "--output_dir", str(out), "--resume_from_checkpoint", "false"])
    assert err.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "--overwrite_output_dir" in message and "checkpoint-4" in message


@pytest.mark.slow
def test_sft_and_dpo_survive_20_random_kills_each(tiny_small, tmp_path):
    results = harness(tiny_small, tmp_path, "--trainer", "both", "--kills", "20")
    assert [r["trainer"] for r in results] == ["sft", "dpo"]
    for r in results:
        assert r["kills"] == 20
        assert {"step", "checkpoint write", "rotation", "final save"} <= set(r["landed"]), r["landed"]
        assert r["corrupt_complete_checkpoints"] == 0
        assert r["kills_losing_more_than_one_interval"] == 0 and r["lost_steps_max"] <= r["save_interval"]
        assert r["final_weights_equal"] is True
        assert r["interrupted_in_manifest"] == 20 - r["landed"].get("after the end", 0) and r["leftovers"] == []
        assert r["ok"], r["problems"]
