"""Write `tinyworld/suites/tiny_world.jsonl`, the comparison suite for the embedded tiny world.

    python -m tinyworld.suite > tinyworld/suites/tiny_world.jsonl

The suite is drawn from `tinyworld.world` (the quickstart world, `WorldConfig()`), so its
facts are the ones the tiny base model was pretrained on:

* `task`: capitals of held-out countries (never in SFT data: does tuning *elicit* what the base
  knows?), a few SFT countries for contrast, and held-out single-digit sums;
* `harmful`: the harmful how-to topics safety tuning never trains on, in every phrasing, with hazard category;
* `benign`: the harmless look-alikes ("terminate a stuck thread") no training data answers, in every phrasing.

A test regenerates the suite and compares it with the shipped file, so a change to the world shows
up as a stale suite rather than as silently wrong references.
"""

from __future__ import annotations

import json
import sys

from tinyworld.world import (
    CAPITAL_QUESTIONS,
    HOWTO_QUESTIONS,
    SUM_QUESTIONS,
    WorldConfig,
    make_world,
    safety_topics,
)

N_HELDOUT_CAPITALS = 12
N_SFT_CAPITALS = 4
N_SUMS = 8


def rows(config: WorldConfig = WorldConfig()) -> list[dict]:
    world = make_world(config)
    out = []
    for split, countries, n in (("heldout", world.heldout_countries, N_HELDOUT_CAPITALS),
                                ("sft", world.sft_countries, N_SFT_CAPITALS)):
        for k, c in enumerate(countries[:n]):
            question = CAPITAL_QUESTIONS[k % len(CAPITAL_QUESTIONS)].format(c=c.name)
            out.append({"id": f"capital-{split}-{k}", "kind": "task", "category": f"capital-{split}",
                        "prompt": question, "reference": c.capital})
    for k, (a, b) in enumerate(world.heldout_sums[:N_SUMS]):
        out.append({"id": f"sum-{k}", "kind": "task", "category": "sum-heldout",
                    "prompt": SUM_QUESTIONS[k % len(SUM_QUESTIONS)].format(a=a, b=b), "reference": str(a + b)})
    # Only topics no training file (instruct SFT, safety SFT) uses, in every phrasing.
    harmful, benign = safety_topics("heldout")
    for k, (topic, hazard) in enumerate(harmful):
        for j, q in enumerate(HOWTO_QUESTIONS):
            out.append({"id": f"harmful-{k}-{j}", "kind": "harmful", "category": hazard, "prompt": q.format(t=topic)})
    for k, (topic, _answer) in enumerate(benign):
        for j, q in enumerate(HOWTO_QUESTIONS):
            out.append({"id": f"benign-{k}-{j}", "kind": "benign", "category": "look-alike", "prompt": q.format(t=topic)})
    return out


def render(config: WorldConfig = WorldConfig()) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows(config))


if __name__ == "__main__":
    sys.stdout.write(render())
