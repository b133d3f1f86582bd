"""The tiny world's tool-use skill (tinyworld/tools.py, tinyworld/tool_eval.py, recipes/tiny/sft/tools.yaml):
the rows render through `chat_template: llama3.1` with only the assistant's calls and answers trained, the
held-out prompts share no country, sum or phrasing with the training rows, the evaluation reads exactly the
call the template renders, and (slow) SFT on the rows makes the tiny chat model emit well-formed calls."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from corral.chat_templates import LLAMA31_CHAT_TEMPLATE
from data_prep.formats import convert_row
from finetune.sft_data import tokenize_conversations
from tinyworld.tool_eval import Call, conversation, parse_call, render
from tinyworld.tools import HELDOUT_SPLITS, TOOLS, heldout_tool_prompts, tool_training_rows
from tinyworld.world import BENIGN_TOPICS, WorldConfig, make_world

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes/tiny/sft/tools.yaml"
WORLD = make_world(WorldConfig.small())
# The slow test needs the quickstart base and chat model (make tiny-base, then recipes/tiny/sft/full.yaml; the
# base's ~26 min of pretraining is too long for a test to build): the small base (2 layers, 64 wide) learns
# no call at all (8 epochs at 2e-3: 0 of 42 well formed).
QUICKSTART = REPO / "outputs"
# Measured on the phrasing / context splits (docs/tool-calling.md): well formed 75/90 and 62/90 (this test's own
# run: 75/90 and 41/90), right call 0 (the argument is not copied), false calls 1/11 and 3/11; the thresholds
# sit a margin below.
MIN_WELL_FORMED = {"phrasing": 0.7, "context": 0.3}
MAX_FALSE_CALL = 0.35


@pytest.fixture(scope="module")
def tok31(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = LLAMA31_CHAT_TEMPLATE
    return tok


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def single_turn(rows: list[dict], tool: str | None) -> dict:
    """The first row that asks its question alone (no system prompt, no earlier turn) and calls `tool`."""
    for row in rows:
        first, *rest = row["messages"]
        called = rest[0].get("tool_calls", [{}])[0].get("function", {}).get("name") if rest else None
        if first["role"] == "user" and called == tool and len(rest) == (3 if tool else 1):
            return row
    raise AssertionError(f"no single-turn row calling {tool}")


def skeleton(text: str) -> str:
    """`text` with the world's countries, how-to topics and digits replaced: the wording alone."""
    for c in WORLD.countries:
        text = re.sub(rf"\b{c.name}\b", "{c}", text)
    for topic, _ in BENIGN_TOPICS:
        text = text.replace(topic, "{t}")
    return re.sub(r"\b\d\b", "{n}", text)


def trained_text(tok, row: dict) -> str:
    enc = tokenize_conversations([row], tok).dataset[0]
    return tok.decode([i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m])


def test_build_writes_the_tool_files_in_the_standard_schema(tiny_small):
    train = read_jsonl(tiny_small / "tiny-world/tools_train.jsonl")
    assert train == tool_training_rows(WORLD)
    assert read_jsonl(tiny_small / "tiny-world/tools_heldout.jsonl") == heldout_tool_prompts(WORLD)
    # data_prep reads them as OpenAI rows: the JSON-string arguments decoded, the tools kept
    row = next(r for r in train if len(r["messages"]) == 4)
    converted = convert_row(row, "messages", "sft")[0]
    call = converted["messages"][1]["tool_calls"][0]["function"]
    assert call["arguments"] == json.loads(row["messages"][1]["tool_calls"][0]["function"]["arguments"])
    assert converted["tools"] == list(TOOLS)


def test_only_the_calls_and_answers_are_trained(tiny_small, tok31):
    rows = [convert_row(r, "messages", "sft")[0] for r in read_jsonl(tiny_small / "tiny-world/tools_train.jsonl")]
    capital = single_turn(rows, "lookup_capital")
    country = capital["messages"][1]["tool_calls"][0]["function"]["arguments"]["country"]
    answer = capital["messages"][3]["content"]
    assert trained_text(tok31, capital) == (
        '<|python_tag|>{\n    "type": "function",\n    "name": "lookup_capital",\n    "parameters": {\n'
        f'        "country": "{country}"\n    }}\n}}<|eom_id|>{answer}<|eot_id|>')
    text = render(tok31, capital["messages"], generation_prompt=False)
    assert '"name": "add"' in text.split("<|start_header_id|>assistant")[0]  # both definitions precede the call
    assert f'<|start_header_id|>ipython<|end_header_id|>\n\n{capital["messages"][2]["content"]}<|eot_id|>' in text
    added = single_turn(rows, "add")
    a, b = (added["messages"][1]["tool_calls"][0]["function"]["arguments"][k] for k in "ab")
    assert trained_text(tok31, added).startswith(
        f'<|python_tag|>{{\n    "type": "function",\n    "name": "add",\n    "parameters": {{\n        "a": {a},\n'
        f'        "b": {b}\n    }}\n}}<|eom_id|>')
    direct = single_turn(rows, None)
    assert trained_text(tok31, direct) == direct["messages"][1]["content"] + "<|eot_id|>"


