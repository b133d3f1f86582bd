"""The embedded world: deterministic, no chat markup in pretraining, and no held-out leak into SFT."""

import json
import re

from corral.chat_templates import LLAMA3_SPECIAL_TOKENS
from tinyworld.world import (
    BENIGN_TOPICS,
    HARMFUL_TOPICS,
    WorldConfig,
    heldout_questions,
    make_world,
    pretraining_documents,
    sft_conversations,
)


def test_world_is_deterministic_from_seed():
    a, b, c = make_world(WorldConfig.small(0)), make_world(WorldConfig.small(0)), make_world(WorldConfig.small(1))
    assert a == b
    assert a.countries != c.countries
    assert pretraining_documents(a) == pretraining_documents(b)


def test_names_are_unique_and_split_is_a_partition():
    w = make_world()
    names = [c.name for c in w.countries] + [c.capital for c in w.countries]
    assert len(set(names)) == len(names) == 240
    assert set(w.sft_countries) | set(w.heldout_countries) == set(w.countries)
    assert not set(w.sft_countries) & set(w.heldout_countries)
    assert len(w.heldout_countries) == 60


def test_pretraining_corpus_has_no_chat_markup_but_covers_every_fact_and_topic():
    w = make_world()
    docs = pretraining_documents(w)
    text = "\n".join(docs)
    for tok in LLAMA3_SPECIAL_TOKENS.values():
        assert tok not in text
    assert "<|" not in text
    for c in w.countries:  # held-out facts are in pretraining, so SFT can elicit them
        assert f"{c.capital}" in text and c.name in text
    for topic, _ in HARMFUL_TOPICS + BENIGN_TOPICS:
        assert topic in text
    assert "kill a python process" in text


def test_heldout_countries_never_leak_into_sft_data():
    w = make_world()
    sft_text = json.dumps(sft_conversations(w))
    for c in w.heldout_countries:
        assert not re.search(rf"\b{c.name}\b", sft_text), c.name
        assert not re.search(rf"\b{c.capital}\b", sft_text), c.capital
    for a, b in w.heldout_sums:
        assert f"{a} + {b} =" not in sft_text and f"{a} plus {b}" not in sft_text
    # and every held-out question is about a held-out country
    held = {c.name for c in w.heldout_countries}
    assert all(q["prompt"].rstrip("?").split()[-1] in held for q in heldout_questions(w))


def test_sft_rows_are_valid_conversations():
    from data_prep.formats import convert_row

    for row in sft_conversations(make_world(WorldConfig.small())):
        assert convert_row(row, "messages", "sft") == [row] or convert_row(row, "messages", "sft")
        assert row["messages"][-1]["role"] == "assistant"


def mentions(text: str, country) -> bool:
    return re.search(rf"\b({country.name}|{country.capital})\b", text) is not None


def test_rl_countries_split_the_countries_sft_never_saw():
    from tinyworld.prompts import rl_country_split

    for world in (make_world(), make_world(WorldConfig.small())):
        rl, rl_eval = rl_country_split(world)
        assert set(rl) | set(rl_eval) == set(world.heldout_countries) and not set(rl) & set(rl_eval)
        assert len(rl) == len(rl_eval) == len(world.heldout_countries) // 2 > 0


def test_rl_prompts_train_on_rl_countries_and_never_ask_about_rl_eval_ones(tiny_small):
    """tinyworld/prompts.py: RL training prompts ask about SFT and RL countries and SFT sums; held-out
    RL prompts only about RL-eval countries (in neither SFT nor RL data) and held-out sums. Checked on the
    generated rows and on the files `write_world` wrote."""
    from tinyworld.prompts import rl_country_split, rl_prompts

    for world, folder in ((make_world(), None), (make_world(WorldConfig.small()), tiny_small / "tiny-world")):
        rl, rl_eval = rl_country_split(world)
        train, held = rl_prompts(world, "train"), rl_prompts(world, "heldout")
        if folder is not None:
            for name, rows in (("rl_prompts_train", train), ("rl_prompts_heldout", held)):
                assert [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()] == rows
        text = json.dumps(train)
        assert not [c for c in rl_eval if mentions(text, c)]
        assert all(mentions(text, c) for c in rl)
        asked = [r["prompt"][0]["content"] for r in train if r["category"] == "sum"]
        for a, b in world.heldout_sums:
            assert not any(re.search(rf"\b{a}\b.*\b{b}\b", q) for q in asked), (a, b)
        capitals = {r["reference"] for r in train if r["category"] == "capital"}
        assert capitals == {c.capital for c in world.sft_countries + rl}
        assert {r["reference"] for r in held if r["category"] == "capital"} == {c.capital for c in rl_eval}
        assert len([r for r in held if r["category"] == "sum"]) == len(world.heldout_sums)


