"""Answer accuracy after a long page of notes, for models with and without context extension.

    python -m data_prep.tiny_long_context --rows 30 --seed 1 --out outputs/scale-long-context-data/eval.jsonl
    python benchmarks/long_context_needle.py outputs/scale-long-context-data/eval.jsonl \
        sft=outputs/tiny-sft-full long=outputs/scale-long-context

Each row's user turn is ~1,700 tokens of notes and a capital question (data_prep/tiny_long_context.py);
a reply counts as correct when it names the right capital (greedy decoding, 16 new tokens). Prints
accuracy per model and the positions the prompts reach next to each model's max_position_embeddings.
"""

from __future__ import annotations

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def accuracy(model_dir: str, rows: list[dict]) -> tuple[float, int, int]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    correct, longest = 0, 0
    for row in rows:
        ids = tok.apply_chat_template(row["messages"][:1], add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)["input_ids"]
        longest = max(longest, ids.shape[1])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
        reply = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        capital = row["messages"][1]["content"].rsplit(" ", 1)[-1].rstrip(".")
        correct += capital in reply
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