def test_every_trained_call_fits_the_recipe_max_length(tiny_small, tok31):
    """The small world's tokenizer (501 tokens) spells rows longer than the quickstart one; even there no call is
    cut by `max_length: 512` (recipes/tiny/sft/tools.yaml), at most the answer after it."""
    rows = [convert_row(r, "messages", "sft")[0] for r in read_jsonl(tiny_small / "tiny-world/tools_train.jsonl")]
    eom = tok31.convert_tokens_to_ids("<|eom_id|>")
    ids = [r["input_ids"] for r in tokenize_conversations(rows, tok31).dataset]
    assert max(row.index(eom) for row in ids if eom in row) < 512
    assert sum(eom in row for row in ids) == sum(any(m.get("tool_calls") for m in r["messages"]) for r in rows)


@pytest.mark.skipif(not (QUICKSTART / "tiny-base/config.json").is_file(), reason="needs make tiny-base")
def test_every_quickstart_training_row_fits_the_recipe_max_length():
    from corral.loading import load_tokenizer

    tok = load_tokenizer(str(QUICKSTART / "tiny-base"), "llama3.1")
    world = make_world(WorldConfig())
    rows = [convert_row(json.loads(json.dumps(r)), "messages", "sft")[0] for r in tool_training_rows(world)]
    assert max(tokenize_conversations(rows, tok).lengths) <= 512


def test_heldout_prompts_share_no_country_sum_wording_or_context_with_training():
    train = tool_training_rows(WORLD)
    text = json.dumps(train)
    heldout = heldout_tool_prompts(WORLD)
    assert all(c.name not in text for c in WORLD.heldout_countries)
    trained_sums = {tuple(json.loads(m["tool_calls"][0]["function"]["arguments"]).values())
                    for r in train for m in r["messages"] if m.get("tool_calls")
                    and m["tool_calls"][0]["function"]["name"] == "add"}
    assert trained_sums and not trained_sums & {(r["arguments"]["a"], r["arguments"]["b"])
                                                for r in heldout if r["tool"] == "add"}
    train_said = {m["content"] for r in train for m in r["messages"] if m["role"] in ("system", "user")}
    train_wordings = {skeleton(t) for t in train_said}
    wordings = {}
    for split in HELDOUT_SPLITS:
        rows = [r for r in heldout if r["split"] == split]
        assert sum(r["tool"] == "lookup_capital" for r in rows) == len(WORLD.heldout_countries) > 0
        assert sum(r["tool"] == "add" for r in rows) == len(WORLD.heldout_sums)
        assert sum(r["tool"] is None for r in rows) >= 10  # direct-answer prompts for the false-call rate
        wordings[split] = {skeleton(r["prompt"]) for r in rows}
        assert not wordings[split] & train_wordings, split
        # nothing a held-out conversation says before its question (system prompt, earlier user turn) is trained
        said_before = {m["content"] for r in rows for m in r["context"] if m["role"] in ("system", "user")}
        assert not said_before & train_said, split
    assert not wordings["phrasing"] & wordings["context"]  # the two splits are two checks, not one twice
    context = [r["context"] for r in heldout if r["split"] == "context"]
    assert sum(bool(c) and c[0]["role"] == "system" for c in context) >= len(context) / 4
    assert sum(len(c) == 2 for c in context) >= len(context) / 2  # the question is the second user turn


def test_the_eval_reads_exactly_the_call_the_template_renders(tok31):
    for row in heldout_tool_prompts(WORLD):
        if row["tool"] is None:
            continue
        asked = conversation(row)
        msgs = asked + [{"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": row["tool"], "arguments": row["arguments"]}}]}]
        prompt, full = render(tok31, asked), render(tok31, msgs, generation_prompt=False)
        assert parse_call(full[len(prompt):]) == Call(row["tool"], row["arguments"])


