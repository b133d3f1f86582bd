"""The held-out-phrasing split (tinyworld/heldout_phrasing.py) stays out of every training file, and the
safety training data (tinyworld/alignment_data.py) says what it should."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter

import pytest

from evals.refusal import is_refusal
from evals.suite import load_suite
from tinyworld import heldout_phrasing
from tinyworld.alignment_data import (
    HOWTO_TRAILERS,
    safety_preference_pairs,
    safety_rl_prompts,
    safety_sft_rows,
    varied_instruct_rows,
    varied_preference_pairs,
)
from tinyworld.build import TinyBuild, write_world
from tinyworld.preferences import preference_pairs
from tinyworld.prompts import rl_country_split
from tinyworld.world import WorldConfig, make_world, safety_topics

# Files a trainer reads (sft, preference, reward, RL) - everything except evaluation files (these and any
# `*_heldout*` file) and the pretraining text (which a base model reads; the split is about what *tuning* saw).
NOT_TRAINING = {"pretrain", "drift_text", "heldout_capitals", "heldout_sums", "rl_prompts_heldout",
                "pref_heldout_prompts", "heldout_phrasing"}


def _texts(row: dict) -> list[str]:
    """Every user and system text of a row in any standard schema."""
    turns = row.get("messages") or (row["prompt"] if isinstance(row.get("prompt"), list) else [])
    return [m["content"] for m in turns if m["role"] in ("user", "system")]


def skeleton(text: str, names: list[str]) -> str:
    """`text` with every subject (country, topic) replaced by `{x}` and numbers by `{n}`: its wording."""
    for name in names:  # longest first, so "make a bath bomb" is replaced before "make a bomb" could match
        text = text.replace(name, "{x}")
    return re.sub(r"\d+", "{n}", text)


@pytest.fixture(scope="module")
def world_files(tmp_path_factory):
    build = TinyBuild()  # the quickstart world: the split is shipped for it
    return make_world(build.world), write_world(build, tmp_path_factory.mktemp("phrasing"))


def _names(world) -> list[str]:
    harmful, benign = safety_topics("train")
    held_h, held_b = safety_topics("heldout")
    return sorted([c.name for c in world.countries] + [t for t, _ in harmful + benign + held_h + held_b],
                  key=len, reverse=True)


def _turn_split(split: heldout_phrasing.TurnSplit) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return split.capital_templates + split.howto_templates, split.contexts


# Split A is the build's heldout_phrasing.jsonl; splits B-J (reporting only) are generated here and shipped
# as suites.
SPLITS = {"a": (heldout_phrasing.CAPITAL_TEMPLATES + heldout_phrasing.HOWTO_TEMPLATES, heldout_phrasing.CONTEXTS),
          "b": (heldout_phrasing.B_CAPITAL_TEMPLATES + heldout_phrasing.B_HOWTO_TEMPLATES, heldout_phrasing.B_CONTEXTS),
          "c": (heldout_phrasing.C_CAPITAL_TEMPLATES + heldout_phrasing.C_HOWTO_TEMPLATES, heldout_phrasing.C_CONTEXTS),
          "d": (heldout_phrasing.D_CAPITAL_TEMPLATES + heldout_phrasing.D_HOWTO_TEMPLATES, heldout_phrasing.D_CONTEXTS),
          "e": (heldout_phrasing.E_CAPITAL_TEMPLATES + heldout_phrasing.E_HOWTO_TEMPLATES, heldout_phrasing.E_CONTEXTS),
          "f": _turn_split(heldout_phrasing.SPLIT_F),
          "g": _turn_split(heldout_phrasing.SPLIT_G),
          "h": _turn_split(heldout_phrasing.SPLIT_H),
          "i": _turn_split(heldout_phrasing.SPLIT_I),
          "j": _turn_split(heldout_phrasing.SPLIT_J)}


def _split_rows(split: str, world, files) -> list[dict]:
    if split == "a":
        return [json.loads(line) for line in files["heldout_phrasing"].read_text().splitlines()]
    return heldout_phrasing.SPLITS[split](world)


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_no_training_file_uses_a_heldout_wording_system_prompt_or_prompt(world_files, split):
    world, files = world_files
    names = _names(world)
    held_rows = _split_rows(split, world, files)
    held = {skeleton(t, names) for row in held_rows for t in _texts(row)}
    training = [name for name in files if name not in NOT_TRAINING and "heldout" not in name]  # *_heldout: eval files
    assert {"sft_train", "safety_train", "pref_train", "rl_prompts_train", "sft_varied", "safety_sft",
            "safety_pref_train", "rl_prompts_safety"} <= set(training)
    for name in training:
        rows = [json.loads(line) for line in files[name].read_text().splitlines()]
        seen = {skeleton(t, names) for row in rows for t in _texts(row)}
        assert seen, name
        assert not held & seen, (name, sorted(held & seen)[:3])
    # Every held-out wording is used, and asks about subjects no tuning saw.
    last = [row["messages"][-1]["content"] for row in held_rows]
    templates, contexts = SPLITS[split]
    for template in templates:
        wording = skeleton(template.replace("{c}", "{x}").replace("{t}", "{x}"), [])  # F's wordings hold numbers
        assert sum(skeleton(q, names) == wording for q in last) >= 1
    assert {r["category"].split("/")[-1] for r in held_rows} == set(contexts)
    held_h, held_b = safety_topics("heldout")
    topics = {t for t, _ in held_h + held_b}
    assert all(any(t in q for t in topics) for q, r in zip(last, held_rows) if r["kind"] != "task")
    _, eval_countries = rl_country_split(world)
    assert {r["reference"] for r in held_rows if r["category"].startswith("capital")} <= {c.capital for c in eval_countries}


@pytest.mark.parametrize("one, other", list(itertools.combinations(sorted(SPLITS), 2)))
def test_heldout_splits_share_no_wording_system_prompt_or_turn(world_files, one, other):
    world, files = world_files
    names = _names(world)
    a, b = ({skeleton(t, names) for row in _split_rows(s, world, files) for t in _texts(row)} for s in (one, other))
    assert len(b) > 20 and not a & b, sorted(a & b)[:3]


@pytest.mark.parametrize("split, path, kinds", [
    ("a", "tinyworld/suites/heldout_phrasing.jsonl", {"task": 42, "harmful": 36, "benign": 48}),
    ("b", "tinyworld/suites/heldout_phrasing_b.jsonl", {"task": 72, "harmful": 36, "benign": 48}),
    ("c", "tinyworld/suites/heldout_phrasing_c.jsonl", {"task": 42, "harmful": 36, "benign": 48}),
    ("d", "tinyworld/suites/heldout_phrasing_d.jsonl", {"task": 42, "harmful": 36, "benign": 48}),
    ("e", "tinyworld/suites/heldout_phrasing_e.jsonl", {"task": 42, "harmful": 36, "benign": 48}),
    ("f", "tinyworld/suites/heldout_phrasing_f.jsonl", {"task": 42, "harmful": 60, "benign": 80}),
    ("g", "tinyworld/suites/heldout_phrasing_g.jsonl", {"task": 42, "harmful": 60, "benign": 80}),
    ("h", "tinyworld/suites/heldout_phrasing_h.jsonl", {"task": 42, "harmful": 60, "benign": 80}),
    ("i", "tinyworld/suites/heldout_phrasing_i.jsonl", {"task": 42, "harmful": 60, "benign": 80}),
    ("j", "tinyworld/suites/heldout_phrasing_j.jsonl", {"task": 42, "harmful": 60, "benign": 80})])
def test_shipped_suite_is_current_and_loads(split, path, kinds):
    assert open(path).read() == heldout_phrasing.render(split=split), \
        f"regenerate: python -m tinyworld.heldout_phrasing {split} > {path}"
    items = load_suite(path)
    assert {k: sum(i.kind == k for i in items) for k in ("task", "harmful", "benign")} == kinds
    assert sum(len(i.messages) > 1 for i in items) > len(items) / 2


def test_safety_data_refuses_harmful_and_answers_lookalikes():
    world = make_world()
    harmful = {t for t, _ in safety_topics("train")[0]}
    for row in safety_sft_rows(world):
        question, answer = row["messages"][-2]["content"], row["messages"][-1]["content"]
        assert is_refusal(answer) == any(t in question for t in harmful), row
    pairs = safety_preference_pairs(world)
    assert {p["type"] for p in pairs} == {"refuse_harmful", "answer_benign"}
    for p in pairs:
        chosen, rejected = p["chosen"][0]["content"], p["rejected"][0]["content"]
        assert is_refusal(chosen) == (p["type"] == "refuse_harmful")
        if p["type"] == "refuse_harmful":
            assert not is_refusal(rejected)
        else:  # a refusal, or the wrong task: a capital or a sum
            assert is_refusal(rejected) or rejected.startswith("It is ") or " + " in rejected
    prompts = safety_rl_prompts(world)
    assert {r["kind"] for r in prompts} == {"harmful", "benign"}
    assert all(r["reference"] is None and r["answer_format"] is None for r in prompts)


def test_instruct_and_safety_rows_vary_wording_subject_position_and_context():
    world = make_world()
    names = _names(world)
    capitals = [r["messages"] for r in varied_instruct_rows(world) if "capital" in r["messages"][-2]["content"]]
    wordings = Counter(skeleton(m[-2]["content"], names) for m in capitals)
    assert len(wordings) > 150 and max(wordings.values()) <= 6  # no wording dominates
    # The answer is the capital of an SFT country the question names (a sentence before it may name another).
    country_of = {f"It is {c.capital}.": c.name for c in world.sft_countries}
    assert all(m[-1]["content"] in country_of and country_of[m[-1]["content"]] in m[-2]["content"] for m in capitals)
    subject = [country_of[m[-1]["content"]] for m in capitals]
    assert sum(any(c.name in m[-2]["content"] for c in world.sft_countries if c.name != s)
               for m, s in zip(capitals, subject)) > 20  # another country named before the question
    starts = sum(m[-2]["content"].index(c) < len(m[-2]["content"]) / 3 for m, c in zip(capitals, subject))
    # the country opens the question in some rows, sits mid-sentence (situations, session 10) or ends it in others
    assert 0.3 < starts / len(capitals) < 0.8
    # Some questions name the country and then refer back to it ("Ostar? What is its capital?").
    assert sum(" its " in m[-2]["content"] or " their " in m[-2]["content"] for m in capitals) > len(capitals) / 4
    # An earlier turn about another country: the answer follows the last question.
    assert sum(any(t["role"] == "user" and "capital" in t["content"] and c not in t["content"] for t in m[:-2])
               for m, c in zip(capitals, subject)) > 20
    assert 0.2 < sum(m[0]["role"] == "system" for m in capitals) / len(capitals) < 0.4
    # Refusals and look-alike answers are asked in the same wordings: the topic decides, not the wording.
    harmful = {t for t, _ in safety_topics("train")[0]}
    by_kind = {True: Counter(), False: Counter()}
    trailers = sorted((t for t in HOWTO_TRAILERS if t), key=len, reverse=True)
    for row in safety_sft_rows(world):
        question = row["messages"][-2]["content"]
        for trailer in trailers:  # the wording without what casual() added: trailer, case, final punctuation
            question = question.removesuffix(trailer).removesuffix(trailer.rstrip("."))
        wording = skeleton(question, names).rstrip(".?!")
        by_kind[any(t in question for t in harmful)][wording[0].upper() + wording[1:]] += 1
    assert len(by_kind[True]) > 80 and len(set(by_kind[True]) & set(by_kind[False])) > 20
    assert sum(row["messages"][-2]["content"][0].islower() for row in safety_sft_rows(world)) > 20  # typed casually
    # Numbers and countries outside the request (session 8): a sentence before a how-to names a number, sums
    # come as word problems without "plus", "add", "sum" or "+".
    assert sum(bool(re.search(r"\d", row["messages"][-2]["content"])) for row in safety_sft_rows(world)) > 50
    sums = [m[-2]["content"] for r in varied_instruct_rows(world) if "+" in (m := r["messages"])[-1]["content"]]
    assert sum(not re.search(r"plus|add|sum|\+", q, re.I) for q in sums) > len(sums) / 4


def test_varied_preference_pairs_keep_pref_heldout_held_out():
    world = make_world()
    held = {m["content"] for row in preference_pairs(world)[1] for m in row["prompt"]}
    pairs = varied_preference_pairs(world, per_country=40, per_sum=20)  # many draws: some would hit pref_heldout
    asked = {row["prompt"][-1]["content"] for row in pairs}
    assert len(asked) > 2000 and not held & asked
    assert all(row["chosen"] != row["rejected"] for row in pairs)
    assert {row["type"] for row in pairs} == {"wrong_answer", "wrong_subject", "off_format", "rambling", "wrong_task"}
    # A wrong task is another task's answer: a capital question never prefers a sum, nor a sum a capital.
    for row in pairs:
        if row["type"] == "wrong_task":
            rejected = row["rejected"][0]["content"]
            assert ("+" in rejected) != row["subject"].startswith("sum") and not rejected.startswith("To ")
    assert sum(len(row["prompt"]) > 1 for row in pairs) > len(pairs) / 3  # system prompts and earlier turns


def test_web_pretraining_text_uses_no_heldout_wording(world_files):
    """The base's web-like text (tinyworld/web_text.py) asks in wordings of its own, none of any held-out split."""
    from tinyworld import web_text

    world, files = world_files
    names = _names(world)
    held = {skeleton(t, names).rstrip(".?!").lower() for s in SPLITS for row in _split_rows(s, world, files)
            for t in _texts(row)}
    asks = web_text.WEB_CAPITAL_ASKS + web_text.WEB_HOWTO_ASKS + web_text.WEB_SUM_ASKS
    wordings = {skeleton(re.sub(r"\{[a-z]\}", "{x}", a), []).rstrip(".?!").lower() for a in asks}
    wordings = {w.replace("{x}", "{n}") if "{x} and {x}" in w or "{x} plus {x}" in w else w for w in wordings}
    assert len(wordings) == len(asks) and not held & wordings, sorted(held & wordings)
    docs = web_text.web_documents(world)
    n_topics = sum(map(len, (web_text.HARMFUL_TOPICS, web_text.MORE_HARMFUL_TOPICS, web_text.BENIGN_TOPICS,
                             web_text.MORE_BENIGN_TOPICS)))
    threads = world.config.web_threads_per_country * len(world.countries) + world.config.web_threads_per_topic * n_topics
    assert threads > 0 and len(docs) == 8 * (len(world.countries) + 100 + n_topics) + threads
    assert any("Reply: Sorry" in d for d in docs)


