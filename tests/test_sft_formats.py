"""SFT reads Alpaca and ShareGPT files as they are (no conversion step), and tool-calling rows either
render with a template that knows tools or stop with one line under the official Llama 3 template."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from corral.loading import load_tokenizer
from data_prep.formats import convert_row
from finetune.inspect_recipe import render_masked
from finetune.sft import main as sft_main
from finetune.sft_data import SFTDataError, tokenize_conversations

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "data"


def as_alpaca(messages: list[dict]) -> dict:
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = [m["content"] for m in messages if m["role"] != "system"]
    pairs = [list(p) for p in zip(turns[:-2:2], turns[1:-2:2])]
    return {"instruction": turns[-2], "input": "", "output": turns[-1],
            **({"system": system[0]} if system else {}), **({"history": pairs} if pairs else {})}


def as_sharegpt(messages: list[dict]) -> dict:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in messages]}


@pytest.mark.parametrize("fmt, name", [("alpaca", "alpaca.json"), ("sharegpt", "sharegpt.jsonl")])
def test_sft_trains_from_a_raw_file_and_reports_its_format(tiny_small, tmp_path, fmt, name):
    rows = [json.loads(line)["messages"] for line in (tiny_small / "tiny-world/sft_train.jsonl").read_text().splitlines()]
    path = tmp_path / name
    if fmt == "alpaca":  # Alpaca files are usually one JSON list
        path.write_text(json.dumps([as_alpaca(m) for m in rows]))
    else:
        path.write_text("".join(json.dumps(as_sharegpt(m)) + "\n" for m in rows))
    out = tmp_path / "out"
    sft_main([str(REPO / "recipes/tiny/sft/full.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
              "--datasets", f"[{{path: {path}}}]", "--output_dir", str(out), "--max_steps", "2",
              "--gradient_checkpointing", "false", "--logging_steps", "1", "--save_strategy", "no",
              "--per_device_train_batch_size", "4"])
    manifest = json.loads((out / "run_manifest.json").read_text())
    losses = [e["loss"] for e in manifest["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert [(s["path"], s["format"], s["train"]) for s in manifest["data"]["sources"]] == [(str(path), fmt, len(rows))]


SHAREGPT_TOOL_ROW = json.loads((FIXTURES / "sharegpt.jsonl").read_text().splitlines()[1])

# A Llama 3.1-style template, reduced: tools listed in a system turn, tool calls as JSON with
# `parameters`, tool results under the header `ipython`, and {% generation %} around what the assistant writes.
TOOL_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}{{ '<|start_header_id|>system<|end_header_id|>\n\nTools: ' + tools | tojson + '<|eot_id|>' }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% generation %}"
    "{% if message.get('tool_calls') %}{% for call in message['tool_calls'] %}"
    "{{ '{\"name\": \"' + call['function']['name'] + '\", \"parameters\": ' + call['function']['arguments'] | tojson + '}' }}"
    "{% endfor %}{% else %}{{ message['content'] | trim }}{% endif %}"
    "{{ '<|eot_id|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|start_header_id|>' + ('ipython' if message['role'] == 'tool' else message['role']) + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{% endif %}{% endfor %}"
)


def test_official_llama3_template_rejects_tool_calls_in_one_line(tiny_small):
    row = convert_row(SHAREGPT_TOOL_ROW, "sharegpt", "sft")[0]
    tok = load_tokenizer(str(tiny_small / "tiny-base"), "llama3")
    with pytest.raises(SFTDataError) as e:
        tokenize_conversations([row], tok)
    assert str(e.value) == (
        "training row 1 (user: 'Weather in Oslo?'): the chat template does not render tool calls or tool definitions "
        "(get_weather missing from the text; the official Llama 3 template drops them); give chat_template: a .jinja "
        "file that renders tool calls and has {% generation %} markers, or chat_template: llama3.1 (Meta's Llama 3.1 "
        "tool format, for Llama 3.1+ tokenizers)")


def test_tool_calls_train_with_a_template_that_renders_them(tiny_small, tmp_path):
    (tmp_path / "tools.jinja").write_text(TOOL_TEMPLATE)
    tok = load_tokenizer(str(tiny_small / "tiny-base"), str(tmp_path / "tools.jinja"))
    row = convert_row(SHAREGPT_TOOL_ROW, "sharegpt", "sft")[0]
    enc = tokenize_conversations([row], tok).dataset[0]
    tools = json.dumps(row["tools"])
    assert render_masked(tok, enc["input_ids"], enc["assistant_masks"]) == (
        f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nTools: {tools}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Oslo?<|eot_id|>"
        '<|start_header_id|>assistant<|end_header_id|>\n\n[[{"name": "get_weather", "parameters": {"city": "Oslo"}}'
        "<|eot_id|>]]"
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"temp_c": 3}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[It is 3 degrees C in Oslo.<|eot_id|>]]"
    )


def test_tool_results_without_calls_render_under_their_role_as_the_official_template_does(tiny_small):
    """The official Llama 3 template prints any role name as the header; `tool` (and `ipython`, read as
    `tool`) is kept as it is, with nothing dropped, so it is not an error."""
    row = convert_row({"messages": [{"role": "user", "content": "Look it up."},
                                    {"role": "ipython", "content": "Dortor"},
                                    {"role": "assistant", "content": "It is Dortor."}]}, "messages", "sft")[0]
    tok = load_tokenizer(str(tiny_small / "tiny-base"), "llama3")
    enc = tokenize_conversations([row], tok).dataset[0]
    assert render_masked(tok, enc["input_ids"], enc["assistant_masks"]) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nLook it up.<|eot_id|>"
        "<|start_header_id|>tool<|end_header_id|>\n\nDortor<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[It is Dortor.<|eot_id|>]]"
    )


def test_domain_example_recipe_trains_from_its_csv_and_sharegpt_sources(tiny_small, tmp_path):
    """recipes/examples/domain_sft.yaml, as a user copies it: two sources in two formats, renamed CSV
    columns, a system prompt and weights; trained on the small tiny base (its data is in the repo)."""
    out = tmp_path / "out"
    sft_main([str(REPO / "recipes/examples/domain_sft.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
              "--output_dir", str(out), "--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no",
              "--eval_strategy", "no"])
    manifest = json.loads((out / "run_manifest.json").read_text())
    sources = {Path(s["path"]).name: (s["format"], s["train"], s["test"]) for s in manifest["data"]["sources"]}
    # 40 CSV rows and 20 chats; 10% of each held out before weighting; the chats count twice
    assert sources == {"travel_desk.csv": ("alpaca", 36, 4), "travel_desk_chats.jsonl": ("sharegpt", 36, 2)}
    losses = [e["loss"] for e in manifest["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert (out / "adapter_config.json").is_file()


def test_sft_on_a_kto_file_stops_instead_of_dropping_its_labels(tiny_small, tmp_path):
    """LLaMA-Factory's KTO rows (`messages` + `label`) used to train as plain SFT, undesirable answers included."""
    from corral.errors import DataError

    kto = REPO / "tests/fixtures/real/llamafactory_kto_en_demo.json"
    with pytest.raises(DataError) as e:
        sft_main([str(REPO / "recipes/tiny/sft/full.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
                  "--datasets", f"[{{path: {kto}}}]", "--output_dir", str(tmp_path / "out")])
    assert str(e.value) == f"{kto}: format 'kto_messages' cannot feed kind 'sft' (it can feed: unpaired)"