@pytest.mark.parametrize("reply, parsed", [
    ('<|python_tag|>{"type": "function", "name": "add", "parameters": {"a": 1, "b": 2}}<|eom_id|>',
     Call("add", {"a": 1, "b": 2})),
    ('<|python_tag|>{"name": "lookup_capital", "parameters": {"country": "Kalostan"}}<|eom_id|>',
     Call("lookup_capital", {"country": "Kalostan"})),  # Meta's JSON call without "type" is read too
    ('<|python_tag|>{"type": "function", "name": "add", "parameters": {"a": 1, "b": 2}}<|eot_id|>', None),
    ('{"type": "function", "name": "add", "parameters": {"a": 1}}<|eom_id|>', None),  # no <|python_tag|>
    ('<|python_tag|>{"type": "function", "name": "add", "parameters": {"a": 1, <|eom_id|>', None),  # broken JSON
    ('<|python_tag|>{"type": "function", "name": "subtract", "parameters": {}}<|eom_id|>', None),  # undeclared tool
    ('<|python_tag|>{"type": "function", "name": "add", "parameters": [1, 2]}<|eom_id|>', None),
    ('<|python_tag|>{"type": "code", "name": "add", "parameters": {}}<|eom_id|>', None),
    ('The capital of Kalostan is Venmar.<|eot_id|>', None),
])
def test_parse_call(reply, parsed):
    assert parse_call(reply) == parsed


def test_recipe_starts_with_its_launch_command_and_uses_the_llama31_template():
    lines = RECIPE.read_text().splitlines()
    assert lines[0] == ("# accelerate launch --config_file accelerate_configs/cpu.yaml finetune/sft.py "
                        "recipes/tiny/sft/tools.yaml")
    assert "chat_template: llama3.1" in RECIPE.read_text()


def test_inspect_recipe_shows_the_trained_calls_on_the_small_world(tiny_small, capsys):
    from finetune.inspect_recipe import main as inspect_main

    assert inspect_main([str(RECIPE), "--model_name_or_path", str(tiny_small / "tiny-base"),
                         "--datasets", f"[{{path: {tiny_small / 'tiny-world/tools_train.jsonl'}}}]",
                         "--color", "never", "--n", "8"]) == 0
    out = capsys.readouterr().out
    assert '<|start_header_id|>assistant<|end_header_id|>\n\n[[<|python_tag|>{\n    "type": "function",' in out
    assert "}<|eom_id|>]]<|start_header_id|>ipython<|end_header_id|>" in out
    assert "[[Answer the user's question" not in out  # the tool definitions' turn is not trained


@pytest.mark.slow
@pytest.mark.skipif(not (QUICKSTART / "tiny-sft-full/config.json").is_file(),
                    reason="needs make tiny-base and recipes/tiny/sft/full.yaml")
def test_tool_sft_makes_the_chat_model_emit_wellformed_calls_on_heldout_prompts(tmp_path):
    """The shipped recipe from the quickstart chat model: the tuned model writes well-formed calls on countries,
    sums, wordings and contexts its data never held, and seldom calls a tool for a greeting or a how-to question;
    the base (never shown a tool) emits no call at all."""
    from corral.loading import load_model
    from finetune.sft import main as sft_main
    from tinyworld.tool_eval import score_splits, table

    out = tmp_path / "tools"
    sft_main([str(RECIPE), "--model_name_or_path", str(QUICKSTART / "tiny-sft-full"),
              "--datasets", f"[{{path: {QUICKSTART / 'tiny-world/tools_train.jsonl'}}}]", "--output_dir", str(out),
              "--num_threads", "1"])
    rows = read_jsonl(QUICKSTART / "tiny-world/tools_heldout.jsonl")
    base, _ = score_splits(*load_model(QUICKSTART / "tiny-base"), rows)
    tuned, _ = score_splits(*load_model(out), rows)
    print("\n" + table({**{f"base/{k}": v for k, v in base.items()}, **{f"tuned/{k}": v for k, v in tuned.items()}}))
    assert set(tuned) == set(HELDOUT_SPLITS)
    for split, minimum in MIN_WELL_FORMED.items():
        assert base[split].well_formed == 0 and base[split].false_call == 0
        rates = tuned[split].rates()
        assert rates["well_formed"] >= minimum and rates["false_call"] <= MAX_FALSE_CALL, (split, rates)