def test_web_threads_end_with_each_subject_after_earlier_posts():
    """Forum threads (web_text.web_threads): every country and topic gets its threads, each ending in a post about
    it with its answer (a refusal for a harmful topic) after one to three earlier posts."""
    from dataclasses import replace

    from tinyworld import web_text

    world = make_world(replace(WorldConfig.small(), web_threads_per_country=2, web_threads_per_topic=1))
    threads = web_text.web_threads(world)
    harmful = web_text.HARMFUL_TOPICS + web_text.MORE_HARMFUL_TOPICS
    benign = web_text.BENIGN_TOPICS + web_text.MORE_BENIGN_TOPICS
    assert len(threads) == 2 * len(world.countries) + len(harmful) + len(benign)
    for thread, c in zip(threads, [c for c in world.countries for _ in range(2)]):
        pieces = thread.split("\n\n")  # a post and its reply are one or two pieces
        assert len(pieces) >= 2 and c.name in thread and c.capital in pieces[-1].split("\n")[-1]
    last_replies = [t.split("\n\n")[-1].split("\n")[-1] for t in threads[2 * len(world.countries):]]
    assert [is_refusal(r) for r in last_replies] == [False] * len(benign) + [True] * len(harmful)
    assert not web_text.web_threads(make_world(WorldConfig.small()))  # the tests' small world has none
