"""Mixing sources: weights, dedup, test split, bad-row policy, system prompts, report, determinism."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from corral.errors import CorralDataError, DataError
from data_prep.mixture import DatasetSpec, load_mixture, mix_rows


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def alpaca(i: int, prefix: str = "q") -> dict:
    return {"instruction": f"{prefix}{i}", "output": f"answer {i}"}


def sharegpt(i: int, prefix: str = "s") -> dict:
    return {"conversations": [{"from": "human", "value": f"{prefix}{i}"}, {"from": "gpt", "value": f"answer {i}"}]}


def question(row: dict) -> str:
    return next(m["content"] for m in row["messages"] if m["role"] == "user")


@pytest.fixture
def two_sources(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [alpaca(i) for i in range(10)])
    b = write_jsonl(tmp_path / "b.jsonl", [sharegpt(i) for i in range(10)])
    return a, b


def test_weights_half_and_double_give_expected_counts_deterministically(two_sources):
    a, b = two_sources
    specs = [DatasetSpec(a, weight=0.5), DatasetSpec(b, weight=2.0)]
    first = mix_rows(specs, "sft", seed=3)
    assert [s.train for s in first.report.sources] == [5, 20]
    assert [s.format for s in first.report.sources] == ["alpaca", "sharegpt"]
    qs = [question(r) for r in first.train]
    assert len(set(qs[:5])) == 5 and all(q.startswith("q") for q in qs[:5])
    assert sorted(qs[5:]) == sorted([f"s{i}" for i in range(10)] * 2)

    again = mix_rows(specs, "sft", seed=3)
    assert again.train == first.train and again.report.fingerprint == first.report.fingerprint
    other = mix_rows(specs, "sft", seed=4)
    assert [question(r) for r in other.train[:5]] != qs[:5]


def test_fractional_upsampling(two_sources):
    a, _ = two_sources
    mixed = mix_rows([DatasetSpec(a, weight=1.5)], "sft")
    assert mixed.report.sources[0].train == 15
    assert len({question(r) for r in mixed.train[10:]}) == 5  # the extra half is sampled without replacement


def test_dedup_across_and_within_sources_before_weighting(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [alpaca(0), alpaca(1), alpaca(1)])
    b = write_jsonl(tmp_path / "b.jsonl", [
        {"messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "answer 0"}]},
        {"messages": [{"role": "user", "content": "new"}, {"role": "assistant", "content": "x"}]},
    ])
    mixed = mix_rows([DatasetSpec(a, weight=3.0), DatasetSpec(b)], "sft")
    assert [s.duplicates for s in mixed.report.sources] == [1, 1]
    assert [s.train for s in mixed.report.sources] == [6, 1]  # 2 unique rows x 3, not deduplicated again
    assert len(mix_rows([DatasetSpec(a), DatasetSpec(b)], "sft", dedup=False).train) == 5


def test_test_split_is_held_out_before_weighting(two_sources):
    a, b = two_sources
    specs = [DatasetSpec(a), DatasetSpec(b, weight=2.0)]
    mixed = mix_rows(specs, "sft", test_split_size=0.25, seed=1)
    assert len(mixed.test) == 5
    assert sum(s.test for s in mixed.report.sources) == 5
    train_questions = {question(r) for r in mixed.train}
    assert not train_questions & {question(r) for r in mixed.test}
    assert len(mixed.train) == sum(s.train for s in mixed.report.sources)
    assert len(mix_rows(specs, "sft", test_split_size=3, seed=1).test) == 3
    with pytest.raises(CorralDataError, match=r"^test_split_size 20 leaves no training rows \(20 unique rows\)$"):
        mix_rows(specs, "sft", test_split_size=20)


def test_bad_row_error_names_file_and_row(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [alpaca(0), {"instruction": "x"}])
    with pytest.raises(DataError, match=r"a\.jsonl:2: missing key 'output' \(on_bad_rows: skip drops and counts such rows\)$"):
        mix_rows([DatasetSpec(a)], "sft")


def test_skip_counts_reasons_and_logs_one_line_per_source(tmp_path, caplog):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"".join([
        json.dumps(alpaca(0)).encode() + b"\n",
        b'{"instruction": "x"}\n',
        b'{"instruction": "y"}\n',
        b'{"instruction": "", "output": "z"}\n',
        b"not json\n",
    ]))
    with caplog.at_level(logging.WARNING, logger="data_prep.mixture"):
        mixed = mix_rows([DatasetSpec(str(path))], "sft", on_bad_rows="skip")
    report = mixed.report.sources[0]
    assert (report.rows_read, report.train) == (5, 1)
    assert dict(report.rejected) == {
        "missing key 'output'": 2, "empty content in turn N": 1, "line is not valid JSON": 1,
    }
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipped 4 (missing key 'output': 2, line is not valid JSON: 1, empty content in turn N: 1)"
    ]


def test_kind_decides_which_formats_are_valid(two_sources):
    a, _ = two_sources
    with pytest.raises(DataError, match=r"a\.jsonl: format 'alpaca' cannot feed kind 'preference' \(it can feed: sft, prompt\)$"):
        mix_rows([DatasetSpec(a)], "preference")


def test_detection_failure_names_the_file(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"foo": 1, "bar": 2}])
    with pytest.raises(DataError, match=r"x\.jsonl: no known format matches keys \['bar', 'foo'\] \(tried: .*\); set format: in the recipe$"):
        mix_rows([DatasetSpec(path)], "sft")


def test_columns_rename_and_system_prompt(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [
        {"question": "hi", "answer": "hello"},
        {"question": "hey", "answer": "yo", "system": "Custom."},
    ])
    spec = DatasetSpec(path, columns={"question": "instruction", "answer": "output"}, system_prompt="Be kind.")
    rows = mix_rows([spec], "sft").train
    assert [r["messages"][0] for r in rows] == [
        {"role": "system", "content": "Be kind."}, {"role": "system", "content": "Custom."},
    ]


def test_plain_and_chat_preference_rows_do_not_mix(tmp_path):
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": "b"}])
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"prompt": "Q", "chosen": [{"role": "assistant", "content": "a"}],
                                                  "rejected": "b"}])
    with pytest.raises(DataError, match=r"^cannot mix plain-text and conversational preference rows \(.*plain\.jsonl:1 "
                                        r"is plain text, .*chat\.jsonl:1 is conversational\)"):
        mix_rows([DatasetSpec(plain), DatasetSpec(chat)], "preference")


def test_spec_checks():
    with pytest.raises(DataError, match=r"^x\.jsonl: weight must be a number >= 0, got -1$"):
        DatasetSpec("x.jsonl", weight=-1)
    with pytest.raises(DataError, match=r"^x\.jsonl: unknown format 'alpacca' \(expected auto or one of "):
        DatasetSpec("x.jsonl", format="alpacca")


def test_base_dir_resolves_relative_paths(tmp_path):
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "a.jsonl", [alpaca(0)])
    assert len(mix_rows([DatasetSpec("data/a.jsonl")], "sft", base_dir=tmp_path).train) == 1


def test_load_mixture_datasets_read_back_exactly_and_report(tmp_path):
    tool_row = {"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "3C"},
        {"role": "assistant", "content": "3 degrees."},
    ]}
    plain_row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    a = write_jsonl(tmp_path / "a.jsonl", [tool_row, plain_row, alpaca(0), alpaca(1)])
    result = load_mixture([DatasetSpec(a, format="messages")], "sft", on_bad_rows="skip", test_split_size=1, seed=0)
    assert len(result.train) == 1 and len(result.test) == 1  # the two alpaca rows were skipped as malformed
    assert sorted([*result.train, *result.test], key=json.dumps) == sorted([plain_row, tool_row], key=json.dumps)
    lines = result.report.summary_lines()
    assert lines[0] == (
        f"{a} (messages -> sft): read 4, rejected 2 (missing key 'messages': 2), duplicates 0, test 1, "
        "train 1 (weight 1)"
    )
    assert lines[1].startswith("sft mixture: train 1 rows, test 1 rows from 1 source(s) (fingerprint ")
    assert load_mixture([DatasetSpec(a, format="messages")], "sft", on_bad_rows="skip").test is None


def test_parquet_null_filled_message_keys_are_read_as_absent(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "w?"}, {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "content": "ok", "name": "f"}, {"role": "assistant", "content": "done"}]},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")  # Arrow adds tool_calls/name: null everywhere
    out = mix_rows([DatasetSpec(str(tmp_path / "x.parquet"))], "sft").train
    assert out[0] == rows[0]
    assert out[1]["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {}}}]}


def test_empty_source_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [])
    with pytest.raises(DataError, match=r"x\.jsonl: no rows$"):
        mix_rows([DatasetSpec(path)], "sft")


def test_test_split_size_count_may_arrive_as_float(two_sources):
    a, b = two_sources  # recipes type test_split_size as float, so `test_split_size: 3` arrives as 3.0
    assert len(mix_rows([DatasetSpec(a), DatasetSpec(b)], "sft", test_split_size=3.0).test) == 3
    with pytest.raises(CorralDataError, match=r"^test_split_size must be a fraction in \[0, 1\) or a whole number "
                                              r"of rows, got 2\.5$"):
        mix_rows([DatasetSpec(a)], "sft", test_split_size=2.5)


def test_report_as_dict_names_detected_formats(two_sources):
    a, b = two_sources
    report = mix_rows([DatasetSpec(a, weight=0.5), DatasetSpec(b)], "sft").report.as_dict()
    assert [(s["path"], s["format"], s["train"]) for s in report["sources"]] == [(a, "alpaca", 5), (b, "sharegpt", 10)]
    assert report["kind"] == "sft" and report["fingerprint"]
    json.dumps(report)


# ---- columns that carry meaning, disagreeing rows -------------------------------------------------


def chat(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def test_a_meaningful_column_the_format_does_not_read_stops_the_mixture(tmp_path):
    path = write_jsonl(tmp_path / "k.jsonl", [{"messages": chat("Q", "bad answer"), "label": False}])
    with pytest.raises(DataError) as e:
        mix_rows([DatasetSpec(path, format="messages")], "sft")
    assert str(e.value) == (
        f"{path}: column 'label' carries meaning but format 'messages' does not read it (formats that read it: "
        "kto, kto_messages); choose one with format: kto, or drop it knowingly with ignore_columns: [label]")
    scored = write_jsonl(tmp_path / "s.jsonl", [{"messages": chat("Q", "A"), "score": 2}])
    with pytest.raises(DataError, match=r"column 'score' carries meaning but format 'messages' does not read it "
                                        r"\(no format reads it\); drop it knowingly with ignore_columns: \[score\]$"):
        mix_rows([DatasetSpec(scored)], "sft")


def test_every_lost_column_is_named_at_once(tmp_path):
    row = {"prompt": "Q", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b",
           "score_chosen": 8, "score_rejected": 2}
    path = write_jsonl(tmp_path / "uf.jsonl", [row])
    with pytest.raises(DataError) as e:
        mix_rows([DatasetSpec(path)], "preference")
    assert str(e.value) == (
        f"{path}: columns 'score_chosen', 'score_rejected' carry meaning but format 'preference' does not read them "
        "(no format reads them); drop them knowingly with ignore_columns: [score_chosen, score_rejected]")
    mixed = mix_rows([DatasetSpec(path, ignore_columns=["score_chosen", "score_rejected"])], "preference")
    assert mixed.report.sources[0].unused == [] and len(mixed.train) == 1


def test_ignore_columns_drops_knowingly_and_other_unused_columns_are_reported(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"messages": chat("Q", "A"), "score": 2, "id": 7, "lang": "en"}])
    mixed = mix_rows([DatasetSpec(path, ignore_columns=["score"])], "sft")
    assert mixed.train == [{"messages": chat("Q", "A")}]
    source = mixed.report.sources[0]
    assert source.line() == (f"{path} (messages -> sft): read 1, rejected 0, duplicates 0, test 0, train 1 "
                             "(weight 1), unused columns: id, lang")
    assert mixed.report.as_dict()["sources"][0]["unused_columns"] == ["id", "lang"]


def test_columns_of_skipped_rows_do_not_count(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": chat("Q", "A")}, {"instruction": "x", "output": "y"}])
    mixed = mix_rows([DatasetSpec(path, format="messages")], "sft", on_bad_rows="skip")
    assert len(mixed.train) == 1 and mixed.report.sources[0].unused == []


def test_disagreeing_rows_stop_with_the_skip_option_or_are_counted_when_skipping(tmp_path):
    rows = [{"prompt": "Q1", "chosen": "a", "rejected": "b"}, {"prompt": "Q2", "chosen": "c"},
            {"prompt": "Q3", "chosen": "d", "rejected": "e"}]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(DataError) as e:
        mix_rows([DatasetSpec(path)], "preference")
    assert str(e.value) == (f"{path}:2: rows disagree about the format: this row lacks 'rejected' and reads as "
                            "'prompt', while line 1 reads as 'preference' (on_bad_rows: skip drops and counts such rows)")
    mixed = mix_rows([DatasetSpec(path)], "preference", on_bad_rows="skip")
    assert len(mixed.train) == 2 and dict(mixed.report.sources[0].rejected) == {"missing key 'rejected'": 1}


def test_unreadable_line_error_names_the_skip_option(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(alpaca(0)) + "\nnot json\n")
    with pytest.raises(DataError, match=r"a\.jsonl:2: line is not valid JSON \(Expecting value at column 1\) "
                                        r"\(on_bad_rows: skip drops and counts such rows\)$"):
        mix_rows([DatasetSpec(str(path))], "sft")


def test_ignore_columns_must_be_a_list_of_names():
    with pytest.raises(DataError, match=r"^x\.jsonl: ignore_columns must be a list of column names, got 'label'$"):
        DatasetSpec("x.jsonl", ignore_columns="label")
