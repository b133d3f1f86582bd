"""`python -m finetune.inspect_recipe`: rendered samples with trained tokens marked, exactly as training
tokenizes them (Llama 3 template, tiny_small tokenizer), and the mixture statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.chat_templates import render_llama3
from corral.loading import load_tokenizer
from finetune.inspect_recipe import MARKERS, main, percentile, pick_samples, render_masked
from finetune.sft_data import tokenize_conversations

REPO = Path(__file__).resolve().parent.parent
RECIPE = str(REPO / "recipes/tiny/sft/full.yaml")

CONVERSATION = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What is the capital of Urar?"},
    {"role": "assistant", "content": "The capital of Urar is Dortor."},
    {"role": "user", "content": "How much is 2 plus 3?"},
    {"role": "assistant", "content": "2 + 3 = 5."},
]

# The official Llama 3 Instruct rendering; each assistant answer and its <|eot_id|> is trained.
EXPECTED = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer in one sentence.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of Urar?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n[[The capital of Urar is Dortor.<|eot_id|>]]"
    "<|start_header_id|>user<|end_header_id|>\n\nHow much is 2 plus 3?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n[[2 + 3 = 5.<|eot_id|>]]"
)


@pytest.fixture(scope="module")
def llama3_tokenizer(tiny_small):
    return load_tokenizer(str(tiny_small / "tiny-base"), "llama3")


def test_rendered_masked_llama3_conversation_matches_the_official_template(llama3_tokenizer):
    tok = tokenize_conversations([{"messages": CONVERSATION}], llama3_tokenizer)
    row = tok.dataset[0]
    text = render_masked(llama3_tokenizer, row["input_ids"], row["assistant_masks"])
    assert text == EXPECTED
    assert text.replace("[[", "").replace("]]", "") == render_llama3(CONVERSATION)
    colored = render_masked(llama3_tokenizer, row["input_ids"], row["assistant_masks"], MARKERS["color"])
    assert colored == EXPECTED.replace("[[", "\x1b[1;32m").replace("]]", "\x1b[0m")


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)] == [50, 90, 99, 100]
    assert [percentile([7, 9, 20, 31], q) for q in (0.5, 0.9, 0.99)] == [9, 31, 31]
    assert percentile([5], 0.5) == 5


def test_samples_are_taken_from_each_source_in_turn():
    assert pick_samples([("a", 3), ("b", 1), ("c", 2)], 5) == [
        (0, "a", 1), (3, "b", 1), (4, "c", 1), (1, "a", 2), (5, "c", 2)]
    assert pick_samples([("a", 2)], 5) == [(0, "a", 1), (1, "a", 2)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_inspect_command_on_a_two_source_mixture(tiny_small, llama3_tokenizer, tmp_path, capsys):
    chat = [{"messages": CONVERSATION},
            {"messages": [{"role": "user", "content": "Capital of Fenmark?"},
                          {"role": "assistant", "content": "The capital of Fenmark is Osk."}]}]
    alpaca = [{"instruction": "Capital of Fenmark?", "output": "The capital of Fenmark is Osk."},  # duplicate of chat row 2
              {"instruction": "How much is 4 plus 4?", "output": "4 + 4 = 8."}]
    a = write_jsonl(tmp_path / "chat.jsonl", chat)
    b = write_jsonl(tmp_path / "alpaca.jsonl", alpaca)
    base = tiny_small / "tiny-base"
    argv = [RECIPE, "--n", "2", "--color", "never", "--model_name_or_path", str(base),
            "--datasets", f"[{{path: {a}}}, {{path: {b}, weight: 2.0}}]", "--max_length", "40"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("sft mixture:"))
    assert total.startswith("sft mixture: train 4 rows, test 0 rows from 2 source(s) (fingerprint ")

    # token counts from the official template, independently of the training template inspect uses
    def n_tokens(messages):
        return len(llama3_tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

    lengths = [n_tokens(CONVERSATION), n_tokens(chat[1]["messages"])] + [
        n_tokens([{"role": "user", "content": alpaca[1]["instruction"]},
                  {"role": "assistant", "content": alpaca[1]["output"]}])] * 2
    ordered = sorted(lengths)
    assert lengths[0] > 40 >= max(lengths[1:])

    def trained(*answers):  # each answer and its <|eot_id|>
        return sum(len(llama3_tokenizer(f"{t}<|eot_id|>", add_special_tokens=False)["input_ids"]) for t in answers)

    assert out.splitlines() == "\n".join([
        f"recipe {RECIPE} (sft, sft rows): tokenizer {base} (chat_template llama3), loss on assistant turns only, "
        "max_length 40",
        "[[...]] marks trained tokens",
        "",
        f"--- sample 1/2: {a} row 1 of its training rows; {lengths[0]} tokens, "
        f"{trained(CONVERSATION[2]['content'], CONVERSATION[4]['content'])} trained, longer than max_length=40 ---",
        EXPECTED,
        "",
        f"--- sample 2/2: {b} row 1 of its training rows; {lengths[2]} tokens, {trained(alpaca[1]['output'])} trained ---",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>",
        "",
        "How much is 4 plus 4?<|eot_id|><|start_header_id|>assistant<|end_header_id|>",
        "",
        "[[4 + 4 = 8.<|eot_id|>]]",
        "",
        "--- mixture ---",
        f"{a} (messages -> sft): read 2, rejected 0, duplicates 0, test 0, train 2 (weight 1)",
        f"{b} (alpaca -> sft): read 2, rejected 0, duplicates 1, test 0, train 2 (weight 2)",
        total,
        "duplicates removed: 1",
        f"tokens per sample: p50 {ordered[1]}, p90 {ordered[3]}, p99 {ordered[3]}, max {ordered[3]} "
        f"(4 samples, {sum(lengths)} tokens)",
        "longer than max_length=40: 1 (25.0%), truncated (keep_start)",
    ]).splitlines()


def test_inspect_errors_are_one_line(tiny_small, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "Capital of Fenmark?", "output": "Osk."},
                                               {"instruction": "Capital of Urar?"}])
    base = str(tiny_small / "tiny-base")
    assert main([RECIPE, "--model_name_or_path", base, "--datasets", f"[{{path: {bad}}}]"]) == 2
    assert capsys.readouterr().err == f"error: {bad}:2: missing key 'output' (on_bad_rows: skip drops and counts such rows)\n"
    assert main([RECIPE, "--lerning_rate", "1"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: command line: unknown option '--lerning_rate' (did you mean '--learning_rate'?)\n")
    rl = tmp_path / "recipes/tiny/rl/x.yaml"
    assert main([str(rl)]) == 2
    assert capsys.readouterr().err == (
        f"error: {rl}: inspect supports SFT and DPO recipes (recipes/<model>/sft/ or dpo/), not method 'rl'; "
        "pass --method sft or --method dpo if the recipe is kept elsewhere\n")


def test_inspect_plain_text_recipe_trains_every_token(tiny_small, tmp_path, capsys):
    text = write_jsonl(tmp_path / "text.jsonl", [{"text": "Urar is a country."}])
    assert main([RECIPE, "--n", "1", "--color", "never", "--model_name_or_path",
                 str(tiny_small / "tiny-base"), "--dataset_kind", "text", "--datasets", f"[{{path: {text}}}]"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "[[...]] marks trained tokens"
    assert out[4] == "[[<|begin_of_text|>Urar is a country.<|end_of_text|>]]"


def test_inspect_dpo_recipe_renders_prompt_then_chosen_and_rejected(tiny_small, llama3_tokenizer, tmp_path, capsys):
    pytest.importorskip("finetune.preference")
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": [{"role": "user", "content": "Capital of Urar?"}],
         "chosen": [{"role": "assistant", "content": "The capital of Urar is Dortor."}],
         "rejected": [{"role": "assistant", "content": "Pelmi."}]}])
    argv = [str(REPO / "recipes/tiny/dpo/full.yaml"), "--color", "never", "--model_name_or_path",
            str(tiny_small / "tiny-base"), "--datasets", f"[{{path: {pairs}}}]", "--eval_datasets", "[]"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nCapital of Urar?<|eot_id|>" \
             "<|start_header_id|>assistant<|end_header_id|>\n\n"
    n_prompt = len(llama3_tokenizer(prompt, add_special_tokens=False)["input_ids"])
    n_chosen = len(llama3_tokenizer("The capital of Urar is Dortor.<|eot_id|>", add_special_tokens=False)["input_ids"])
    n_rejected = len(llama3_tokenizer("Pelmi.<|eot_id|>", add_special_tokens=False)["input_ids"])
    assert (f"--- sample 1/1: {pairs} row 1 of its training rows; prompt {n_prompt} tokens, chosen {n_chosen} "
            f"trained, rejected {n_rejected} trained ---\n{prompt}\n"
            "chosen:   [[The capital of Urar is Dortor.<|eot_id|>]]\n"
            "rejected: [[Pelmi.<|eot_id|>]]\n") in out
    total = n_prompt + n_chosen
    assert (f"tokens per pair (prompt + longer completion): p50 {total}, p90 {total}, p99 {total}, max {total} "
            f"(1 pairs, {total} tokens)\n") in out


@pytest.mark.parametrize("mode", ["keep_start", "keep_end"])
def test_inspect_dpo_counts_long_pairs_as_the_trainer_warns(tiny_small, llama3_tokenizer, tmp_path, capsys, mode):
    pytest.importorskip("finetune.preference")
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": [{"role": "user", "content": "Capital of Urar?"}],
         "chosen": [{"role": "assistant", "content": "The capital of Urar is Dortor."}],
         "rejected": [{"role": "assistant", "content": "Pelmi."}]},
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}],
         "rejected": [{"role": "assistant", "content": "Go."}]}])
    prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nCapital of Urar?<|eot_id|>" \
             "<|start_header_id|>assistant<|end_header_id|>\n\n"
    n_prompt = len(llama3_tokenizer(prompt, add_special_tokens=False)["input_ids"])
    total = n_prompt + len(llama3_tokenizer("The capital of Urar is Dortor.<|eot_id|>",
                                            add_special_tokens=False)["input_ids"])
    short = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" \
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
    assert len(llama3_tokenizer(short, add_special_tokens=False)["input_ids"]) <= n_prompt  # the second one fits
    argv = [str(REPO / "recipes/tiny/dpo/full.yaml"), "--color", "never", "--model_name_or_path",
            str(tiny_small / "tiny-base"), "--datasets", f"[{{path: {pairs}}}]", "--eval_datasets", "[]",
            "--truncation_mode", mode, "--max_length", str(n_prompt)]  # the first prompt fills max_length
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = (f"1 of 2 training rows (50%) are longer than max_length={n_prompt} tokens (longest {total}): "
            + ("TRL keeps their first max_length tokens, so their completions are cut; 1 keep no completion token"
               if mode == "keep_start" else "TRL keeps their last max_length tokens"))
    assert line in out
    assert f"Set max_length: {total} to train every row whole" in out
    assert ("1 keep no completion token" in out) == (mode == "keep_start")  # keep_end drops no pair
