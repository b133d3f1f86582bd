"""Every input format on hand-written rows: the exact standard row out, and the exact reason for
malformed rows; format detection; and the readers for each file type."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from corral.errors import DataError, RowError
from data_prep.formats import FORMATS, column_use, convert_row, detect_format
from data_prep.io import read_rows

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def U(content):
    return {"role": "user", "content": content}


def A(content):
    return {"role": "assistant", "content": content}


def S(content):
    return {"role": "system", "content": content}


WEATHER_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}


# ---- conversational formats -------------------------------------------------------------------


def test_messages_normalises_openai_tool_calls():
    row = {
        "messages": [
            U("Weather?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}],
            },
            {"role": "tool", "content": "3C", "name": "get_weather"},
            A("3 degrees."),
        ],
        "tools": '[{"type": "function", "function": {"name": "get_weather"}}]',
    }
    assert convert_row(row, "messages", "sft") == [{
        "messages": [
            U("Weather?"),
            {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]},
            {"role": "tool", "content": "3C", "name": "get_weather"},
            A("3 degrees."),
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
    }]


def test_sharegpt_tools_column_as_json_string_or_list():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    conv = [{"from": "human", "value": "Weather?"}, {"from": "gpt", "value": "Sunny."}]
    for value in (json.dumps(tools), tools):
        assert convert_row({"conversations": conv, "tools": value}, "sharegpt", "sft") == [
            {"messages": [U("Weather?"), A("Sunny.")], "tools": tools}]
    assert convert_row({"conversations": conv, "tools": ""}, "sharegpt", "sft") == [{"messages": [U("Weather?"), A("Sunny.")]}]


def test_sharegpt_roles_system_column_function_call_and_observation():
    row = {
        "system": "Be terse.",
        "conversations": [
            {"from": "human", "value": "Weather?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}'},
            {"from": "observation", "value": "3C"},
            {"from": "gpt", "value": "3 degrees."},
        ],
    }
    assert convert_row(row, "sharegpt", "sft") == [{
        "messages": [
            S("Be terse."),
            U("Weather?"),
            {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]},
            {"role": "tool", "content": "3C"},
            A("3 degrees."),
        ]
    }]


def test_alpaca_with_system_history_and_input():
    row = {"instruction": "Translate.", "input": "Hola", "output": "Hello", "system": "Translator.",
           "history": [["Hi", "Hey"]]}
    assert convert_row(row, "alpaca", "sft") == [
        {"messages": [S("Translator."), U("Hi"), A("Hey"), U("Translate.\n\nHola"), A("Hello")]}
    ]


def test_alpaca_empty_input_and_csv_style_blank_cells_are_absent():
    row = {"instruction": "Capital of France?", "input": "", "output": "Paris.", "system": "", "history": ""}
    assert convert_row(row, "alpaca", "sft") == [{"messages": [U("Capital of France?"), A("Paris.")]}]


def test_prompt_completion_strings_and_messages():
    assert convert_row({"prompt": "Q", "completion": "A"}, "prompt_completion", "sft") == [{"messages": [U("Q"), A("A")]}]
    row = {"prompt": [S("sys"), U("Q")], "completion": [A("A")]}
    assert convert_row(row, "prompt_completion", "sft") == [{"messages": [S("sys"), U("Q"), A("A")]}]


def test_text_passes_through():
    assert convert_row({"text": "hello world", "meta": 1}, "text", "text") == [{"text": "hello world"}]


def test_sft_rows_feed_prompt_kind_with_reference():
    row = {"messages": [S("sys"), U("2+2?"), A("4")]}
    assert convert_row(row, "messages", "prompt") == [{"prompt": [S("sys"), U("2+2?")], "reference": "4"}]


def test_prompt_only_keeps_extra_columns():
    assert convert_row({"prompt": "2+2?", "reference": "4", "id": 7}, "prompt", "prompt") == [
        {"prompt": [U("2+2?")], "reference": "4", "id": 7}
    ]


# ---- preference formats -----------------------------------------------------------------------


def test_explicit_preference_strings_stay_plain_and_margin_is_kept():
    row = {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 3}
    assert convert_row(row, "preference", "preference") == [
        {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "margin": 3.0}
    ]


def test_explicit_prompt_repeated_at_the_start_of_whole_conversations_as_in_ultrafeedback_binarized():
    """HuggingFaceH4/ultrafeedback_binarized's shape (its dataset card): `prompt` is a string and `chosen`/
    `rejected` are whole conversations starting with that prompt; the scores are further columns."""
    row = {"prompt": "Haiku about rain?", "prompt_id": "ab12",
           "chosen": [U("Haiku about rain?"), A("Soft rain on the roof")],
           "rejected": [U("Haiku about rain?"), A("No.")],
           "messages": [U("Haiku about rain?"), A("Soft rain on the roof")], "score_chosen": 8.0, "score_rejected": 2.0}
    assert convert_row(row, "preference", "preference") == [
        {"prompt": [U("Haiku about rain?")], "chosen": [A("Soft rain on the roof")], "rejected": [A("No.")]}]
    assert detect_format([row]) == "preference"
    assert column_use([row], "preference") == (["prompt_id", "messages", "score_chosen", "score_rejected"],
                                               ["score_chosen", "score_rejected"])


def test_explicit_preference_mixed_strings_and_messages_become_messages():
    row = {"prompt": "Hi?", "chosen": [A("Hello!")], "rejected": "Go away."}
    assert convert_row(row, "preference", "preference") == [
        {"prompt": [U("Hi?")], "chosen": [A("Hello!")], "rejected": [A("Go away.")]}
    ]


def test_implicit_preference_splits_shared_prefix():
    chosen = [U("a"), A("b"), U("c"), A("good")]
    rejected = [U("a"), A("b"), U("c"), A("bad")]
    assert convert_row({"chosen": chosen, "rejected": rejected}, "implicit_preference", "preference") == [
        {"prompt": [U("a"), A("b"), U("c")], "chosen": [A("good")], "rejected": [A("bad")]}
    ]


def test_hh_multi_turn_text():
    row = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: Why did the llama cross...",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: No.",
    }
    assert convert_row(row, "hh", "preference") == [{
        "prompt": [U("Hi"), A("Hello"), U("Joke?")],
        "chosen": [A("Why did the llama cross...")],
        "rejected": [A("No.")],
    }]


def test_sharegpt_pairs():
    row = {
        "conversations": [{"from": "human", "value": "Book?"}],
        "chosen": {"from": "gpt", "value": "The Hobbit."},
        "rejected": {"from": "gpt", "value": "No."},
    }
    assert convert_row(row, "sharegpt_pairs", "preference") == [
        {"prompt": [U("Book?")], "chosen": [A("The Hobbit.")], "rejected": [A("No.")]}
    ]


RATED = {"prompt": "Haiku?", "completions": [
    {"response": "meh", "score": 5},
    {"response": "best", "score": 9.5},
    {"response": "worst", "score": 1},
]}


def test_rated_best_vs_worst():
    assert convert_row(RATED, "rated", "preference") == [{"prompt": "Haiku?", "chosen": "best", "rejected": "worst"}]


def test_rated_all_pairs_with_different_scores():
    tied = {"prompt": "Q", "completions": [*RATED["completions"], {"response": "meh too", "score": 5}]}
    pairs = [(r["chosen"], r["rejected"]) for r in convert_row(tied, "rated_all_pairs", "preference")]
    assert pairs == [("best", "meh"), ("meh", "worst"), ("best", "worst"), ("best", "meh too"), ("meh too", "worst")]


def test_kto_and_preference_unpaired():
    row = {"prompt": [U("2+2?")], "completion": [A("4")], "label": True}
    assert convert_row(row, "kto", "unpaired") == [row]
    pair = {"prompt": [U("Q")], "chosen": [A("good")], "rejected": [A("bad")], "margin": 1.0}
    assert convert_row(pair, "preference", "unpaired") == [
        {"prompt": [U("Q")], "completion": [A("good")], "label": True},
        {"prompt": [U("Q")], "completion": [A("bad")], "label": False},
    ]


def test_kto_in_llamafactory_form_last_assistant_turn_is_the_judged_completion():
    row = {"messages": [U("Hi"), A("Hello"), U("2+2?"), A("5")], "label": False}
    expected = [{"prompt": [U("Hi"), A("Hello"), U("2+2?")], "completion": [A("5")], "label": False}]
    assert convert_row(row, "kto_messages", "unpaired") == expected
    assert convert_row(row, "kto", "unpaired") == expected  # --format kto reads this shape too


def test_kto_trl_standard_form_stays_plain_text():
    row = {"prompt": "The sky is", "completion": " blue.", "label": True}
    assert convert_row(row, "kto", "unpaired") == [row]


# ---- malformed rows: the exact reason ---------------------------------------------------------

MALFORMED = [
    ("alpaca", "sft", {"instruction": "x"}, "missing key 'output'"),
    ("alpaca", "sft", {"instruction": "x", "output": None}, "missing key 'output'"),
    ("alpaca", "sft", {"instruction": " ", "input": "", "output": "y"}, "empty content in turn 1"),
    ("alpaca", "sft", {"instruction": "x", "output": "y", "history": [["only one"]]},
     "history entry 1 is not a [user, assistant] pair"),
    ("messages", "sft", {"messages": [U("hi"), {"role": "bot", "content": "x"}]},
     "unknown role 'bot' (expected one of system, user, assistant, tool)"),
    ("messages", "sft", {"messages": [U("hi"), A("")]}, "empty content in turn 2"),
    ("messages", "sft", {"messages": [U("hi"), A("a"), A("b")]}, "two consecutive assistant turns at 3"),
    ("messages", "sft", {"messages": [U("hi"), A("a"), U("more?")]}, "conversation must end with an assistant turn"),
    ("messages", "sft", {"messages": [U("hi"), {"content": "x"}]}, "missing key 'role' in turn 2"),
    ("messages", "sft", {"messages": [U("hi"), {"role": "assistant", "content": None,
                                                "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]},
     "tool call arguments in turn 2 are not valid JSON"),
    ("sharegpt", "sft", {"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "x"}]},
     "unknown role 'bot' (expected one of human, user, gpt, assistant, system, function_call, observation)"),
    ("sharegpt", "sft", {"conversations": [{"from": "human"}]}, "missing key 'value' in turn 1"),
    ("sharegpt", "sft", {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}],
                         "tools": "[{oops"}, "tools is not valid JSON"),
    ("sharegpt", "sft", {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": 3}]},
     "content in turn 2 is not a string"),
    ("messages", "sft", {"messages": [{"role": "user", "content": "hi", "tool_calls": [WEATHER_CALL]}, A("x")]},
     "tool calls on a user turn at 1"),
    ("messages", "sft", {"messages": [U("hi"), {"role": "assistant", "content": None,
                                                "tool_calls": [{"function": {"arguments": "{}"}}]}]},
     "malformed tool call in turn 2 (expected a function name and arguments)"),
    ("messages", "sft", {"messages": "hi"}, "messages is not a list"),
    ("alpaca", "sft", {"instruction": "x", "output": "y", "history": "earlier"},
     "history is not a list of [user, assistant] pairs"),
    ("text", "text", {"text": ["a"]}, "text is not a string"),
    ("sharegpt", "sft", {"conversations": [{"from": "human", "value": "hi"}, {"from": "function_call", "value": "{"}]},
     "function_call in turn 2 is not valid JSON"),
    ("prompt_completion", "sft", {"prompt": "", "completion": "x"}, "missing prompt"),
    ("text", "text", {"text": "  "}, "text is empty"),
    ("preference", "preference", {"prompt": "Q", "chosen": "same", "rejected": "same"},
     "chosen and rejected are identical"),
    ("preference", "preference", {"prompt": [], "chosen": [A("a")], "rejected": [A("b")]}, "missing prompt"),
    ("preference", "preference", {"prompt": [U("Q")], "chosen": [A("")], "rejected": [A("b")]},
     "chosen: empty content in turn 1"),
    ("preference", "preference", {"prompt": [U("Q")], "chosen": [A("a")], "rejected": [U("b")]},
     "rejected: answer must start with an assistant turn"),
    ("preference", "preference", {"prompt": "Q", "rejected": "b"}, "missing key 'chosen'"),
    ("preference", "preference", {"prompt": [U("Q"), A("x")], "chosen": [A("a")], "rejected": [A("b")]},
     "prompt ends with an assistant turn"),
    ("implicit_preference", "preference",
     {"chosen": [U("Q1"), A("good")], "rejected": [U("Q2"), A("bad")]}, "prompt differs between chosen and rejected"),
    ("implicit_preference", "preference", {"chosen": [A("good")], "rejected": [A("bad")]}, "missing prompt"),
    ("implicit_preference", "preference", {"chosen": "good", "rejected": "bad"}, "missing prompt"),
    ("implicit_preference", "preference", {"chosen": [U("Q"), A("same")], "rejected": [U("Q"), A("same")]},
     "chosen and rejected are identical"),
    ("implicit_preference", "preference", {"chosen": [U("Q"), A("a")], "rejected": [U("Q")]},
     "rejected: conversation must end with an assistant turn"),
    ("hh", "preference", {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant:"},
     "rejected: empty content in turn 2"),
    ("hh", "preference", {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: bye\n\nAssistant: b"},
     "prompt differs between chosen and rejected"),
    ("sharegpt_pairs", "preference", {"conversations": [{"from": "human", "value": "Q"}],
                                      "chosen": {"from": "human", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}},
     "chosen: answer must be a gpt or function_call turn"),
    ("rated", "preference", {"prompt": "Q", "completions": [{"response": "a", "score": "abc"},
                                                            {"response": "b", "score": 1}]},
     "score is not a number: 'abc'"),
    ("rated", "preference", {"prompt": "Q", "completions": [{"response": "a", "score": 1}]},
     "need at least two completions, got 1"),
    ("rated", "preference", {"prompt": "Q", "completions": [{"response": "a", "score": 2}, {"response": "b", "score": 2}]},
     "all completions have the same score"),
    ("rated", "preference", {"prompt": "Q", "completions": [{"response": "a", "score": 2}, {"score": 1}]},
     "missing key 'response' in completion 2"),
    ("kto", "unpaired", {"prompt": "Q", "completion": "a", "label": "false"}, "label is not a boolean: 'false'"),
    ("kto", "unpaired", {"prompt": "Q", "completion": "a"}, "missing key 'label'"),
    ("prompt", "prompt", {"prompt": [U("Q"), A("a")]}, "prompt ends with an assistant turn"),
    ("messages", "prompt", {"messages": [A("only an answer")]}, "missing prompt"),
    # assistant-only conversations would teach the model to talk unprompted
    ("messages", "sft", {"messages": [A("I am a bot.")]}, "no user turn"),
    ("messages", "sft", {"messages": [S("Be nice."), A("Hello!")]}, "no user turn"),
    ("sharegpt", "sft", {"conversations": [{"from": "gpt", "value": "Hi"}]}, "no user turn"),
    ("messages", "prompt", {"messages": [S("Be nice."), A("Hello!")]}, "no user turn"),
    ("prompt", "prompt", {"prompt": [S("Be nice.")]}, "no user turn"),
    ("preference", "preference", {"prompt": [S("sys")], "chosen": [A("a")], "rejected": [A("b")]}, "no user turn"),
    ("kto_messages", "unpaired", {"messages": [S("sys"), A("a")], "label": True}, "no user turn"),
    # KTO in LLaMA-Factory's form
    ("kto_messages", "unpaired", {"messages": [U("Q"), A("a")], "label": 1}, "label is not a boolean: 1"),
    ("kto_messages", "unpaired", {"messages": [U("Q"), A("a")], "label": "true"}, "label is not a boolean: 'true'"),
    ("kto_messages", "unpaired", {"messages": [U("Q"), A("a")]}, "missing key 'label'"),
    ("kto_messages", "unpaired", {"messages": [U("Q"), A("a"), U("more?")], "label": True},
     "conversation must end with an assistant turn"),
    ("kto_messages", "unpaired", {"messages": [A("a")], "label": True}, "missing prompt"),
    ("kto_messages", "unpaired", {"messages": [U("Q"), A("a"), A("b")], "label": True},
     "two consecutive assistant turns at 3"),
    ("kto", "unpaired", {"prompt": "Q", "label": True}, "missing key 'completion'"),
    ("preference", "preference", {"prompt": "Other?", "chosen": [U("Q"), A("a")], "rejected": [U("Q"), A("b")]},
     "prompt differs from the conversation in chosen and rejected"),
    ("preference", "preference", {"prompt": "Q", "chosen": [U("Q"), A("a")], "rejected": [U("R"), A("b")]},
     "prompt differs between chosen and rejected"),
]


@pytest.mark.parametrize("format, kind, row, reason", MALFORMED, ids=[m[3] for m in MALFORMED])
def test_malformed_rows_give_exact_reason(format, kind, row, reason):
    with pytest.raises(RowError) as e:
        convert_row(row, format, kind)
    assert e.value.reason == reason


def test_format_that_cannot_feed_kind():
    with pytest.raises(ValueError, match=r"^format 'alpaca' cannot feed kind 'preference' \(it can feed: sft, prompt\)$"):
        convert_row({"instruction": "x", "output": "y"}, "alpaca", "preference")


# ---- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.iterdir()), ids=lambda p: p.name)
def test_fixture_files_are_detected_and_convert(path):
    rows = [row for _, row in read_rows(path)]
    name = path.name.split(".")[0]
    assert detect_format(rows, str(path)) == name
    gives = FORMATS[name].gives
    assert all(convert_row(row, name, gives) for row in rows)


def test_detection_follows_the_majority_so_one_bad_row_does_not_change_it():
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c"}, {"instruction": "d", "output": "e"}]
    assert detect_format(rows) == "alpaca"


def test_detection_picks_the_most_specific_format_not_the_majority():
    """A row lacking `rejected` also has the keys of `prompt`; reading the file as prompts would drop
    every answer, so the preference format wins and the odd row is named."""
    rows = [{"prompt": "Q1", "chosen": "a", "rejected": "b"}, {"prompt": "Q2", "chosen": "c"},
            {"prompt": "Q3", "chosen": "d", "rejected": "e"}]
    assert detect_format(rows, "p.jsonl", strict=False) == "preference"
    with pytest.raises(DataError) as e:
        detect_format(rows, "p.jsonl", [1, 3, 4])
    assert str(e.value) == ("p.jsonl:3: rows disagree about the format: this row lacks 'rejected' and reads as "
                            "'prompt', while line 1 reads as 'preference'")


def test_detection_names_the_first_disagreeing_row_even_before_the_better_match():
    rows = [{"messages": [U("a"), A("b")]}, {"messages": [U("c"), A("d")], "label": True}]
    with pytest.raises(DataError) as e:
        detect_format(rows, "k.jsonl")
    assert str(e.value) == ("k.jsonl:1: rows disagree about the format: this row lacks 'label' and reads as "
                            "'messages', while line 2 reads as 'kto_messages'")


def test_detection_of_hh_with_a_row_that_is_not_hh_text():
    rows = [{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"},
            {"chosen": "plain", "rejected": "text"}]
    with pytest.raises(DataError, match=r"^<rows>:2: rows disagree about the format: this row does not look like "
                                        r"'hh' data and reads as 'implicit_preference', while line 1 reads as 'hh'$"):
        detect_format(rows)


def test_llamafactory_kto_rows_are_detected_as_kto_not_sft():
    assert detect_format([{"messages": [U("a"), A("b")], "label": True}]) == "kto_messages"
    assert detect_format([{"prompt": "a", "completion": "b", "label": False}]) == "kto"


def test_column_use_separates_meaningful_columns_from_bookkeeping():
    rows = [{"messages": [U("a"), A("b")], "id": 1, "score": 0.5}, {"messages": [U("c"), A("d")], "source": None}]
    assert column_use(rows, "messages") == (["id", "score"], ["score"])  # a column null in every row is absent
    assert column_use([{"messages": [], "label": True}], "messages") == (["label"], ["label"])
    assert column_use([{"prompt": "p", "reference": "4", "level": 2}], "prompt") == ([], [])  # prompt keeps all
    assert column_use([{"instruction": "i", "output": "o", "system": "s", "category": "qa"}], "alpaca") == (
        ["category"], [])


def test_detection_tells_hh_text_from_plain_implicit_pairs():
    assert detect_format([{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "x"}]) == "hh"
    assert detect_format([{"chosen": [U("a"), A("b")], "rejected": [U("a"), A("c")]}]) == "implicit_preference"


def test_detection_failure_message():
    with pytest.raises(DataError) as e:
        detect_format([{"foo": 1, "bar": 2}], "data/x.jsonl")
    assert str(e.value) == (
        "data/x.jsonl: no known format matches keys ['bar', 'foo'] (tried: sharegpt_pairs, preference, hh, "
        "implicit_preference, rated, kto, kto_messages, prompt_completion, messages, sharegpt, alpaca, text, prompt); "
        "set format: in the recipe"
    )


# ---- readers ----------------------------------------------------------------------------------

ROWS = [{"text": "one"}, {"text": "two"}]


def _write(path: Path, kind: str) -> Path:
    if kind == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    elif kind == "json":
        path.write_text(json.dumps(ROWS))
    elif kind == "json-lines-named-json":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif kind == "gz":
        path.write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in ROWS)).encode()))
    elif kind == "csv":
        path.write_text("text\none\ntwo\n")
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ROWS), path)
    return path


@pytest.mark.parametrize("name, kind, numbers", [
    ("x.jsonl", "jsonl", [1, 2]),
    ("x.json", "json", [1, 2]),
    ("x.json", "json-lines-named-json", [1, 2]),
    ("x.jsonl.gz", "gz", [1, 2]),
    ("x.csv", "csv", [2, 3]),  # line numbers: the header is line 1
    ("x.parquet", "parquet", [1, 2]),
])
def test_read_rows_file_types(tmp_path, name, kind, numbers):
    assert list(read_rows(_write(tmp_path / name, kind))) == list(zip(numbers, ROWS))


def test_read_rows_save_to_disk_directory_and_split(tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_list(ROWS).save_to_disk(tmp_path / "single")
    assert list(read_rows(tmp_path / "single")) == list(zip([1, 2], ROWS))
    DatasetDict({"train": Dataset.from_list(ROWS[:1]), "test": Dataset.from_list(ROWS[1:])}).save_to_disk(tmp_path / "dd")
    assert list(read_rows(tmp_path / "dd", split="test")) == [(1, ROWS[1])]
    with pytest.raises(DataError, match=r"dd: no split 'dev' \(available: train, test\)$"):
        read_rows(tmp_path / "dd", split="dev")


def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n')
    assert [n for n, _ in read_rows(path)] == [1, 3]


def test_non_utf8_line_is_reported_with_its_line_number(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"x\.jsonl:2: line is not valid UTF-8 \(byte 0xe9 at column 14\)$"):
        list(read_rows(path))
    bad = []
    assert list(read_rows(path, bad_lines=bad)) == [(1, {"text": "a"})]
    assert bad == [(2, "line is not valid UTF-8")]


def test_invalid_json_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError, match=r"x\.jsonl:2: line is not valid JSON \(Expecting value at column 10\)$"):
        list(read_rows(path))


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(DataError, match=r"^data/nope\.jsonl: file not found$"):
        read_rows("data/nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match=r"x\.txt: unsupported file type"):
        read_rows(tmp_path / "x.txt")


def test_hub_id_is_tried_only_when_no_local_path_and_fails_in_one_line(monkeypatch):
    import datasets

    calls = []

    def offline(name, split):
        calls.append((name, split))
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"^owner/name: not a local file and the Hub is unreachable \(Couldn't reach"):
        read_rows("owner/name")
    assert calls == [("owner/name", "train")]


def test_llama31_ipython_role_is_read_as_tool():
    row = {"messages": [U("Weather?"), {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]},
                        {"role": "ipython", "content": "3C"}, A("3 degrees.")]}
    assert convert_row(row, "messages", "sft")[0]["messages"][2] == {"role": "tool", "content": "3C"}


def test_arrow_null_fill_inside_tool_call_arguments_and_tool_schemas_is_dropped(tmp_path):
    """Arrow gives every struct in a column every key seen in it, as null; a template would render them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def row(name, arg, value, prop):
        call = {"type": "function", "function": {"name": name, "arguments": {arg: value}}}
        schema = {"type": "function", "function": {"name": name, "parameters": {
            "type": "object", "properties": {arg: prop}, **({"required": [arg]} if arg == "city" else {})}}}
        return {"messages": [U("?"), {"role": "assistant", "content": None, "tool_calls": [call]},
                             {"role": "tool", "content": "ok"}, A("done")], "tools": [schema]}

    rows = [row("get_weather", "city", "Oslo", {"type": "string"}),
            row("get_time", "tz", "UTC", {"type": "string", "enum": ["UTC"]})]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    got = [convert_row(r, "messages", "sft")[0] for _, r in read_rows(tmp_path / "x.parquet")]
    assert got == [convert_row(r, "messages", "sft")[0] for r in rows]
    assert got[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"tz": "UTC"}
