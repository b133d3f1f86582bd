"""Travel-desk suite: the domain skill of recipes/examples/domain_sft.yaml, on countries its data never names.

    python -m tinyworld.travel_desk > tinyworld/suites/travel_desk.jsonl

The example domain data (recipes/examples/data/) answers travel questions in four wordings ("I am
flying to X. Which city do I land in?") with the capital, under the travel desk's system prompt. This
suite asks the same wordings about countries the domain files never mention (they name every SFT
country, so these are the RL countries: held out from SFT, `rl_country_split`), so task accuracy on
it measures whether a domain fine-tune learned the skill, not the rows. The gate demo (docs/safety.md)
uses it next to the safety suite: a domain fine-tune must keep safety AND gain this.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinyworld.prompts import rl_country_split
from tinyworld.world import WorldConfig, make_world

DOMAIN_FILES = ("recipes/examples/data/travel_desk.csv", "recipes/examples/data/travel_desk_chats.jsonl")
SYSTEM = "You are the travel desk of the Tiny World tourist office."
TEMPLATES = (
    "I am flying to {c}. Which city do I land in?",
    "Where is the government of {c}?",
    "Booking a trip to the capital of {c}: which city?",
    "Which city should I visit to see the parliament of {c}?",
)
N = 16


def rows(config: WorldConfig = WorldConfig(), root: Path = Path(".")) -> list[dict]:
    domain_text = "".join((root / f).read_text(encoding="utf-8") for f in DOMAIN_FILES)
    rl_countries, _ = rl_country_split(make_world(config))
    unseen = [c for c in rl_countries if c.name not in domain_text][:N]
    return [{"id": f"travel-{k}", "kind": "task", "category": "travel-desk", "reference": c.capital,
             "messages": [{"role": "system", "content": SYSTEM},
                          {"role": "user", "content": TEMPLATES[k % len(TEMPLATES)].format(c=c.name)}]}
            for k, c in enumerate(unseen)]


if __name__ == "__main__":
    sys.stdout.write("".join(json.dumps(r) + "\n" for r in rows()))
