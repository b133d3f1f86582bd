"""Bad preference data and recipes stop finetune/dpo.py and reward/train.py with one line, before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune.dpo as dpo
import reward.train as reward_train
from corral.recipe import run_cli

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = {  # script module, a recipe it runs, the model loader that must not be reached
    "dpo": (dpo, "recipes/tiny/dpo/full.yaml", "load_start_model"),
    "kto": (dpo, "recipes/tiny/kto/full.yaml", "load_start_model"),
    "reward": (reward_train, "recipes/tiny/reward/full.yaml", "load_reward_backbone"),
}
GOOD = {"prompt": "What is 2 + 3?", "chosen": "2 + 3 = 5.", "rejected": "2 + 3 = 6."}


@pytest.fixture
def no_model_load(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the model was loaded before the input error was reported")
    for module, _, loader in SCRIPTS.values():
        monkeypatch.setattr(module, loader, boom)


def run(script: str, argv, capsys) -> str:
    module, recipe, _ = SCRIPTS[script]
    with pytest.raises(SystemExit) as exc:
        run_cli(module.main, [str(REPO / recipe), *map(str, argv)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line
    assert err.startswith("error: ")
    return err.removeprefix("error: ")


def data_file(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "pairs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def with_data(tiny_small: Path, path: Path) -> list:
    return ["--model_name_or_path", tiny_small / "tiny-base", "--datasets", f"[{{path: {path}}}]",
            "--eval_datasets", "[]", "--output_dir", path.parent / "out"]


BAD_ROWS = {
    "chosen equals rejected": ({"prompt": "Hi", "chosen": "Hello.", "rejected": "Hello."},
                               "chosen and rejected are identical"),
    "missing prompt": ({"prompt": "", "chosen": "Hello.", "rejected": "Go away."}, "missing prompt"),
    "implicit prompts differ": ({"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
                                 "rejected": [{"role": "user", "content": "Hey"}, {"role": "assistant", "content": "Go."}]},
                                "prompt differs between chosen and rejected"),
    "non-numeric rating": ({"prompt": "Hi", "completions": [{"response": "Hello.", "score": 9},
                                                            {"response": "Go away.", "score": "low"}]},
                           "score is not a number: 'low'"),
}


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("case", BAD_ROWS)
def test_bad_preference_rows_name_the_file_and_row(tiny_small, tmp_path, capsys, no_model_load, script, case):
    bad, reason = BAD_ROWS[case]
    rows = [bad, bad] if case in ("implicit prompts differ", "non-numeric rating") else [GOOD, bad]  # same format per file
    path = data_file(tmp_path, rows)
    assert run(script, with_data(tiny_small, path), capsys) == (
        f"{path}:{1 if rows[0] is bad else 2}: {reason} (on_bad_rows: skip drops and counts such rows)")


@pytest.mark.parametrize("argv, message", [
    (["--desirable_weight", "2.0"],
     "command line: unknown option '--desirable_weight' (a kto option; this recipe's method is dpo)"),
    (["--method", "dop"], "command line: option '--method' expects one of 'dpo', 'kto', 'orpo', 'cpo', 'simpo', got str 'dop'"),
    (["--loss_type", "robust", "--label_smoothing", "0.5"],
     "loss_type robust: label_smoothing is the share of flipped labels and must be in [0, 0.5), got 0.5"),
    (["--loss_type", "sigmoid", "ipo", "--loss_weights", "1.0"],  # DPOConfig's own check, one line with the file
     f"{REPO / 'recipes/tiny/dpo/full.yaml'}: `loss_weights` must have the same length as `loss_type` when "
     "combining multiple losses. Got 1 weights for 2 loss types."),
    (["--model_name_or_path", "outputs/no-such-sft"], "model_name_or_path outputs/no-such-sft: no such directory"),
])
def test_recipe_mistakes_are_one_line(tiny_small, capsys, no_model_load, argv, message):
    assert run("dpo", argv, capsys) == message


def test_method_specific_mistakes(tiny_small, tmp_path, capsys, no_model_load):
    simpo = REPO / "recipes/tiny/simpo/full.yaml"
    with pytest.raises(SystemExit):
        run_cli(dpo.main, [str(simpo), "--loss_type", "sigmoid"])
    assert capsys.readouterr().err.strip() == (
        "error: method simpo trains CPO with loss_type: simpo, got loss_type: sigmoid (set loss_type: simpo, or "
        "method: cpo for the other CPO losses)")
    assert run("kto", ["--per_device_train_batch_size", "1"], capsys) == (
        "method kto: per_device_train_batch_size must be >= 2 (the KL term is estimated from the other completions "
        "in the batch)")


def test_margins_must_be_on_every_row_or_none(tiny_small, tmp_path, capsys, no_model_load):
    path = data_file(tmp_path, [{**GOOD, "margin": 1.0}, GOOD])
    assert run("reward", with_data(tiny_small, path), capsys) == (
        "datasets: 1 of 2 rows have no margin; give every row a margin or none")
    path = data_file(tmp_path, [{**GOOD, "margin": "big"}])
    assert run("reward", with_data(tiny_small, path), capsys) == (
        f"{path}:1: margin is not a number: 'big' (on_bad_rows: skip drops and counts such rows)")


@pytest.mark.parametrize("script", SCRIPTS)
def test_samplers_pairs_cannot_use_are_refused_before_the_model_loads(tiny_small, capsys, no_model_load, script):
    # transformers' batch_rebalance sampler reads input_ids, which preference rows lack: it failed at train()
    message = run(script, ["--model_name_or_path", tiny_small / "tiny-base", "--train_sampling_strategy",
                           "batch_rebalance"], capsys)
    assert message.startswith("train_sampling_strategy: batch_rebalance reads an input_ids column")


@pytest.mark.parametrize("strategy", ["random", "group_by_length"])
def test_kto_keeps_its_fixed_order(tiny_small, capsys, no_model_load, strategy):
    # KTO's KL term pairs each row with its neighbours; TRL refused other orders only after the model loaded
    message = run("kto", ["--model_name_or_path", tiny_small / "tiny-base", "--train_sampling_strategy", strategy],
                  capsys)
    assert message.startswith(f"train_sampling_strategy: {strategy} breaks KTO's KL estimate")
