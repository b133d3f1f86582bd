"""The tiny world's preference pairs: valid standard rows, deterministic, split by question, no held-out leak."""

from __future__ import annotations

import json
import re
from collections import Counter

from data_prep.formats import convert_row
from tinyworld.preferences import PAIR_TYPES, heldout_prompt_suite, preference_pairs
from tinyworld.world import WorldConfig, make_world, pretraining_documents, sft_conversations


def test_pairs_are_standard_preference_rows_with_correct_chosen_answers():
    world = make_world(WorldConfig.small())
    train, heldout = preference_pairs(world)
    capitals = {c.name: c.capital for c in world.countries}
    for row in train + heldout:
        (std,) = convert_row(row, "preference", "preference")  # the strict converter accepts every row
        assert set(std) == {"prompt", "chosen", "rejected"}
        answer = row["chosen"][0]["content"]
        kind, subject = row["subject"].split(":")
        if kind == "capital":
            assert answer == f"It is {capitals[subject]}."
            assert subject in row["prompt"][0]["content"]
        else:
            a, b = map(int, subject.split("+"))
            assert answer == f"{a} + {b} = {a + b}."
        assert row["rejected"][0]["content"] != answer
    assert set(Counter(r["type"] for r in train)) == set(PAIR_TYPES)


def test_no_heldout_question_is_asked_in_a_training_pair():
    world = make_world()
    train, heldout = preference_pairs(world)
    train_questions = {r["prompt"][0]["content"] for r in train}
    held_questions = {r["prompt"][0]["content"] for r in heldout}
    assert held_questions and not held_questions & train_questions
    # every subject is asked about in both splits, in different words
    assert {r["subject"] for r in heldout} == {r["subject"] for r in train}
    assert len(train) > 2 * len(heldout) > 0
    # each question has one correctness mistake among its pairs
    by_question = {}
    for r in train + heldout:
        by_question.setdefault(r["prompt"][0]["content"], set()).add(r["type"])
    assert all(types & {"wrong_answer", "wrong_subject"} for types in by_question.values())


def test_nothing_held_out_from_sft_appears_in_any_preference_file():
    world = make_world()
    train, heldout = preference_pairs(world)
    text = json.dumps(train + heldout + heldout_prompt_suite(world))
    for c in world.heldout_countries:
        assert not re.search(rf"\b{c.name}\b", text), c.name
        assert not re.search(rf"\b{c.capital}\b", text), c.capital
    for a, b in world.heldout_sums:
        assert f"{a} + {b} =" not in text and f"{a} plus {b}" not in text and f"{a} and {b}" not in text


def test_deterministic_and_leaves_the_other_world_files_unchanged():
    world = make_world(WorldConfig.small())
    before = (pretraining_documents(world), sft_conversations(world))
    assert preference_pairs(world) == preference_pairs(make_world(WorldConfig.small()))
    assert (pretraining_documents(world), sft_conversations(world)) == before
    assert preference_pairs(world) != preference_pairs(make_world(WorldConfig.small(seed=1)))


def test_heldout_prompt_suite_is_a_valid_evals_suite(tmp_path):
    from evals.suite import load_suite

    world = make_world(WorldConfig.small())
    items = heldout_prompt_suite(world)
    path = tmp_path / "suite.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    loaded = load_suite(path)
    assert len(loaded) == len(items) == len({r["prompt"][0]["content"] for r in preference_pairs(world)[1]})
    for item in items:
        assert item["reference"] in json.dumps(preference_pairs(world)[1])
