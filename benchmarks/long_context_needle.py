"""Answer accuracy after a long page of notes, for models with and without context extension.

    python -m tinyworld.long_context --rows 30 --seed 1 --out outputs/scale-long-context-data/eval.jsonl
    python benchmarks/long_context_needle.py outputs/scale-long-context-data/eval.jsonl \
        sft=outputs/tiny-sft-full long=outputs/scale-long-context

Each row's user turn is ~1,700 tokens of notes and a capital question (tinyworld/long_context.py);
a reply counts as correct when it names the right capital (greedy decoding by `evals.generation`, 16
new tokens, up to the end of the turn). Prints accuracy per model and the positions the prompts reach
next to each model's max_position_embeddings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corral.loading import load_model  # noqa: E402
from evals.formatting import chat_prompt  # noqa: E402
from evals.generation import generate  # noqa: E402


def accuracy(model_dir: str, rows: list[dict]) -> tuple[float, int, int]:
    model, tok = load_model(model_dir, dtype="float32")
    prompts = [chat_prompt(tok, row["messages"][:1]) for row in rows]
    replies = generate(model, tok, prompts, add_special_tokens=False, max_new_tokens=16)
    capitals = [row["messages"][1]["content"].rsplit(" ", 1)[-1].rstrip(".") for row in rows]
    correct = sum(capital in reply.text for capital, reply in zip(capitals, replies))
    longest = max(len(reply.prompt_ids) for reply in replies)
    return correct / len(rows), longest, model.config.max_position_embeddings


def main(argv: list[str]) -> None:
    rows = [json.loads(line) for line in open(argv[0], encoding="utf-8")]
    print(f"{len(rows)} questions")
    for spec in argv[1:]:
        name, path = spec.split("=", 1)
        acc, longest, limit = accuracy(path, rows)
        print(f"{name:12s} {acc:6.1%}  (prompts up to {longest} tokens; max_position_embeddings {limit})")


if __name__ == "__main__":
    main(sys.argv[1:])
