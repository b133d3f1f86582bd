"""Bad input to finetune/sft.py stops with one line naming the file/row/key and the fix, before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune.sft as sft
from corral.recipe import run_cli

REPO = Path(__file__).resolve().parent.parent
LORA = REPO / "recipes/tiny/sft/lora.yaml"


@pytest.fixture
def no_model_load(monkeypatch):
    """Tripwire: every error here must come before the model is loaded."""
    def boom(*a, **k):
        raise AssertionError("model was loaded before the input error was reported")
    monkeypatch.setattr(sft, "load_causal_lm", boom)


def run(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        run_cli(sft.main, [str(a) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line
    assert err.startswith("error: ")
    return err.removeprefix("error: ")


def recipe_with(tmp_path: Path, old: str, new: str) -> Path:
    text = LORA.read_text()
    assert old in text
    p = tmp_path / "recipe.yaml"
    p.write_text(text.replace(old, new))
    return p


def data_file(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "data.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def with_data(tiny_small, path) -> list:
    return ["--model_name_or_path", tiny_small / "tiny-base", "--datasets", f"[{{path: {path}}}]"]


def test_unknown_key_names_file_key_and_suggestion(tmp_path, capsys, no_model_load):
    p = recipe_with(tmp_path, "learning_rate:", "learning_rat:")
    assert run([p], capsys) == f"{p}: unknown key 'learning_rat' (did you mean 'learning_rate'?)"


def test_unknown_cli_option(capsys, no_model_load):
    assert run([LORA, "--lora_rr", "8"], capsys) == "command line: unknown option '--lora_rr' (did you mean '--lora_r'?)"


def test_wrong_type(tmp_path, capsys, no_model_load):
    p = recipe_with(tmp_path, "num_train_epochs: 3", "num_train_epochs: three")
    assert run([p], capsys) == f"{p}: key 'num_train_epochs' expects a float, got str 'three'"


def test_missing_recipe_file(tmp_path, capsys, no_model_load):
    msg = run([tmp_path / "nope.yaml"], capsys)
    assert msg.startswith(f"{tmp_path / 'nope.yaml'}: recipe file not found")


def test_missing_model_directory(tmp_path, capsys, no_model_load):
    msg = run([LORA, "--model_name_or_path", tmp_path / "no-such-model"], capsys)
    assert msg == f"model_name_or_path {tmp_path / 'no-such-model'}: no such directory"


def test_missing_tiny_base_suggests_make(capsys, no_model_load, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # recipes' relative outputs/tiny-base does not exist here
    msg = run([LORA], capsys)
    assert msg.startswith("model_name_or_path outputs/tiny-base: no such directory")
    assert msg.endswith("(run `make tiny-base` to build the embedded tiny model)")


def test_dataset_file_missing(tiny_small, tmp_path, capsys, no_model_load):
    missing = tmp_path / "missing.jsonl"
    assert run([LORA, *with_data(tiny_small, missing)], capsys) == f"{missing}: file not found"


@pytest.mark.parametrize("row, reason", [
    ({"conversation": [{"role": "user", "content": "hi"}]}, "missing key 'messages'"),
    ({"messages": [{"role": "usr", "content": "hi"}, {"role": "assistant", "content": "Hello."}]},
     "unknown role 'usr' (expected one of system, user, assistant, tool)"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]},
     "empty content in turn 2"),
])
def test_bad_rows_name_file_and_row(tiny_small, tmp_path, capsys, no_model_load, row, reason):
    good = {"messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi."}]}
    path = data_file(tmp_path, [good, row])
    assert run([LORA, *with_data(tiny_small, path)], capsys) == (
        f"{path}:2: {reason} (on_bad_rows: skip drops and counts such rows)")


def test_unknown_format_lists_what_was_tried(tiny_small, tmp_path, capsys, no_model_load):
    path = data_file(tmp_path, [{"conversation": [{"role": "user", "content": "hi"}]}])
    msg = run([LORA, *with_data(tiny_small, path)], capsys)
    assert msg.startswith(f"{path}: no known format matches keys ['conversation'] (tried: ")
    assert msg.endswith("); set format: in the recipe")


def test_skip_bad_rows_trains_on_the_rest(tiny_small, tmp_path, capsys, caplog):
    """on_bad_rows: skip counts the bad row and goes on (error tripwire not used: this one trains)."""
    good = {"messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi."}]}
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}
    path = data_file(tmp_path, [good] * 3 + [bad])
    out = tmp_path / "out"
    sft.main([str(LORA), *map(str, with_data(tiny_small, path)), "--on_bad_rows", "skip", "--dedup", "false",
              "--output_dir", str(out), "--max_steps", "1", "--gradient_checkpointing", "false"])
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["data"]["train_rows"] == 3
    assert "skipped 1 (empty content in turn N: 1)" in caplog.text
