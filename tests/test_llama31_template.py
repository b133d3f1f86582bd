"""`chat_template: llama3.1`: Meta's documented Llama 3.1 prompt format byte for byte, training masks that
cover exactly what the assistant writes (tool calls included), and tool-call data training out of the box.

The expected strings are the "Input Prompt Format" and "Model Response Format" blocks of Meta's
github.com/meta-llama/llama-models models/llama3_1/prompt_format.md (commit 8d29d93f, the file's last
change), copied verbatim by script; each example is the prompt followed by the response.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from corral.chat_templates import LLAMA31_CHAT_TEMPLATE, LLAMA31_TRAINING_CHAT_TEMPLATE
from data_prep.formats import convert_row
from finetune.sft_data import tokenize_conversations
from realshape.tokenizers import derive

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "data"

# --- Meta's examples (prompt_format.md, verbatim) ---------------------------------------------------
CHAT_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "You are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "Answer who are you in the form of jeopardy?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
)
CHAT_RESPONSE = (
    "Here's my response\n"
    "\n"
    "\"What is a helpful assistant?\"<|eot_id|>"
)
BUILTIN_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "Environment: ipython\n"
    "Tools: brave_search, wolfram_alpha\n"
    "Cutting Knowledge Date: December 2023\n"
    "Today Date: 21 September 2024\n"
    "\n"
    "You are a helpful assistant.\n"
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "Search the web for the latest price of 1oz gold?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
)
BUILTIN_RESPONSE = (
    "<|python_tag|>brave_search.call(query=\"latest price of 1oz gold\")<|eom_id|>"
)
CODE_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "Environment: ipython<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "Write code to check if number is prime, use that to see if the number 7 is prime<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
)
CODE_RESPONSE = (
    "<|python_tag|>def is_prime(n):\n"
    "    if n <= 1\n"
    "        return False\n"
    "    for i in range(2, int(n**0.5) + 1):\n"
    "        if n % i == 0:\n"
    "            return False\n"
    "    return True\n"
    "\n"
    "print(is_prime(7))  # Output: True<|eom_id|>"
)
FULL_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "Environment: ipython\n"
    "Tools: brave_search, wolfram_alpha\n"
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "What is the 100th decimal of pi?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
    "<|python_tag|>wolfram_alpha.call(query=\"100th decimal of pi\")<|eom_id|><|start_header_id|>ipython<|end_header_id|>\n"
    "\n"
    "\n"
    "{\n"
    "    \"queryresult\": {\n"
    "        \"success\": true,\n"
    "        \"inputstring\": \"100th decimal of pi\",\n"
    "        \"pods\": [\n"
    "            {\n"
    "                \"title\": \"Input interpretation\",\n"
    "                \"subpods\": [\n"
    "                    {\n"
    "                        \"title\": \"\",\n"
    "                        \"plaintext\": \"100th digit | π\"\n"
    "                    }\n"
    "                ]\n"
    "            },\n"
    "            {\n"
    "                \"title\": \"Nearby digits\",\n"
    "                \"subpods\": [\n"
    "                    {\n"
    "                        \"title\": \"\",\n"
    "                        \"plaintext\": \"...86208998628034825342117067982148086513282306647093...\"\n"
    "                    }\n"
    "                ]\n"
    "            },\n"
    "            {\n"
    "                \"title\": \"Result\",\n"
    "                \"primary\": true,\n"
    "                \"subpods\": [\n"
    "                    {\n"
    "                        \"title\": \"\",\n"
    "                        \"plaintext\": \"7\"\n"
    "                    }\n"
    "                ]\n"
    "            }\n"
    "        ]\n"
    "    }\n"
    "}\n"
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
)
FULL_RESPONSE = (
    "The 100th decimal of pi is 7.<|eot_id|>"
)
JSON_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "Environment: ipython\n"
    "\n"
    "Cutting Knowledge Date: December 2023\n"
    "Today Date: 21 September 2024\n"
    "\n"
    "You are a helpful assistant.\n"
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "Answer the user's question by making use of the following functions if needed.\n"
    "If none of the function can be used, please say so.\n"
    "Here is a list of functions in JSON format:\n"
    "{\n"
    "    \"type\": \"function\",\n"
    "    \"function\": {\n"
    "        \"name\": \"trending_songs\",\n"
    "        \"description\": \"Returns the trending songs on a Music site\",\n"
    "        \"parameters\": {\n"
    "            \"type\": \"object\",\n"
    "            \"properties\": [\n"
    "                {\n"
    "                    \"n\": {\n"
    "                        \"type\": \"object\",\n"
    "                        \"description\": \"The number of songs to return\"\n"
    "                    }\n"
    "                },\n"
    "                {\n"
    "                    \"genre\": {\n"
    "                        \"type\": \"object\",\n"
    "                        \"description\": \"The genre of the songs to return\"\n"
    "                    }\n"
    "                }\n"
    "            ],\n"
    "            \"required\": [\"n\"]\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "Return function calls in JSON format.<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "Use tools to get latest trending songs<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
)
JSON_RESPONSE = (
    "<|python_tag|>{\n"
    "    \"type\": \"function\",\n"
    "    \"name\": \"trending_songs\",\n"
    "    \"parameters\": {\n"
    "        \"n\": \"10\",\n"
    "        \"genre\": \"all\"\n"
    "    }\n"
    "}<|eom_id|>"
)
FUNCTION_PROMPT = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "Environment: ipython\n"
    "\n"
    "Cutting Knowledge Date: December 2023\n"
    "Today Date: 21 September 2024\n"
    "\n"
    "You are a helpful assistant.\n"
    "<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "You have access to the following functions:\n"
    "\n"
    "Use the function 'trending_songs' to 'Returns the trending songs on a Music site':\n"
    "{\"name\": \"trending_songs\", \"description\": \"Returns the trending songs on a Music site\", \"parameters\": {\"genre\": {\"description\": \"The genre of the songs to return\", \"param_type\": \"str\", \"required\": false}, \"n\": {\"description\": \"The number of songs to return\", \"param_type\": \"int\", \"required\": true}}}\n"
    "\n"
    "Think very carefully before calling functions.\n"
    "If you choose to call a function ONLY reply in the following format with no prefix or suffix:\n"
    "\n"
    "<function=example_function_name>{\"example_name\": \"example_value\"}</function>\n"
    "\n"
    "Reminder:\n"
    "- If looking for real time information use relevant functions before falling back to brave_search\n"
    "- Function calls MUST follow the specified format, start with <function= and end with </function>\n"
    "- Required parameters MUST be specified\n"
    "- Only call one function at a time\n"
    "- Put the entire function call reply on one line<|eot_id|><|start_header_id|>user<|end_header_id|>\n"
    "\n"
    "Use tools to get latest trending songs<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
)
FUNCTION_RESPONSE = (
    "<function=trending_songs>{\"n\": 10}</function><|eot_id|>"
)


# --- the conversations behind them ----------------------------------------------------------------
def user(text):
    return {"role": "user", "content": text}


def call(name, **arguments):
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": {"name": name, "arguments": arguments}}]}


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TRENDING = json.loads(between(JSON_PROMPT, "JSON format:\n", "\n\nReturn"))
WOLFRAM_RESULT = between(FULL_PROMPT, "<|start_header_id|>ipython<|end_header_id|>\n\n", "<|eot_id|>")
CODE = between(CODE_RESPONSE, "<|python_tag|>", "<|eom_id|>")
DATE = {"date_string": "21 September 2024"}
BUILTINS = {"builtin_tools": ["brave_search", "wolfram_alpha"]}

# name: (messages before the answer, the answer, template variables, the documented prompt, response)
EXAMPLES = {
    "chat": ([{"role": "system", "content": "You are a helpful assistant"},
              user("Answer who are you in the form of jeopardy?")],
             {"role": "assistant", "content": 'Here\'s my response\n\n"What is a helpful assistant?"'},
             {}, CHAT_PROMPT, CHAT_RESPONSE),
    "builtin_tool_call": ([SYSTEM, user("Search the web for the latest price of 1oz gold?")],
                          call("brave_search", query="latest price of 1oz gold"),
                          {**BUILTINS, **DATE}, BUILTIN_PROMPT, BUILTIN_RESPONSE),
    "code_interpreter": ([{"role": "system", "content": "Environment: ipython"},
                          user("Write code to check if number is prime, use that to see if the number 7 is prime")],
                         call("code_interpreter", code=CODE), {}, CODE_PROMPT, CODE_RESPONSE),
    "builtin_full_interaction": ([user("What is the 100th decimal of pi?"),
                                  call("wolfram_alpha", query="100th decimal of pi"),
                                  {"role": "ipython", "content": WOLFRAM_RESULT}],
                                 {"role": "assistant", "content": "The 100th decimal of pi is 7."},
                                 BUILTINS, FULL_PROMPT, FULL_RESPONSE),
    "json_tool_calling": ([SYSTEM, user("Use tools to get latest trending songs")],
                          call("trending_songs", n="10", genre="all"),
                          {"tools": [TRENDING], **DATE}, JSON_PROMPT, JSON_RESPONSE),
    "function_tag": ([SYSTEM, user(between(FUNCTION_PROMPT, "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>")),
                      user("Use tools to get latest trending songs")],
                     {"role": "assistant", "content": '<function=trending_songs>{"n": 10}</function>'},
                     {"builtin_tools": ["code_interpreter"], **DATE}, FUNCTION_PROMPT, FUNCTION_RESPONSE),
}
# The one place Meta's document is not machine output: its tool definition writes `"required": ["n"]` on
# one line, where JSON with indent 4 (the template's `tojson(indent=4)`) breaks the list over three lines.
JSON_LIST_LINE = ('"required": ["n"]', '"required": [\n                "n"\n            ]')


def documented(text: str) -> str:
    return text.replace(*JSON_LIST_LINE)


@pytest.fixture(scope="module")
def tok31(real_tokenizer_files, tmp_path_factory):
    return AutoTokenizer.from_pretrained(derive("llama3.1-base", tmp_path_factory.mktemp("tok31"), real_tokenizer_files))


def render(tok, messages, template=LLAMA31_CHAT_TEMPLATE, **kwargs) -> str:
    return tok.apply_chat_template(messages, tokenize=False, chat_template=template, **kwargs)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_renders_meta_documented_prompt_and_response_byte_for_byte(tok31, name):
    messages, answer, variables, prompt, response = EXAMPLES[name]
    assert render(tok31, messages, add_generation_prompt=True, **variables) == documented(prompt)
    assert render(tok31, messages + [answer], **variables) == documented(prompt + response)
    # the training twin renders the same bytes; only the loss mask differs
    assert render(tok31, messages + [answer], LLAMA31_TRAINING_CHAT_TEMPLATE, **variables) == documented(prompt + response)


def test_only_documented_deviation_is_json_list_layout():
    assert JSON_PROMPT.count(JSON_LIST_LINE[0]) == 1
    assert all(JSON_LIST_LINE[0] not in p for name, (_, _, _, p, _) in EXAMPLES.items() if name != "json_tool_calling")


def trained_text(tok, row) -> str:
    enc = tokenize_conversations([row], tok).dataset[0]
    return tok.decode([i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m])


# A training row carries messages and tools; brave_search/wolfram_alpha calls need the template variable
# builtin_tools to render as name.call(...), so those two examples are not training rows. date_string only
# changes the system turn, which is never trained.
@pytest.mark.parametrize("name", ["chat", "code_interpreter", "json_tool_calling", "function_tag"])
def test_loss_mask_covers_exactly_what_the_assistant_writes(tok31, name):
    messages, answer, _, prompt, response = EXAMPLES[name]
    tok31.chat_template = LLAMA31_CHAT_TEMPLATE
    variables = EXAMPLES[name][2]
    row = {"messages": messages + [answer], **({"tools": variables["tools"]} if "tools" in variables else {})}
    answers = [m for m in row["messages"] if m["role"] == "assistant"]
    assert trained_text(tok31, row) == "".join(
        documented(response) if m is answer else between(prompt, "<|start_header_id|>assistant<|end_header_id|>\n\n",
                                                         "<|start_header_id|>") for m in answers)


def test_glaive_sharegpt_and_openai_tool_rows_train_out_of_the_box(tok31):
    """Both fixture formats convert to tool_calls/tool messages; the llama3.1 template renders every call and
    tool definition (finetune.sft_data.check_tools_rendered passes) and trains the call, its <|eom_id|>,
    and the final answer only."""
    tok31.chat_template = LLAMA31_CHAT_TEMPLATE
    glaive = convert_row(json.loads((FIXTURES / "sharegpt.jsonl").read_text().splitlines()[1]), "sharegpt", "sft")[0]
    openai = convert_row(json.loads((FIXTURES / "messages.jsonl").read_text().splitlines()[1]), "messages", "sft")[0]
    call_json = '<|python_tag|>{\n    "type": "function",\n    "name": "get_weather",\n    "parameters": {\n        "city": "Oslo"\n    }\n}<|eom_id|>'
    assert trained_text(tok31, glaive) == call_json + "It is 3 degrees C in Oslo.<|eot_id|>"
    assert trained_text(tok31, openai) == call_json + "3 degrees C.<|eot_id|>"
    text = render(tok31, glaive["messages"], tools=glaive["tools"])
    assert '"name": "get_weather"' in text.split("<|start_header_id|>assistant")[0]  # the definition, before any call
    assert '<|start_header_id|>ipython<|end_header_id|>\n\n{"temp_c": 3}<|eot_id|>' in text


def test_inspect_recipe_shows_the_trained_tool_call_spans(real_shaped, capsys):
    from finetune.inspect_recipe import main as inspect_main

    recipe = REPO / "recipes/llama3.1-8b/sft/tools.yaml"
    assert inspect_main([str(recipe), "--model_name_or_path", str(real_shaped / "llama3.1-8b-base"),
                         "--datasets", f"[{{path: {FIXTURES / 'sharegpt.jsonl'}}}]", "--test_split_size", "0",
                         "--color", "never", "--n", "2", "--bf16", "false", "--use_cpu", "true"]) == 0
    out = capsys.readouterr().out
    assert ('<|start_header_id|>assistant<|end_header_id|>\n\n[[<|python_tag|>{\n    "type": "function",\n'
            '    "name": "get_weather",\n    "parameters": {\n        "city": "Oslo"\n    }\n}<|eom_id|>]]'
            '<|start_header_id|>ipython<|end_header_id|>\n\n{"temp_c": 3}<|eot_id|>') in out
    assert "[[It is 3 degrees C in Oslo.<|eot_id|>]]" in out


@pytest.mark.parametrize("name", ["llamafactory_glaive_toolcall_en_demo.json", "llamafactory_glaive_toolcall_zh_demo.json"])
def test_every_real_glaive_row_trains_its_tool_calls(tok31, name):
    """LLaMA-Factory's Glaive demo rows (tests/fixtures/real/, see SOURCES.md there): every row converts,
    renders every call and tool definition, and trains each call as <|python_tag|>{...}<|eom_id|>."""
    from data_prep.io import read_rows

    tok31.chat_template = LLAMA31_CHAT_TEMPLATE
    rows = [convert_row(raw, "sharegpt", "sft")[0] for _, raw in read_rows(REPO / "tests/fixtures/real" / name)]
    encoded = tokenize_conversations(rows, tok31).dataset  # check_tools_rendered runs on every row
    python_tag, eom = tok31.convert_tokens_to_ids(["<|python_tag|>", "<|eom_id|>"])
    calls = sum(len(m.get("tool_calls") or []) for row in rows for m in row["messages"])
    trained = [i for enc in encoded for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert len(rows) == 20 and calls > 0
    assert trained.count(eom) == sum(1 for row in rows for m in row["messages"] if m.get("tool_calls"))
    assert trained.count(python_tag) == trained.count(eom)
