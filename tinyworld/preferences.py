"""Preference pairs for the embedded tiny world: what reward models and DPO-family trainers learn from.

    train, heldout = preference_pairs(make_world())   # standard preference rows (TRL conversational)
    suite = heldout_prompt_suite(make_world())         # the held-out prompts as an evals suite

Every pair answers one question about an SFT country or an SFT sum. The chosen answer is the house
style the SFT data taught, and correct ("It is Y.", "a + b = s."); the rejected answer
is one of four mistakes, chosen per prompt:

* `wrong_answer`: right format, wrong capital or sum;
* `wrong_subject`: a true statement about another country or sum (the tiny SFT model's most common
  error: "What is 0 plus 1?" -> "2 + 2 = 4.");
* `off_format`: the right answer in a layout a base model copies from web text ("A: Y", "[A] Y"...);
* `rambling`: the right answer followed by sentences nobody asked for.

Every question gets a mistake about correctness (`wrong_answer` or `wrong_subject`) and one more of
any other type. Questions use the SFT phrasings plus a few it never had ("Capital of X?"), so
preference tuning has something to generalise to. The split is by question: for every country and
sum, a seeded quarter of its phrasings is asked only in held-out pairs, so no held-out prompt is in
a training pair. (A split by subject instead - held-out countries no training pair mentions - leaves
a 2.5M-parameter reward model at chance on correctness: it would have to verify facts it never saw
judged.) Countries and sums held out from SFT (`world.heldout_countries`, `world.heldout_sums`)
appear in no file here at all, not even as a wrong answer, so they stay clean for the SFT
elicitation test.

Pure functions of the `World`; they draw from their own `random.Random` streams, so adding them
changed no byte of the pretraining or SFT data.
"""

from __future__ import annotations

import random

from tinyworld.world import CAPITAL_QUESTIONS, CAPITAL_REPLY, SUM_QUESTIONS, Country, World

PAIR_TYPES = ("wrong_answer", "wrong_subject", "off_format", "rambling")
HELDOUT_SHARE = 0.25  # of each subject's phrasings, asked only in held-out pairs

CAPITAL_PHRASINGS = CAPITAL_QUESTIONS + (
    "Capital of {c}?",
    "Which city serves as the capital of {c}?",
    "I am visiting {c}. What is its capital?",
    "What's the capital city of {c}?",
    "Quick question: what is the capital of {c}?",
)
SUM_PHRASINGS = SUM_QUESTIONS + ("What is the sum of {a} and {b}?", "Compute {a} + {b}.", "{a} + {b} = ?")
OFF_FORMATS = ("{x}", "A: {x}", "Answer: {x}", "[A] {x}", "Reply: {x}")
CAPITAL_RAMBLE = (
    "Travelers to {c} often begin in {cap}, its capital.",
    "{cap}, the capital of {c}, is a busy city.",
    "In {c}, the government meets in {cap}, the capital.",
    "The capital city of {c} is {cap}.",
)
SUM_RAMBLE = ("Adding {a} and {b} gives {s}.", "The sum of {a} and {b} is {s}.", "{a} plus {b} is {s}.")


def _row(question: str, chosen: str, rejected: str, pair_type: str, subject: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "type": pair_type,  # ignored by training; lets an analysis group results by mistake
        "subject": subject,
    }


def capital_rejected(rng: random.Random, c: Country, others: list[Country], pair_type: str) -> str:
    if pair_type == "wrong_answer":
        return CAPITAL_REPLY.format(c=c.name, cap=rng.choice(others).capital)
    if pair_type == "wrong_subject":
        other = rng.choice(others)
        return f"The capital of {other.name} is {other.capital}."
    if pair_type == "off_format":
        return rng.choice(OFF_FORMATS).format(x=c.capital)
    extra = rng.sample(CAPITAL_RAMBLE, 2)
    return " ".join([CAPITAL_REPLY.format(c=c.name, cap=c.capital)] + [e.format(c=c.name, cap=c.capital) for e in extra])


def sum_rejected(rng: random.Random, a: int, b: int, others: list[tuple[int, int]], pair_type: str) -> str:
    s = a + b
    if pair_type == "wrong_answer":
        wrong = rng.choice([v for v in range(max(0, s - 3), s + 4) if v != s])
        return f"{a} + {b} = {wrong}."
    if pair_type == "wrong_subject":
        x, y = rng.choice(others)
        return f"{x} + {y} = {x + y}."
    if pair_type == "off_format":
        return rng.choice(OFF_FORMATS).format(x=s)
    extra = rng.sample(SUM_RAMBLE, 2)
    return " ".join([f"{a} + {b} = {s}."] + [e.format(a=a, b=b, s=s) for e in extra])


def mistakes(rng: random.Random) -> list[str]:
    """A correctness mistake, then one more of any other type."""
    first = rng.choice(PAIR_TYPES[:2])
    return [first, rng.choice([t for t in PAIR_TYPES if t != first])]


def _questions(rng: random.Random, phrasings: tuple[str, ...], **fill) -> tuple[list[str], list[str]]:
    """(train, heldout) questions about one subject: a seeded HELDOUT_SHARE of its phrasings held out."""
    questions = [q.format(**fill) for q in phrasings]
    rng.shuffle(questions)
    n_held = max(1, round(len(questions) * HELDOUT_SHARE))
    return questions[n_held:], questions[:n_held]


def preference_pairs(world: World) -> tuple[list[dict], list[dict]]:
    """(train, heldout) preference rows; no held-out question is asked in a training row."""
    rng = random.Random(f"tiny-preferences:{world.config.seed}")
    countries, sums = list(world.sft_countries), list(world.sft_sums)
    train, heldout = [], []
    for c in countries:
        others = [o for o in countries if o != c]
        for rows, questions in zip((train, heldout), _questions(rng, CAPITAL_PHRASINGS, c=c.name)):
            for q in questions:
                rows += [_row(q, CAPITAL_REPLY.format(c=c.name, cap=c.capital), capital_rejected(rng, c, others, t), t,
                              f"capital:{c.name}") for t in mistakes(rng)]
    for a, b in sums:
        others = [o for o in sums if o != (a, b)]
        for rows, questions in zip((train, heldout), _questions(rng, SUM_PHRASINGS, a=a, b=b)):
            for q in questions:
                rows += [_row(q, f"{a} + {b} = {a + b}.", sum_rejected(rng, a, b, others, t), t, f"sum:{a}+{b}")
                         for t in mistakes(rng)]
    rng.shuffle(train)
    return train, heldout


def heldout_prompt_suite(world: World) -> list[dict]:
    """One evals-suite item per held-out question (`python -m evals.compare --suite ...`)."""
    _, heldout = preference_pairs(world)
    items, seen = [], set()
    for row in heldout:
        question = row["prompt"][0]["content"]
        if question in seen:
            continue
        seen.add(question)
        kind, subject = row["subject"].split(":", 1)
        reference = row["chosen"][0]["content"].rstrip(".").split()[-1]  # "... is Y." -> Y; "a + b = s." -> s
        items.append({"id": f"pref-{len(items)}", "kind": "task", "category": f"{kind}-pref-heldout",
                      "prompt": question, "reference": reference})
    return items
