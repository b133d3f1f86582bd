"""Real dataset files (slices in tests/fixtures/real/, sources and licenses in SOURCES.md): each converts
with the expected row counts, no column that carries meaning is lost, malformed real rows are counted with
reasons, KTO in both public shapes trains, and German and Chinese chats tokenize, render, train and
inspect unmangled."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from corral.loading import load_tokenizer
from data_prep.cli import main as convert_main
from data_prep.formats import column_use, detect_format
from data_prep.io import read_rows

REPO = Path(__file__).resolve().parent.parent
REAL = REPO / "tests" / "fixtures" / "real"
HH = REAL / "hh_rlhf_harmless_base_test.jsonl"
LF_KTO = REAL / "llamafactory_kto_en_demo.json"
TRL_KTO = REAL / "trl_kto_conversational.jsonl"
MULTILINGUAL = REAL / "multilingual_de_zh.jsonl"

# file -> (format, kind, rows read, rows written, rejected, unused columns), with --on-bad-rows skip
EXPECTED = {
    "llamafactory_alpaca_en_demo.json": ("alpaca", "sft", 30, 30, "rejected 0", ""),
    "llamafactory_alpaca_zh_demo.json": ("alpaca", "sft", 20, 20, "rejected 0", ""),
    "llamafactory_glaive_toolcall_en_demo.json": ("sharegpt", "sft", 20, 20, "rejected 0", ""),
    "llamafactory_glaive_toolcall_zh_demo.json": ("sharegpt", "sft", 20, 20, "rejected 0", ""),
    "llamafactory_dpo_en_demo.json": ("sharegpt_pairs", "preference", 20, 20, "rejected 0", ""),
    "llamafactory_kto_en_demo.json": ("kto_messages", "unpaired", 24, 24, "rejected 0", ""),
    "hh_rlhf_harmless_base_test.jsonl": (
        "hh", "preference", 40, 38,
        "rejected 2 (chosen: empty content in turn N: 1, chosen: two consecutive assistant turns at N: 1)", ""),
    "trl_kto_standard.jsonl": ("kto", "unpaired", 20, 20, "rejected 0", ""),
    "trl_kto_conversational.jsonl": ("kto", "unpaired", 20, 20, "rejected 0", ""),
    "trl_preference_conversational.jsonl": ("preference", "preference", 20, 20, "rejected 0", ""),
    "multilingual_de_zh.jsonl": ("messages", "sft", 20, 20, "rejected 0", ", unused columns: lang"),
}


def test_every_real_fixture_is_listed_with_its_source():
    files = sorted(p.name for p in REAL.iterdir() if p.suffix in (".json", ".jsonl"))
    assert files == sorted(EXPECTED)
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in sources for name in files)


def convert(path: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, str, list[dict]]:
    out = tmp_path / "out.jsonl"
    code = convert_main(["convert", str(path), "--out", str(out), *extra])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if code == 0 else []
    return code, captured.out, captured.err, rows


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_fixture_converts_with_expected_counts_and_summary(name, tmp_path, capsys):
    fmt, kind, read, written, rejected, unused = EXPECTED[name]
    code, out, _, rows = convert(REAL / name, tmp_path, capsys, "--on-bad-rows", "skip")
    assert code == 0
    assert out == (f"{REAL / name}: read {read} rows, wrote {written} to {tmp_path / 'out.jsonl'}, "
                   f"format {fmt} ({kind}), {rejected}{unused}\n")
    assert len(rows) == written


def raw_rows(path: Path) -> list[dict]:
    return [row for _, row in read_rows(path)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_column_that_carries_meaning_is_left_unread(name):
    rows = raw_rows(REAL / name)
    fmt = EXPECTED[name][0]
    assert detect_format(rows, name) == fmt
    unused, lost = column_use(rows, fmt)
    assert lost == [] and unused == (["lang"] if name == MULTILINGUAL.name else [])


def test_meaning_survives_conversion(tmp_path, capsys):
    """The values behind each meaningful column reach the standard rows unchanged."""
    def converted(name: str) -> tuple[list[dict], list[dict]]:
        return raw_rows(REAL / name), convert(REAL / name, tmp_path, capsys, "--on-bad-rows", "skip")[3]

    raw, out = converted(LF_KTO.name)  # label kept; the last assistant turn is the judged completion
    assert [r["label"] for r in out] == [r["label"] for r in raw] and {r["label"] for r in out} == {True, False}
    assert [r["completion"] for r in out] == [r["messages"][-1:] for r in raw]
    assert [r["prompt"] for r in out] == [r["messages"][:-1] for r in raw]

    raw, out = converted("trl_kto_standard.jsonl")
    assert out == raw

    raw, out = converted("llamafactory_dpo_en_demo.json")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in out] == [
        (r["chosen"]["value"], r["rejected"]["value"]) for r in raw]

    raw, out = converted("llamafactory_glaive_toolcall_en_demo.json")  # tools and every call kept
    assert [r.get("tools") for r in out] == [json.loads(r["tools"]) if r["tools"] else None for r in raw]
    calls = [sum(len(m.get("tool_calls", [])) for m in r["messages"]) for r in out]
    assert calls == [sum(t["from"] == "function_call" for t in r["conversations"]) for r in raw] and sum(calls) > 0

    raw, out = converted("llamafactory_alpaca_en_demo.json")
    assert [r["messages"][-1]["content"] for r in out] == [r["output"] for r in raw]
    assert all(r["input"] in o["messages"][-2]["content"] for r, o in zip(raw, out))

    raw, out = converted(HH.name)  # the final answers, after the last "Assistant:" of each transcript
    good = [r for n, r in enumerate(raw, 1) if n not in (11, 31)]
    last = [(r["chosen"].rsplit("\n\nAssistant:", 1)[1].strip(), r["rejected"].rsplit("\n\nAssistant:", 1)[1].strip())
            for r in good]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in out] == last

    raw, out = converted(MULTILINGUAL.name)  # text byte for byte, `lang` reported as unused
    assert [r["messages"] for r in out] == [r["messages"] for r in raw]


# ---- malformed real rows, KTO shapes, exit codes ----------------------------------------------


def test_real_hh_stops_at_its_first_malformed_row_naming_the_skip_option(tmp_path, capsys):
    code, _, err, _ = convert(HH, tmp_path, capsys)
    assert code == 2
    assert err == (f"error: {HH}:11: chosen: empty content in turn 2 "
                   "(--on-bad-rows skip drops and counts such rows)\n")


def test_hh_transcript_with_two_assistant_turns_in_a_row_is_a_counted_bad_row(tmp_path, capsys):
    line_31 = HH.read_text(encoding="utf-8").splitlines()[30]
    assert re.search(r"\n\nAssistant:[^\n]*(\n(?!\n\nHuman:)[^\n]*)*\n\nAssistant:", json.loads(line_31)["chosen"])
    path = tmp_path / "one.jsonl"
    path.write_text(line_31 + "\n", encoding="utf-8")
    code, _, err, _ = convert(path, tmp_path, capsys)
    assert (code, err) == (2, f"error: {path}:1: chosen: two consecutive assistant turns at 5 "
                              "(--on-bad-rows skip drops and counts such rows)\n")


def test_llamafactory_kto_is_not_read_as_plain_sft_and_converts_when_forced_as_kto(tmp_path, capsys):
    code, _, err, _ = convert(LF_KTO, tmp_path, capsys, "--format", "messages")
    assert code == 2
    assert err == (f"error: {LF_KTO}: column 'label' carries meaning but format 'messages' does not read it "
                   "(formats that read it: kto, kto_messages); choose one with --format kto, or drop it knowingly "
                   "with --ignore-columns label\n")
    code, out, _, rows = convert(LF_KTO, tmp_path, capsys, "--format", "kto")
    assert code == 0 and len(rows) == 24 and "format kto (unpaired)" in out
    code, out, _, rows = convert(LF_KTO, tmp_path, capsys, "--format", "messages", "--ignore-columns", "label")
    assert code == 0 and "format messages (sft)" in out and all(set(r) == {"messages"} for r in rows)


def test_kto_file_cannot_feed_sft(tmp_path, capsys):
    code, _, err, _ = convert(LF_KTO, tmp_path, capsys, "--kind", "sft")
    assert (code, err) == (2, f"error: {LF_KTO}: format 'kto_messages' cannot feed kind 'sft' "
                              "(it can feed: unpaired)\n")


def test_preference_file_with_a_row_lacking_rejected_is_not_read_as_prompts(tmp_path, capsys):
    rows = [json.loads(line) for line in (REAL / "trl_preference_conversational.jsonl").read_text().splitlines()]
    del rows[4]["rejected"]
    path = tmp_path / "pref.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err, _ = convert(path, tmp_path, capsys)
    assert (code, err) == (2, f"error: {path}:5: rows disagree about the format: this row lacks 'rejected' and "
                              "reads as 'prompt', while line 1 reads as 'preference' "
                              "(--on-bad-rows skip drops and counts such rows)\n")
    code, out, _, written = convert(path, tmp_path, capsys, "--on-bad-rows", "skip")
    assert code == 0 and len(written) == 19
    assert "format preference (preference), rejected 1 (missing key 'rejected': 1)" in out


# ---- KTO trains from both public shapes -------------------------------------------------------


def test_kto_trains_on_llamafactory_and_trl_files(tiny_small, tmp_path):
    from finetune.dpo import main as dpo_main

    out = tmp_path / "kto"
    trainer = dpo_main([
        str(REPO / "recipes/tiny/kto/full.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
        "--datasets", f"[{{path: {LF_KTO}}}, {{path: {TRL_KTO}}}]", "--eval_datasets", "[]",
        "--output_dir", str(out), "--max_steps", "3", "--per_device_train_batch_size", "4", "--max_length", "128",
        "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no"])
    assert type(trainer).__name__ == "KTOTrainer"
    # TRL drops rows whose prompt alone fills max_length (long LLaMA-Factory prompts, byte-level tiny
    # tokenizer); the 20 short TRL rows all stay, and both labels of both files reach the trainer.
    kept = trainer.train_dataset
    assert 20 < len(kept) <= 44 and set(kept["label"]) == {True, False}
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["data"]["train_rows"] == 44


# ---- German and Chinese -----------------------------------------------------------------------

MANGLED = re.compile("[\ufffd]|Ã|Â|â€|ä¸|å")  # replacement char, or UTF-8 bytes shown as Latin-1


def multilingual_rows() -> list[dict]:
    return [json.loads(line) for line in MULTILINGUAL.read_text(encoding="utf-8").splitlines()]


def check_renders_unmangled(tok) -> None:
    from finetune.inspect_recipe import render_masked
    from finetune.sft_data import tokenize_conversations

    rows = [{"messages": r["messages"]} for r in multilingual_rows()]
    encoded = tokenize_conversations(rows, tok).dataset
    for row, enc in zip(rows, encoded):
        shown = render_masked(tok, enc["input_ids"], enc["assistant_masks"])
        for m in row["messages"]:
            marked = f"[[{m['content']}<|eot_id|>]]" if m["role"] == "assistant" else f"{m['content']}<|eot_id|>"
            assert marked in shown, (marked, shown)
        assert not MANGLED.search(shown)


def test_german_and_chinese_render_with_their_answers_trained_on_the_tiny_tokenizer(tiny_small):
    tok = load_tokenizer(str(tiny_small / "tiny-base"), "llama3")
    for text in ("Die süße Bäckerin öffnet früh ihre große Tür.", "“春眠不觉晓”的下一句是什么？"):
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    check_renders_unmangled(tok)


def test_german_and_chinese_train_and_inspect_unmangled(tiny_small, tmp_path, capsys):
    from finetune.inspect_recipe import main as inspect_main
    from finetune.sft import main as sft_main

    recipe, base = str(REPO / "recipes/tiny/sft/full.yaml"), str(tiny_small / "tiny-base")
    data = f"[{{path: {MULTILINGUAL}}}]"
    out = tmp_path / "sft"
    sft_main([recipe, "--model_name_or_path", base, "--datasets", data, "--output_dir", str(out),
              "--max_steps", "2", "--per_device_train_batch_size", "4", "--logging_steps", "1",
              "--save_strategy", "no"])
    manifest = json.loads((out / "run_manifest.json").read_text())
    losses = [e["loss"] for e in manifest["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert manifest["data"]["sources"][0]["unused_columns"] == ["lang"]

    capsys.readouterr()
    assert inspect_main([recipe, "--model_name_or_path", base, "--datasets", data, "--n", "20"]) == 0
    shown = capsys.readouterr().out
    assert "Wie heißt die Hauptstadt von Österreich?" in shown and "[[中国的首都是北京。<|eot_id|>]]" in shown
    assert "„Gemütlichkeit“" in shown and "《静夜思》" in shown
    assert not MANGLED.search(shown)


def real_tokenizer_dir() -> Path | None:
    from realshape.tokenizers import CACHE, cached

    return CACHE if cached() else None


NO_REAL_TOKENIZER = pytest.mark.skipif(real_tokenizer_dir() is None,
                                       reason="Meta's Llama 3 tokenizer not fetched (python -m realshape fetch)")


@NO_REAL_TOKENIZER
def test_german_and_chinese_render_with_metas_llama3_tokenizer(tmp_path):
    from realshape.tokenizers import derive

    tok = load_tokenizer(str(derive("llama3-instruct", tmp_path / "tok")), "llama3")
    text = "“春眠不觉晓”的下一句是什么？ Die süße Bäckerin öffnet früh ihre große Tür."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text and len(ids) < len(text.encode()) // 2  # real merges, not bytes
    check_renders_unmangled(tok)


@pytest.mark.slow
@NO_REAL_TOKENIZER
def test_german_and_chinese_train_and_inspect_on_a_real_shaped_llama3(tmp_path, capsys):
    from finetune.inspect_recipe import main as inspect_main
    from finetune.sft import main as sft_main
    from realshape.checkpoints import build_checkpoint

    model = build_checkpoint("llama3-8b-instruct", tmp_path / "real-shaped")  # Meta's tokenizer, random weights
    out = tmp_path / "sft"
    sft_main([str(REPO / "recipes/tiny/sft/full.yaml"), "--model_name_or_path", str(model),
              "--datasets", f"[{{path: {MULTILINGUAL}}}]", "--output_dir", str(out), "--max_steps", "2",
              "--per_device_train_batch_size", "4", "--logging_steps", "1", "--save_strategy", "no"])
    losses = [e["loss"] for e in json.loads((out / "run_manifest.json").read_text())["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)

    capsys.readouterr()
    assert inspect_main([str(REPO / "recipes/tiny/sft/full.yaml"), "--model_name_or_path", str(model),
                         "--datasets", f"[{{path: {MULTILINGUAL}}}]", "--n", "20"]) == 0
    shown = capsys.readouterr().out
    assert "„Gemütlichkeit“" in shown and "[[中国的首都是北京。<|eot_id|>]]" in shown and not MANGLED.search(shown)
