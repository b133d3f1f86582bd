"""`make pipeline` (apps/pipeline.py): stages are skipped when their key matches, rerun when a recipe, data
file or start model changes, and each stage's command and wall time are printed."""

from __future__ import annotations

import json
import sys

from apps.pipeline import MARKER, Stage, recipe_inputs, run, stage_key, stages


def test_shipped_stages_read_the_safety_recipes():
    by_name = {s.name: s for s in stages()}
    assert list(by_name) == ["sft", "rm", "dpo", "grpo", "cai", "safe", "report", "shipped", "report-b", "report-c",
                             "report-d", "report-e", "report-f", "report-g", "report-h",
                             "report-i", "report-j"]
    for k in "bcdefghij":  # the gate also reads splits B-J, each into its own report and JUnit file
        command = by_name[f"report-{k}"].command
        assert f"tinyworld/suites/heldout_phrasing_{k}.jsonl" in command and f"reports/pipeline-{k}/gate.xml" in command
        assert by_name[f"report-{k}"].may_fail and f"tinyworld/suites/heldout_phrasing_{k}.jsonl" in by_name[f"report-{k}"].inputs
    assert "recipes/tiny/sft/safe_mix.yaml" in by_name["sft"].command
    assert {"outputs/tiny-world/safety_sft.jsonl", "outputs/tiny-base"} <= set(by_name["sft"].inputs)
    assert by_name["grpo"].after == ("dpo", "rm") and "outputs/tiny-dpo-safe" in by_name["grpo"].inputs
    assert "outputs/tiny-rm-safe" in by_name["grpo"].inputs  # GRPO scores with the reward model the rm stage trains
    assert by_name["sft"].command[:2] == (".venv/bin/accelerate", "launch")
    assert recipe_inputs({"datasets": [{"path": "a"}], "safety_datasets": [{"path": "s"}], "model_name_or_path": "m",
                          "reward_model": None}) == ["a", "s", "m"]


def test_key_follows_inputs_and_start_model_manifest(tmp_path):
    data, model = tmp_path / "data.jsonl", tmp_path / "model"
    data.write_text("a\n")
    model.mkdir()
    (model / "config.json").write_text("{}")
    stage = Stage("x", ("echo",), str(tmp_path / "out"), inputs=(str(data), str(model)))
    key = stage_key(stage)
    assert stage_key(stage) == key
    (model / "run_manifest.json").write_text('{"run": 2}')  # the start model was retrained
    assert stage_key(stage) != key
    key = stage_key(stage)
    data.write_text("b\n")
    assert stage_key(stage) != key


def test_run_prints_commands_times_and_skips_finished_stages(tmp_path, capsys):
    first = Stage("one", (sys.executable, "-c", f"open({str(tmp_path / 'made')!r}, 'w').write('1')"), str(tmp_path / "o1"))
    second = Stage("two", (sys.executable, "-c", "pass"), str(tmp_path / "o2"), after=("one",),
                   inputs=(str(tmp_path / "made"),))
    assert run([first, second], jobs=2, force=set(), dry_run=False) == 0
    out = capsys.readouterr().out
    assert f"[one] $ {sys.executable} -c" in out and "[two] done in" in out and "total" in out
    assert "CPU s)" in out and "wall time   CPU s" in out
    marker = json.loads((tmp_path / "o2" / MARKER).read_text())
    assert marker["key"] == stage_key(second) and marker["cpu_seconds"] >= 0
    assert run([first, second], jobs=2, force=set(), dry_run=False) == 0
    assert capsys.readouterr().out.count("up to date, skipped") == 2
    assert run([first, second], jobs=1, force={"one"}, dry_run=False) == 0  # forced, rewrites the same input
    out = capsys.readouterr().out
    assert "[one] done" in out and "[two] up to date" in out
    failing = Stage("bad", (sys.executable, "-c", "raise SystemExit(3)"), str(tmp_path / "o3"))
    assert run([failing, Stage("after", ("true",), str(tmp_path / "o4"), after=("bad",))], 2, set(), False) == 1
    out = capsys.readouterr().out
    assert "[bad] FAILED (exit 3)" in out and "[after] $" not in out and "after   not run" in out


def test_a_rerun_starts_over_instead_of_resuming_an_earlier_runs_checkpoints(tmp_path, capsys):
    # The trainers resume from checkpoint-N in output_dir; a stage rerun because its inputs changed must not.
    script = "import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')"
    calls = tmp_path / "calls"
    stage = Stage("train", (sys.executable, "-c", script, str(calls)), str(tmp_path / "out"),
                  start_over=("--overwrite_output_dir", "true"))
    assert run([stage], jobs=1, force=set(), dry_run=False) == 0  # first run: nothing to start over from
    assert run([stage], jobs=1, force={"train"}, dry_run=False) == 0  # a finished run is there now
    assert calls.read_text().splitlines() == ["", "--overwrite_output_dir true"]
    assert "[train] $ " in capsys.readouterr().out
    (tmp_path / "out" / MARKER).unlink()  # killed midway: no marker, so the trainer may resume
    assert run([stage], jobs=1, force=set(), dry_run=False) == 0
    assert calls.read_text().splitlines()[-1] == ""


def test_stages_side_by_side_share_the_cores_and_an_exported_thread_count_wins(tmp_path, monkeypatch, capsys):
    """corral's trainers pick all cores; two stages at once would each take them all (2 x 2 threads on 2 cores)."""
    import apps.pipeline as pipeline

    monkeypatch.setattr(pipeline, "available_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def stage(name, after=()):
        code = f"import os; open({str(tmp_path / name)!r}, 'w').write(os.environ['OMP_NUM_THREADS'])"
        return Stage(name, (sys.executable, "-c", code), str(tmp_path / f"o-{name}"), after=after)

    first, left, right = stage("first"), stage("left", ("first",)), stage("right", ("first",))
    assert run([first, left, right], jobs=2, force=set(), dry_run=False) == 0
    threads = {name: (tmp_path / name).read_text() for name in ("first", "left", "right")}
    assert threads == {"first": "4", "left": "2", "right": "2"}
    assert "(OMP_NUM_THREADS=2)" in capsys.readouterr().out
    assert run([first, left, right], jobs=1, force={"first", "left", "right"}, dry_run=False) == 0
    assert (tmp_path / "left").read_text() == "4"  # one at a time: each gets every core
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert run([first, left], jobs=2, force={"first", "left"}, dry_run=False) == 0
    assert (tmp_path / "first").read_text() == "1" and "OMP_NUM_THREADS=1 exported" in capsys.readouterr().out
