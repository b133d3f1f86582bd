"""Long-context conversations for the tiny world: find one fact on a long page of notes.

    python -m tinyworld.long_context --out outputs/tiny-world/long_context.jsonl
    python -m tinyworld.long_context --small --rows 8 --chars 3000 --out /tmp/long.jsonl   # tests

Each row is a `messages` conversation whose user turn is a page of notes (capital and sum
statements, shuffled) followed by a question about one country on the page; the assistant answers
"The capital of X is Y." The asked fact sits at a random depth of the page, so answering means
attending across the whole context (the "needle in a haystack" layout). A page of `chars`
characters is about chars / 3.5 tokens with the tiny tokenizer: the default 6,000 (~1,700 tokens) is
more than three times the tiny base's 512 positions and fits `max_length: 2048`
(recipes/tiny/long_context/sft.yaml). Only SFT countries and sums appear, so the held-out
evaluation stays untouched.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from data_prep.io import write_jsonl
from tinyworld.world import CAPITAL_QUESTIONS, CAPITAL_STATEMENTS, SUM_STATEMENTS, World, WorldConfig, make_world

INTRO = "Here are my notes:\n\n"
ASK = "\n\nUsing only the notes above: {q}"


def _page(rng: random.Random, world: World, needle: str, chars: int) -> str:
    """Shuffled statements about SFT countries and sums, `needle` at a random depth, ~`chars` long."""
    lines: list[str] = []
    while sum(len(x) + 1 for x in lines) < chars:
        if rng.random() < 0.7:
            c = rng.choice(world.sft_countries)
            lines.append(rng.choice(CAPITAL_STATEMENTS).format(c=c.name, cap=c.capital))
        else:
            a, b = rng.choice(world.sft_sums)
            lines.append(rng.choice(SUM_STATEMENTS).format(a=a, b=b, s=a + b))
    lines.insert(rng.randrange(len(lines) + 1), needle)
    return "\n".join(lines)


def long_context_conversations(world: World, rows: int = 200, chars: int = 6000, seed: int = 0) -> list[dict]:
    """`rows` conversations, each a ~`chars`-character page of notes and one capital question about it."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        c = rng.choice(world.sft_countries)
        needle = rng.choice(CAPITAL_STATEMENTS).format(c=c.name, cap=c.capital)
        question = rng.choice(CAPITAL_QUESTIONS).format(c=c.name)
        out.append({"messages": [
            {"role": "user", "content": INTRO + _page(rng, world, needle, chars) + ASK.format(q=question)},
            {"role": "assistant", "content": f"The capital of {c.name} is {c.capital}."},
        ]})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinyworld.long_context", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSONL file to write (`messages` rows)")
    parser.add_argument("--small", action="store_true", help="the small world of the tests (tinyworld.build --small)")
    parser.add_argument("--rows", type=int, default=200, help="conversations to write (default 200)")
    parser.add_argument("--chars", type=int, default=6000, help="characters of notes per conversation (default 6000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the pages and questions (default 0)")
    args = parser.parse_args(argv)
    world = make_world(WorldConfig.small() if args.small else WorldConfig())
    rows = long_context_conversations(world, args.rows, args.chars, args.seed)
    write_jsonl(Path(args.out), rows)
    print(f"wrote {len(rows)} conversations to {args.out}")


if __name__ == "__main__":
    main()
