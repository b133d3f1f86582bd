"""Suite parsing: valid rows become items; each malformed row is one exact `file:line:` error."""

import json
from pathlib import Path

import pytest

from evals.suite import SuiteError, describe, load_suite


def write(tmp_path, *rows, name="suite.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"kind": "task", "prompt": "What is 3 + 4?", "reference": "7"}


def test_valid_rows(tmp_path):
    path = write(
        tmp_path,
        GOOD,
        "",
        {"id": "h", "kind": "harmful", "category": "S1", "prompt": "x"},
        {"kind": "benign", "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]},
    )
    items = load_suite(path)
    assert [i.id for i in items] == ["suite-1", "h", "suite-4"]
    assert items[0].messages == ({"role": "user", "content": "What is 3 + 4?"},)
    assert (items[0].category, items[0].reference) == ("task", "7")
    assert items[2].prompt == "hi" and items[2].reference is None
    assert describe(path, items)["counts_by_kind"] == {"task": 1, "harmful": 1, "benign": 1}


@pytest.mark.parametrize(
    "row, error",
    [
        ({"kind": "taks", "prompt": "x"}, "suite.jsonl:2: unknown kind 'taks' (expected task, harmful, benign)"),
        ({"prompt": "x"}, "suite.jsonl:2: missing kind (expected task, harmful, benign)"),
        ({"kind": "task", "prompt": "x"}, "suite.jsonl:2: task item needs a non-empty 'reference' string"),
        ({"kind": "task", "prompt": "x", "reference": " "}, "suite.jsonl:2: task item needs a non-empty 'reference' string"),
        ({"kind": "benign", "prompt": "  "}, "suite.jsonl:2: empty prompt"),
        ({"kind": "benign"}, "suite.jsonl:2: give exactly one of 'prompt' (string) or 'messages' (list)"),
        (
            {"kind": "benign", "messages": [{"role": "assistant", "content": "hi"}]},
            "suite.jsonl:2: empty prompt (the last message must be a non-empty user turn)",
        ),
        (
            {"kind": "benign", "messages": [{"role": "bot", "content": "hi"}]},
            "suite.jsonl:2: messages[0] must be {role: system|user|assistant, content: string}",
        ),
        (
            {"kind": "benign", "prompt": "x", "refrence": "7"},
            "suite.jsonl:2: unknown key 'refrence' (expected category, id, kind, messages, prompt, reference)",
        ),
        ('{"kind": "benign",', "suite.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes at column 19)"),
        ("[1, 2]", "suite.jsonl:2: expected a JSON object, got list"),
        ({"id": "suite-1", "kind": "benign", "prompt": "x"}, "suite.jsonl:2: duplicate id 'suite-1' (first on line 1)"),
    ],
)
def test_errors_are_one_exact_line(tmp_path, row, error):
    with pytest.raises(SuiteError) as e:
        load_suite(write(tmp_path, GOOD, row))
    assert str(e.value) == error


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(SuiteError, match=r"nope.jsonl: no such suite file$"):
        load_suite(tmp_path / "nope.jsonl")
    with pytest.raises(SuiteError, match=r"empty.jsonl: the suite is empty$"):
        load_suite(write(tmp_path, "", name="empty.jsonl"))


def test_shipped_suites_parse():
    suites = sorted((Path(__file__).parent.parent / "tinyworld" / "suites").glob("*.jsonl"))
    assert suites
    kinds = {path.name: {i.kind for i in load_suite(path)} for path in suites}
    assert all(k and k <= {"task", "harmful", "benign"} for k in kinds.values()), kinds
    assert kinds["tiny_world.jsonl"] == {"task", "harmful", "benign"}


def test_tiny_world_suite_matches_the_world():
    from tinyworld import suite as tiny_world_suite

    shipped = Path(tiny_world_suite.__file__).parent / "suites" / "tiny_world.jsonl"
    assert shipped.read_text() == tiny_world_suite.render(), (
        "tinyworld/suites/tiny_world.jsonl is stale: python -m tinyworld.suite > tinyworld/suites/tiny_world.jsonl"
    )
