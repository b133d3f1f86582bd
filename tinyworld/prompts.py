"""RL prompts for the embedded tiny world: questions with a reference answer and the expected answer form.

    rows = rl_prompts(make_world(), "train")     # SFT countries + RL countries, SFT sums, every phrasing
    rows = rl_prompts(make_world(), "heldout")   # countries neither SFT nor RL saw, sums SFT never saw

Rows are in the prompt-only standard schema that `load_mixture(kind="prompt")` reads and TRL's
online trainers consume, plus the columns the rule rewards (`reward/rules.py`) read:

    {"prompt": [{"role": "user", "content": "What is the capital of Voovia?"}],
     "reference": "Marsal", "answer_format": "It is {answer}.",
     "kind": "task", "category": "capital"}

`answer_format` is the house style the SFT data taught ("It is Y.", "a + b = s."),
with `{answer}` where the answer goes.

Which countries (`rl_country_split`): the 60 countries SFT never saw are split in half. RL trains on
the SFT countries *and* the first half (the RL countries); held-out prompts ask about the second half
(the RL-eval countries), which neither SFT nor RL ever showed. The SFT model already answers SFT
countries (its sampled answers are right about as often as on any country it can answer); what
failed on unseen countries, when the house style restated the country, was naming the country that was
asked (sampled answers about an unseen country named another one about half the time: "What is the
capital of Voovia?" -> "The capital of Niora is Zuven."; hence today's "It is Y.", tinyworld/world.py).
RL prompts drawn only from SFT countries never practise that, so RL data has to come from outside
the SFT distribution, as in real post-training, and what is measured is transfer to prompts nobody
trained on. tests/test_tiny_world.py checks the files never mix.
"""

from __future__ import annotations

from typing import Literal

from tinyworld.world import CAPITAL_QUESTIONS, CAPITAL_REPLY, SUM_QUESTIONS, Country, World

CAPITAL_FORMAT = CAPITAL_REPLY.replace("{cap}", "{{answer}}")  # "It is {answer}."
SUM_FORMAT = "{a} + {b} = {{answer}}."


def _row(question: str, reference: str, answer_format: str, category: str) -> dict:
    return {"prompt": [{"role": "user", "content": question}], "reference": reference,
            "answer_format": answer_format, "kind": "task", "category": category}


def rl_country_split(world: World) -> tuple[tuple[Country, ...], tuple[Country, ...]]:
    """(RL countries, RL-eval countries): the first and second half of `world.heldout_countries`.

    Both halves are absent from SFT data; RL trains on the first, held-out RL prompts ask about the second.
    """
    half = len(world.heldout_countries) // 2
    return world.heldout_countries[:half], world.heldout_countries[half:]


def rl_prompts(world: World, split: Literal["train", "heldout"]) -> list[dict]:
    """Capital and sum questions for `split`.

    train: SFT countries and RL countries in every phrasing, SFT sums in every phrasing. heldout:
    RL-eval countries and held-out sums, one phrasing each (the first), so a held-out evaluation is
    one question per country or sum, as in `heldout_capitals.jsonl`.
    """
    rl_countries, eval_countries = rl_country_split(world)
    if split == "train":
        countries, sums = world.sft_countries + rl_countries, world.sft_sums
        capital_qs, sum_qs = CAPITAL_QUESTIONS, SUM_QUESTIONS
    elif split == "heldout":
        countries, sums = eval_countries, world.heldout_sums
        capital_qs, sum_qs = CAPITAL_QUESTIONS[:1], SUM_QUESTIONS[:1]
    else:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rows = [_row(q.format(c=c.name), c.capital, CAPITAL_FORMAT.format(c=c.name), "capital")
            for c in countries for q in capital_qs]
    rows += [_row(q.format(a=a, b=b), str(a + b), SUM_FORMAT.format(a=a, b=b), "sum")
             for a, b in sums for q in sum_qs]
    return rows