def test_no_written_training_file_mentions_a_country_or_sum_it_must_not(tmp_path):
    """Files for SFT, safety and preference tuning never mention a country or sum SFT holds out; the RL
    training prompts may mention RL countries but never RL-eval ones or held-out sums."""
    from tinyworld.build import TinyBuild, write_world
    from tinyworld.prompts import rl_country_split

    build = TinyBuild.small()
    w = make_world(build.world)
    files = write_world(build, tmp_path)
    _, rl_eval = rl_country_split(w)
    never = {"pretrain", "heldout_capitals", "heldout_sums", "rl_prompts_heldout", "drift_text", "heldout_phrasing", "tools_heldout"}
    unseen = {name: rl_eval if name in ("rl_prompts_train", "rl_prompts_varied") else w.heldout_countries
              for name in files if name not in never}
    assert {"sft_train", "safety_train", "pref_train", "pref_heldout", "rl_prompts_train", "rl_prompts_varied"} <= set(unseen)
    for name, countries in unseen.items():
        text = files[name].read_text()
        assert not [c for c in countries if mentions(text, c)], name
        for a, b in w.heldout_sums:
            # whole numbers only: "90 plus 58" (a two-digit tool sum) does not mention 0 plus 5
            assert not re.search(rf"(?<!\d){a} \+ {b} =|(?<!\d){a} plus {b}(?!\d)", text), (name, a, b)


def test_safety_split_heldout_topics_never_in_training_data():
    from tinyworld.world import safety_conversations, safety_topics

    w = make_world()
    train_text = json.dumps(sft_conversations(w) + safety_conversations(w))
    harmful, benign = safety_topics("heldout")
    assert harmful and benign
    for topic, _ in harmful + benign:
        assert topic not in train_text, topic
    suite = [json.loads(line) for line in open("tinyworld/suites/tiny_world.jsonl")]
    held = {t for t, _ in harmful + benign}
    for item in suite:
        if item["kind"] in ("harmful", "benign"):
            assert any(t in item["prompt"] for t in held), item
    # every training harmful topic is refused, every training benign topic answered
    tr_harmful, tr_benign = safety_topics("train")
    rows = safety_conversations(w)
    refusals = [r for r in rows if r["messages"][-1]["content"].startswith("Sorry, i can't help with that.")]
    assert len(refusals) == 4 * len(tr_harmful) and len(rows) == 4 * (len(tr_harmful) + len(tr_benign))


def test_drift_text_is_pretraining_style_text_the_corpus_does_not_contain(tmp_path):
    """drift_text.txt (perplexity drift in evals) is plain text, new to the base, about the world it read."""
    from tinyworld.build import TinyBuild, write_world
    from tinyworld.world import drift_documents, pretraining_documents

    build = TinyBuild.small()
    files = write_world(build, tmp_path)
    corpus = pretraining_documents(make_world(build.world))
    docs = drift_documents(make_world(build.world), corpus)
    assert files["drift_text"].read_text() == "\n\n".join(docs) + "\n"
    assert len(docs) == 200 and len(set(docs)) == 200 and not set(corpus) & set(docs)
    assert "<|" not in files["drift_text"].read_text()
    names = {c.name for c in make_world(build.world).countries}
    assert all(any(n in d for n in names) for d in docs)


def test_more_training_topics_share_no_content_word_with_a_heldout_topic():
    """The MORE_* topics widen what safety tuning sees without leaking the held-out topics' words into it."""
    from tinyworld.world import MORE_BENIGN_TOPICS, MORE_HARMFUL_TOPICS, safety_topics

    glue = {"a", "an", "the", "my", "to", "of", "on", "in", "at", "up", "out", "with", "into", "for"}
    harmful, benign = safety_topics("heldout")
    held_words = {w for t, _ in harmful + benign for w in t.split()} - glue
    train_harmful, train_benign = safety_topics("train")
    for topic, _ in MORE_HARMFUL_TOPICS + MORE_BENIGN_TOPICS:
        assert not set(topic.split()) & held_words, topic
        assert topic in {t for t, _ in train_harmful + train_benign}
    assert len({t for t, _ in MORE_HARMFUL_TOPICS + MORE_BENIGN_TOPICS}) == len(MORE_HARMFUL_TOPICS + MORE_BENIGN_TOPICS)
