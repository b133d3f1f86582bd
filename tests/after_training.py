"""Trained runs for the after-training tests (chat, export, arena, tracking), built once per session.

One LoRA SFT run on the seconds-sized tiny base (tests/conftest.py `tiny_small`), logging to
TensorBoard, with its merged model (`merged/`), shared by every test module that needs a run.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_RUNS: dict[str, Path] = {}


def restated_capitals(src: Path, dst: Path) -> Path:
    """`src` with every capital answer "It is Y." written "The capital of X is Y.": 40 LoRA steps of the
    0.11M-parameter test base on the short house style learn only to end the turn (greedy answers are all
    `<|eot_id|>`), and the tests below need a model that says something; the long, shared prefix gives it one."""
    import re

    rows = []
    for line in src.read_text().splitlines():
        row = json.loads(line)
        turns = row["messages"]
        for i, turn in enumerate(turns):
            match = re.fullmatch(r"It is (\w+)\.", turn["content"])
            country = re.search(r"capital of (\w+)", turns[i - 1]["content"]) if i else None
            if turn["role"] == "assistant" and match and country:
                turn["content"] = f"The capital of {country.group(1)} is {match.group(1)}."
        rows.append(json.dumps(row))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(rows) + "\n")
    return dst


def lora_run(tiny_small: Path, root: Path) -> Path:
    """`root/sft-lora`: 40 LoRA SFT steps (merged copy in `merged/`), report_to tensorboard."""
    if "lora" not in _RUNS:
        from finetune.sft import main as sft_main

        out = Path(root) / "sft-lora"
        data = restated_capitals(tiny_small / "tiny-world/sft_train.jsonl", Path(root) / "sft_restated.jsonl")
        sft_main([str(REPO / "recipes/tiny/sft/lora.yaml"),
                  "--model_name_or_path", str(tiny_small / "tiny-base"),
                  "--datasets", f"[{{path: {data}}}]",
                  "--output_dir", str(out), "--max_steps", "40", "--logging_steps", "5", "--save_strategy", "no",
                  "--learning_rate", "3e-3", "--report_to", "tensorboard", "--merge_adapter", "true"])
        _RUNS["lora"] = out
    return _RUNS["lora"]


def heldout_prompts(tiny_small: Path, n: int = 8) -> list[list[dict]]:
    """The first `n` held-out capital questions of the small world, as chat messages."""
    path = tiny_small / "tiny-world/heldout_capitals.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:n]
    return [r["messages"] if "messages" in r else [{"role": "user", "content": r["prompt"]}] for r in rows]
