"""RL prompts for the embedded tiny world: questions with a reference answer and the expected answer form.

    rows = rl_prompts(make_world(), "train")     # SFT countries and sums, every question phrasing
    rows = rl_prompts(make_world(), "heldout")   # countries and sums SFT never saw

Rows are in the prompt-only standard schema that `load_mixture(kind="prompt")` reads and TRL's
online trainers consume, plus the columns the rule rewards (`reward/rules.py`) read:

    {"prompt": [{"role": "user", "content": "What is the capital of Voovia?"}],
     "reference": "Marsal", "answer_format": "The capital of Voovia is {answer}.",
     "kind": "task", "category": "capital"}

`answer_format` is the house style the SFT data taught ("The capital of X is Y.", "a + b = s."),
with `{answer}` where the answer goes. Training prompts only ask about SFT countries and sums;
held-out prompts only about held-out ones (tests/test_tiny_world.py checks the files never mix).
"""

from __future__ import annotations

from typing import Literal

from data_prep.tiny_world import CAPITAL_QUESTIONS, SUM_QUESTIONS, World

CAPITAL_FORMAT = "The capital of {c} is {{answer}}."
SUM_FORMAT = "{a} + {b} = {{answer}}."


def _row(question: str, reference: str, answer_format: str, category: str) -> dict:
    return {"prompt": [{"role": "user", "content": question}], "reference": reference,
            "answer_format": answer_format, "kind": "task", "category": category}


def rl_prompts(world: World, split: Literal["train", "heldout"]) -> list[dict]:
    """Capital and sum questions for `split`: train asks every phrasing, held-out one per item.

    Held-out items get one phrasing each (the first), so a held-out evaluation is one question per
    country or sum, as in `heldout_capitals.jsonl`.
    """
    if split == "train":
        countries, sums, capital_qs, sum_qs = world.sft_countries, world.sft_sums, CAPITAL_QUESTIONS, SUM_QUESTIONS
    elif split == "heldout":
        countries, sums = world.heldout_countries, world.heldout_sums
        capital_qs, sum_qs = CAPITAL_QUESTIONS[:1], SUM_QUESTIONS[:1]
    else:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rows = [_row(q.format(c=c.name), c.capital, CAPITAL_FORMAT.format(c=c.name), "capital")
            for c in countries for q in capital_qs]
    rows += [_row(q.format(a=a, b=b), str(a + b), SUM_FORMAT.format(a=a, b=b), "sum")
             for a, b in sums for q in sum_qs]
    return rows
