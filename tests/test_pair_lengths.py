"""Rows a preference trainer's max_length would cut or drop are counted before the model loads, and the
counts are what TRL then does (reward pairs dropped, DPO rows whose prompt fills max_length dropped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.loading import load_tokenizer
from data_prep.pair_lengths import length_report, long_rows_line, row_lengths
from finetune.dpo import main as dpo_main
from reward.train import main as reward_main

REPO = Path(__file__).resolve().parent.parent


def _rows(tiny_small: Path) -> list[dict]:
    return [json.loads(line) for line in (tiny_small / "tiny-world/safety_pref_train.jsonl").read_text().splitlines()]


def _median_length(tiny_small: Path) -> int:
    """The median prompt + completion tokens of the safety pairs: about half of them are longer."""
    tokenizer = load_tokenizer(str(tiny_small / "tiny-base"), "llama3", None)
    lengths = sorted(row_lengths(row, tokenizer)[1] for row in _rows(tiny_small))
    return lengths[len(lengths) // 2]


def test_counts_follow_max_length_and_the_line_names_the_fix(tiny_small):
    tokenizer = load_tokenizer(str(tiny_small / "tiny-base"), "llama3", None)
    rows = _rows(tiny_small)[:200]
    whole = length_report(rows, tokenizer, None)
    assert whole.over == 0 and whole.prompt_fills == 0
    short = length_report(rows, tokenizer, _median_length(tiny_small))
    assert 0 < short.over < len(rows) and short.prompt_fills <= short.over
    assert length_report(rows, tokenizer, whole.longest).over == 0  # the suggested fix keeps every row
    assert length_report(rows, tokenizer, whole.longest - 1).over >= 1
    line = long_rows_line(short, "dpo")
    assert f"{short.over} of {len(rows)}" in line and f"max_length: {whole.longest}" in line
    assert long_rows_line(whole, "reward") is None
    # plain-text rows count the prompt and completion texts
    text = [{"prompt": "a b c " * 20, "chosen": "yes", "rejected": "no no no"}]
    assert length_report(text, tokenizer, 10).prompt_fills == 1


def _common(tiny_small: Path, out: Path) -> list[str]:
    return ["--max_length", str(_median_length(tiny_small)), "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/safety_pref_train.jsonl'}}}]",
            "--eval_datasets", "[]", "--output_dir", str(out), "--max_steps", "1",
            "--per_device_train_batch_size", "4", "--logging_steps", "1", "--eval_strategy", "no",
            "--save_strategy", "no"]


# script, recipe, the count TRL drops rows by, a piece of the warning line
TRAINERS = {"reward": (reward_main, "reward/full.yaml", "longer_than_max_length", "RewardTrainer drops these pairs"),
            "dpo": (dpo_main, "dpo/full.yaml", "prompt_fills_max_length", "completions are cut")}


@pytest.mark.parametrize("trainer_name", TRAINERS)
def test_trainer_drops_exactly_the_rows_counted(tiny_small, tmp_path, caplog, trainer_name):
    main, recipe, dropped, warning = TRAINERS[trainer_name]
    out = tmp_path / trainer_name
    trainer = main([str(REPO / "recipes/tiny" / recipe), *_common(tiny_small, out)])
    lengths = json.loads((out / "run_manifest.json").read_text())["data"]["lengths"]
    assert lengths[dropped] > 0
    assert len(trainer.train_dataset) == lengths["rows"] - lengths[dropped]
    assert any(warning in r.message for r in caplog.records)
