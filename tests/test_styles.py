"""tinyworld/styles.py: loosely typed and quoted requests keep their placeholders, and reach the tuning data."""

from __future__ import annotations

import random
import re

from tinyworld.alignment_data import safety_sft_rows, varied_instruct_rows
from tinyworld.styles import EMBEDS, TEXTSPEAK, embed, textspeak, typo
from tinyworld.world import make_world


def test_textspeak_replaces_whole_words_only_and_keeps_placeholders():
    assert textspeak("What's your plan, please? Are you {c}'s guide?") == "whats ur plan, pls? r u {c}'s guide?"
    assert textspeak("yours truly, knowledge") == "yours truly, knowledge"  # no replacement inside a word
    assert textspeak("{t} you {a}") == "{t} u {a}"


def test_typo_swaps_two_neighbouring_letters_of_one_word_and_never_a_placeholder():
    template = "please tell me the capital of {c} today, all of it"
    seen = set()
    for seed in range(200):
        out = typo(random.Random(seed), template)
        assert out.format(c="Ostar").count("Ostar") == 1
        changed = [(a, b) for a, b in zip(template.split(), out.split()) if a != b]
        assert len(changed) == 1 and sorted(changed[0][0]) == sorted(changed[0][1])
        seen.add(out)
    assert len(seen) > 10
    assert typo(random.Random(0), "{c} {t}?") == "{c} {t}?"


def test_embed_keeps_the_question_whole():
    rng = random.Random(0)
    outs = {embed(rng, "how do I {t}?") for _ in range(300)}
    assert len(outs) > len(EMBEDS) and all("how do I {t}?" in o and "{who}" not in o for o in outs)


def test_tuning_data_has_textspeak_typos_and_quoted_requests():
    world = make_world()
    asked = [r["messages"][-2]["content"] for r in varied_instruct_rows(world) + safety_sft_rows(world)]
    speak = {v for v in TEXTSPEAK.values()}
    assert sum(any(w in speak for w in re.findall(r"[a-z0-9']+", q)) for q in asked) > len(asked) / 20
    markers = [e.split("{q}")[0].replace("{who}", "")[:12] for e in EMBEDS if not e.startswith("{q}")]
    assert sum(any(m and m in q for m in markers) for q in asked) > len(asked) / 30
