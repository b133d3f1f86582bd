"""Rejection sampling: best-of-n selection on fixed scores, and finetune/rejection_sampling.py end to end
on the seconds-sized tiny base (rounds, saved data and models, summary table, early errors)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from corral.recipe import run_cli
from finetune.best_of_n import select_best, sft_rows, without_empty
from finetune.rejection_sampling import RSScriptArguments, sft_argv
from finetune.rejection_sampling import main as rs_main

REPO = Path(__file__).resolve().parent.parent
NAN = math.nan


def test_select_best_picks_the_highest_score_of_each_prompt():
    totals = [0.5, 1.5, 1.0,   # prompt 0: sample 1
              2.0, 2.0, 0.0,   # prompt 1: a tie goes to the earlier sample
              NAN, 0.2, NAN,   # prompt 2: NaN (no reward applied) never wins
              NAN, NAN, NAN]   # prompt 3: nothing scored, nothing kept
    assert select_best(totals, 3) == [1, 3, 7, None]


def test_select_best_drops_prompts_whose_best_is_below_min_score():
    totals = [0.5, 1.5, 1.0, 2.0, 2.0, 0.0, NAN, 0.2, NAN]
    assert select_best(totals, 3, min_score=1.5) == [1, 3, None]   # 1.5 >= 1.5 is kept
    assert select_best(totals, 3, min_score=2.5) == [None, None, None]
    assert select_best(totals, 3, min_score=-1.0) == [1, 3, 7]
    with pytest.raises(ValueError, match="9 scores do not split into groups of num_samples=2"):
        select_best(totals, 2)


def test_empty_responses_are_never_picked():
    totals = without_empty([2.0, 1.0, 0.5, 0.1], ["", "x", " \n", "y"])
    assert math.isnan(totals[0]) and math.isnan(totals[2]) and totals[1::2] == [1.0, 0.1]
    assert select_best(totals, 2) == [1, 3]


def test_sft_rows_append_the_picked_response_to_the_prompt():
    rows = [{"prompt": [{"role": "user", "content": "Q1"}], "reference": "a"},
            {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q2"}]}]
    assert sft_rows(rows, ["a1", "a2", "b1", "b2"], [1, None]) == [
        {"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "a2"}]}]


def test_sft_argv_passes_overrides_as_recipe_values():
    overrides = {"learning_rate": 1e-4, "save_strategy": "no", "lora_target_modules": ["q_proj", "v_proj"]}
    script = RSScriptArguments(datasets=[{"path": "p.jsonl"}], sft_recipe="recipes/tiny/sft/full.yaml",
                               sft_overrides=overrides)
    assert sft_argv(script, "m", "d.jsonl", "o") == [
        "recipes/tiny/sft/full.yaml", "--model_name_or_path", "m", "--datasets", "[{path: d.jsonl}]",
        "--output_dir", "o", "--learning_rate", "0.0001", "--save_strategy", "no", "--lora_target_modules",
        "[q_proj, v_proj]"]


def rs_args(tiny_small: Path, out: Path, *extra: str) -> list[str]:
    return [str(REPO / "recipes/tiny/rs/rounds.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--output_dir", str(out),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/rl_prompts_train.jsonl'}}}]",
            "--heldout_datasets", f"[{{path: {tiny_small / 'tiny-world/rl_prompts_heldout.jsonl'}}}]",
            "--rounds", "3", "--num_samples", "3", "--prompts_per_round", "8", "--max_new_tokens", "8",
            "--rewards", "{length: 1.0, stop: 0.5}", "--length_target", "3", "--min_score", "null",
            "--sft_overrides", "{max_steps: 2, learning_rate: 1.0e-3, save_strategy: 'no', logging_steps: 1}",
            "--heldout_samples", "2", *extra]


def test_rounds_sample_select_finetune_and_report(tiny_small, tmp_path):
    out = tmp_path / "rs"
    summaries = rs_main(rs_args(tiny_small, out))
    assert [s["round"] for s in summaries] == [0, 1, 2, 3]
    kept = {}
    for k in (1, 2, 3):
        rdir = out / f"round-{k}"
        samples = [json.loads(line) for line in (rdir / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == 8 * 3
        # exactly the best non-empty sample of each prompt is selected (none when all three are empty: the
        # prompt is dropped), and it is what SFT trained on
        kept[k] = 0
        for p in range(8):
            group = [s for s in samples if s["prompt_index"] == p]
            best = max((s for s in group if s["response"].strip()), key=lambda s: (s["reward"], -s["sample"]),
                       default=None)
            assert [s["selected"] for s in group] == [s is best for s in group]
            kept[k] += best is not None
        sft = [json.loads(line) for line in (rdir / "sft_data.jsonl").read_text().splitlines()]
        assert [r["messages"][-1]["content"] for r in sft] == [s["response"] for s in samples if s["selected"]]
        assert summaries[k]["kept"] == kept[k] >= 6 and summaries[k]["model"] == str(rdir / "model")
        assert set(summaries[k]["heldout"]) == {"greedy", "sampled"}
        assert set(summaries[k]["heldout"]["sampled"]) == {"length", "stop", "reward"}
        assert (rdir / "heldout_responses.jsonl").is_file() and (rdir / "sft_command.txt").is_file()
        manifest = json.loads((rdir / "model/run_manifest.json").read_text())
        assert manifest["config"]["SFTConfig"]["learning_rate"] == 1e-3  # the override reached SFT
    one = load_file(str(out / "round-1/model/model.safetensors"))
    two = load_file(str(out / "round-2/model/model.safetensors"))
    assert any(not torch.equal(one[k], two[k]) for k in one)  # round 2 trained from round 1's model
    table = (out / "summary.md").read_text()
    assert f"| 1 | {kept[1]} / 8 |" in table
    assert "Mean reward on held-out prompts (greedy):" in table and "Mean reward on held-out prompts (sampled):" in table
    assert [line.split(" |")[0] for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()][-4:] == [
        "| 0", "| 1", "| 2", "| 3"]
    assert "held-out greedy, round 1 -> 3: reward change " in table and "held-out sampled, round 0 -> 3" in table


def test_min_score_that_nothing_reaches_stops_with_one_line(tiny_small, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli(rs_main, rs_args(tiny_small, tmp_path / "rs", "--min_score", "5.0", "--rounds", "1"))
    err = capsys.readouterr().err.strip().splitlines()  # after the sampling progress bars
    assert err[-1].startswith("error: round 1: no prompt has a response scoring >= min_score 5.0 (best mean ")
    assert err[-1].endswith("); lower min_score") and sum(line.startswith("error") for line in err) == 1


def test_bad_sft_settings_fail_before_sampling(tiny_small, tmp_path, capsys, monkeypatch):
    import finetune.online_rl

    monkeypatch.setattr(finetune.online_rl, "load_mixture", lambda *a, **k: pytest.fail("data loaded first"))
    with pytest.raises(SystemExit):
        run_cli(rs_main, rs_args(tiny_small, tmp_path / "rs", "--sft_overrides", "{learning_rat: 1.0}"))
    err = capsys.readouterr().err.strip()
    assert err == f"error: command line: unknown option '--learning_rat' (did you mean '--learning_rate'?)"


def test_a_multi_process_launch_stops_before_sampling(tiny_small, tmp_path, capsys, monkeypatch):
    # What torchrun gives each worker, also when a CPU launch without use_cpu leaves each a world of 1.
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        run_cli(rs_main, rs_args(tiny_small, tmp_path / "rs"))
    assert capsys.readouterr().err.strip() == ("error: rejection sampling generates in one process; launch with "
                                               "accelerate_configs/cpu.yaml or --num_processes 1")
    assert not (tmp_path / "rs").exists()
