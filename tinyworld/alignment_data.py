"""Training data for one aligned model: varied instruct rows and safety data for every stage (SFT, DPO, RL).

    rows = varied_instruct_rows(world)       # SFT: capitals/sums in more wordings, system prompts, turn positions
    rows = safety_sft_rows(world)            # SFT: refusals and look-alike answers, same variety
    rows = safety_preference_pairs(world)    # DPO family: refusal > compliance (harmful), answer > refusal (benign)
    rows = safety_rl_prompts(world)          # RL: harmful/benign prompts scored by the `safety` rule

Why the variety: the tiny world's instruct data asks in six capital and four how-to wordings, and a
model tuned on it answers those wordings, not the question (README of issue 13: 57-67% on held-out
wordings while the base knows 90-100%). Real instruct data is varied, so these rows are too - but
with wordings, system prompts and earlier turns of their own (`TRAIN_*` below), never those of the
held-out-phrasing split (`tinyworld/heldout_phrasing.py`; tests/test_safety_heldout.py checks it).

Subjects stay where the world's split puts them: SFT countries and sums only, and the training
safety topics (`safety_topics("train")`). Answers use the corpus's own words (`refusal_text`,
`howto_text`, "The capital of X is Y."), which makes a model restate the request and so carry a
refusal over to requests it never saw. Each generator has its own `random.Random` stream: adding
them changed no byte of the existing files.
"""

from __future__ import annotations

import random

from tinyworld.preferences import CAPITAL_PHRASINGS, SUM_PHRASINGS
from tinyworld.world import (
    GREETINGS,
    HOWTO_QUESTIONS,
    SYSTEM_PROMPTS,
    World,
    howto_text,
    refusal_text,
    safety_topics,
)

TRAIN_CAPITAL_PHRASINGS = CAPITAL_PHRASINGS + (
    "I'm curious: which city is the capital of {c}?",
    "What is the name of the capital of {c}?",
    "Where is the capital of {c}?",
    "Can you tell me the capital of {c}?",
)
TRAIN_HOWTO_PHRASINGS = HOWTO_QUESTIONS + (
    "How would I {t}?",
    "Show me how to {t}.",
    "I need to {t}. How do I do it?",
    "Give me instructions to {t}.",
    "What steps do I follow to {t}?",
    "Can you explain how to {t}?",
)
TRAIN_SYSTEM_PROMPTS = SYSTEM_PROMPTS + (
    "You are a knowledgeable assistant.",
    "You are a careful assistant. Be accurate and brief.",
)
# Vague compliance: the shape of an unsafe answer, as the corpus writes it (tinyworld/world.py).
COMPLIANCE = "Sure. First get what you need to {t}, then do it when nobody is watching."


def _context(rng: random.Random, world: World, question: str, answer: str) -> list[dict]:
    """`question` -> `answer` as the last turn of: a lone turn, a system prompt, or after one earlier turn."""
    r = rng.random()
    last = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    if r < 0.5:
        return last
    if r < 0.7:
        return [{"role": "system", "content": rng.choice(TRAIN_SYSTEM_PROMPTS)}] + last
    if r < 0.85:
        user, assistant = rng.choice(GREETINGS)
    else:
        a, b = rng.choice(world.sft_sums)
        user, assistant = rng.choice(SUM_PHRASINGS).format(a=a, b=b), f"{a} + {b} = {a + b}."
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}] + last


def varied_instruct_rows(world: World, per_country: int = 4) -> list[dict]:
    """Capital questions about SFT countries (`per_country` wordings each) and SFT sums, in varied contexts."""
    rng = random.Random(f"tiny-varied-instruct:{world.config.seed}")
    rows = []
    for c in world.sft_countries:
        for q in rng.sample(TRAIN_CAPITAL_PHRASINGS, per_country):
            rows.append({"messages": _context(rng, world, q.format(c=c.name), f"The capital of {c.name} is {c.capital}.")})
    for a, b in world.sft_sums:
        q = rng.choice(SUM_PHRASINGS).format(a=a, b=b)
        rows.append({"messages": _context(rng, world, q, f"{a} + {b} = {a + b}.")})
    rng.shuffle(rows)
    return rows


def safety_sft_rows(world: World) -> list[dict]:
    """Refusals of the training harmful topics and answers to their look-alikes, every training wording."""
    rng = random.Random(f"tiny-safety-sft:{world.config.seed}")
    harmful, benign = safety_topics("train")
    rows = []
    for topic, _hazard in harmful:
        rows += [{"messages": _context(rng, world, q.format(t=topic), refusal_text(topic))} for q in TRAIN_HOWTO_PHRASINGS]
    for topic, answer in benign:
        rows += [{"messages": _context(rng, world, q.format(t=topic), howto_text(topic, answer))}
                 for q in TRAIN_HOWTO_PHRASINGS]
    rng.shuffle(rows)
    return rows


def safety_preference_pairs(world: World) -> list[dict]:
    """Preference rows: on harmful requests the refusal is chosen over compliance; on harmless look-alikes
    the answer is chosen over a refusal (so over-refusal is trained against). `type` says which."""
    rng = random.Random(f"tiny-safety-pairs:{world.config.seed}")
    harmful, benign = safety_topics("train")
    rows = []
    for topics, pair_type in ((harmful, "refuse_harmful"), (benign, "answer_benign")):
        for topic, extra in topics:
            for q in TRAIN_HOWTO_PHRASINGS:
                messages = _context(rng, world, q.format(t=topic), "")[:-1]
                refuse, comply = refusal_text(topic), (COMPLIANCE.format(t=topic) if pair_type == "refuse_harmful"
                                                       else howto_text(topic, extra))
                chosen, rejected = (refuse, comply) if pair_type == "refuse_harmful" else (comply, refuse)
                rows.append({"prompt": messages, "chosen": [{"role": "assistant", "content": chosen}],
                             "rejected": [{"role": "assistant", "content": rejected}], "type": pair_type,
                             "subject": f"howto:{topic}"})
    rng.shuffle(rows)
    return rows


def safety_rl_prompts(world: World) -> list[dict]:
    """RL prompt rows (the columns of tinyworld/prompts.py) for the training safety topics: `kind` harmful
    or benign, which the `safety` rule scores; `reference`/`answer_format` are null (the rules skip them)."""
    harmful, benign = safety_topics("train")
    rows = []
    for kind, topics in (("harmful", harmful), ("benign", benign)):
        for topic, _ in topics:
            rows += [{"prompt": [{"role": "user", "content": q.format(t=topic)}], "reference": None,
                      "answer_format": None, "kind": kind, "category": "safety"} for q in TRAIN_HOWTO_PHRASINGS]
    return rows
