"""`python -m data_prep convert`: the standard rows it writes and its one summary line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from data_prep.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "data"


def test_convert_skips_bad_rows_and_prints_one_summary_line(tmp_path, capsys):
    src = tmp_path / "raw.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"instruction": "Capital of France?", "output": "Paris."},
        {"instruction": "Capital of Peru?"},
        {"instruction": "", "output": "x"},
        {"instruction": "Capital of Chile?", "output": "Santiago."},
    ]))
    out = tmp_path / "clean" / "out.jsonl"
    assert main(["convert", str(src), "--out", str(out), "--on-bad-rows", "skip"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{src}: read 4 rows, wrote 2 to {out}, format alpaca (sft), "
        "rejected 2 (missing key 'output': 1, empty content in turn N: 1)"
    ]
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]},
        {"messages": [{"role": "user", "content": "Capital of Chile?"}, {"role": "assistant", "content": "Santiago."}]},
    ]


def test_convert_stops_at_first_bad_row_with_one_error_line(tmp_path, capsys):
    src = tmp_path / "raw.jsonl"
    src.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n')
    assert main(["convert", str(src), "--out", str(tmp_path / "out.jsonl")]) == 2
    assert capsys.readouterr().err == (
        f"error: {src}:2: missing key 'output' (--on-bad-rows skip drops and counts such rows)\n")


def test_an_unknown_format_names_the_command_line_option(tmp_path, capsys):
    src = tmp_path / "raw.jsonl"
    src.write_text('{"question": "a", "reply": "b"}\n')
    assert main(["convert", str(src), "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {src}: no known format matches keys ['question', 'reply']")
    assert err.endswith("; choose one with --format\n") and "recipe" not in err


def test_convert_with_kind_runs_as_a_module(tmp_path):
    out = tmp_path / "kto.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "convert", str(FIXTURES / "hh.jsonl"), "--out", str(out), "--kind", "unpaired"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
    )
    assert done.stdout == f"{FIXTURES / 'hh.jsonl'}: read 1 rows, wrote 2 to {out}, format hh (unpaired), rejected 0\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == [True, False]
    assert rows[0]["completion"] == [{"role": "assistant", "content": "About 6 minutes."}]


def test_user_errors_exit_2_with_one_line_as_every_corral_entry_point(tmp_path):
    missing = tmp_path / "missing.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "data_prep", "convert", str(missing), "--out", str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert (done.returncode, done.stderr, done.stdout) == (2, f"error: {missing}: file not found\n", "")


def test_ignore_columns_option_and_unused_columns_in_the_summary(tmp_path, capsys):
    src = tmp_path / "raw.jsonl"
    src.write_text(json.dumps({"instruction": "Q", "output": "A", "score": 3, "id": "r1"}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(src), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {src}: column 'score' carries meaning but format 'alpaca' does not read it (no format reads it); "
        "drop it knowingly with --ignore-columns score\n")
    assert main(["convert", str(src), "--out", str(out), "--ignore-columns", "score"]) == 0
    assert capsys.readouterr().out == (
        f"{src}: read 1 rows, wrote 1 to {out}, format alpaca (sft), rejected 0, unused columns: id\n")
