"""Score (prompt, response) pairs with a scalar reward model, in batches.

    from reward import score
    rewards = score("outputs/tiny-rm", ["What is 2 + 3?"], ["2 + 3 = 5."], batch_size=32)

A reward model is an `AutoModelForSequenceClassification` checkpoint with `num_labels=1` (what
`reward/train.py` and TRL's `RewardTrainer` save). It reads a pair as it was trained on it: the
prompt (a string is one user turn; or a list of messages) and the response as the assistant turn,
rendered and tokenized by its tokenizer's chat template (Llama 3's when it has none), exactly as
`RewardTrainer` tokenizes `prompt + chosen`. The score is the head's output at the last non-pad
token. Rows are right-padded, so a score does not depend on the batch it was computed in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE, LLAMA3_SPECIAL_TOKENS
from corral.errors import CorralError


class RewardModelError(CorralError, ValueError):
    """A reward checkpoint (or input) that cannot be scored; the message is one line saying which and why."""


def _not_reward(where, what: str) -> RewardModelError:
    return RewardModelError(
        f"{where}: not a reward model ({what}); expected an AutoModelForSequenceClassification "
        "checkpoint with num_labels=1"
    )


def check_reward_checkpoint(path: str | Path) -> None:
    """Raise `RewardModelError` unless `path` holds a sequence-classification checkpoint (reads config only)."""
    path = Path(path)
    config_file = path / "config.json"
    if (path / "adapter_config.json").is_file() and not config_file.is_file():
        raise RewardModelError(f"{path}: a LoRA adapter; merge it into its base and save a full reward checkpoint")
    if not config_file.is_file():
        raise RewardModelError(f"{path}: no config.json (not a checkpoint directory)")
    config = json.loads(config_file.read_text())
    archs = config.get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in archs):
        raise _not_reward(path, f"architectures {archs}")
    num_labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if num_labels != 1:
        raise _not_reward(path, f"num_labels={num_labels}")


def load_reward_model(path: str | Path, device: str = "cpu", dtype: str = "auto"):
    """(model, tokenizer) for a reward checkpoint directory, checked before any weights are read."""
    check_reward_checkpoint(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, dtype=dtype if dtype == "auto" else getattr(torch, dtype)
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.to(device).eval(), tokenizer


def _as_messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def conversation_ids(tokenizer, prompt, response: str, max_length: int) -> list[int]:
    """Token ids of the chat-formatted (prompt, response); the start is dropped if too long (the end scores)."""
    messages = _as_messages(prompt) + [{"role": "assistant", "content": response}]
    template = None if tokenizer.chat_template else LLAMA3_CHAT_TEMPLATE
    ids = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True)["input_ids"]
    return list(ids)[-max_length:]


def pad_id(tokenizer) -> int:
    """The padding id: the tokenizer's, else Llama 3's reserved pad token, else EOS (never used as content)."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    vocab = tokenizer.get_vocab()
    return vocab.get(LLAMA3_SPECIAL_TOKENS["pad"], tokenizer.eos_token_id)


def _check_model(model) -> None:
    name = type(model).__name__
    if not name.endswith("ForSequenceClassification"):
        raise _not_reward(name, "model class")
    if model.config.num_labels != 1:
        raise _not_reward(name, f"num_labels={model.config.num_labels}")


@torch.no_grad()
def score(
    model_or_path,
    prompts: Sequence,
    responses: Sequence[str],
    *,
    tokenizer=None,
    batch_size: int = 16,
    max_length: int | None = None,
    device: str = "cpu",
) -> list[float]:
    """One reward per (prompt, response); `prompts` are strings or message lists.

    `model_or_path` is a checkpoint directory (its own tokenizer is used unless `tokenizer` is given)
    or a loaded sequence-classification model (then `tokenizer` is required; `device` applies only to
    a path). Sequences longer than `max_length` (default: the model's context) keep their end, where
    the score is read.
    """
    if isinstance(model_or_path, (str, Path)):
        model, own_tokenizer = load_reward_model(model_or_path, device=device)
        tokenizer = tokenizer or own_tokenizer
    else:
        model = model_or_path
        _check_model(model)
        if tokenizer is None:
            raise RewardModelError("score: pass tokenizer= with a loaded model (or give a checkpoint path)")
    if len(prompts) != len(responses):
        raise RewardModelError(f"score: {len(prompts)} prompts but {len(responses)} responses")
    if batch_size < 1:
        raise RewardModelError(f"score: batch_size must be >= 1, got {batch_size}")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_id(tokenizer)  # the head reads the last token that is not padding
    pad = model.config.pad_token_id
    was_training = model.training
    model.eval()
    max_length = max_length or getattr(model.config, "max_position_embeddings", 4096)
    rows = [conversation_ids(tokenizer, p, r, max_length) for p, r in zip(prompts, responses)]
    scores: list[float] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for r, row in enumerate(batch):
            ids[r, : len(row)] = torch.tensor(row)
            attn[r, : len(row)] = 1
        logits = model(input_ids=ids.to(model.device), attention_mask=attn.to(model.device)).logits
        scores += logits[:, 0].float().cpu().tolist()
    model.train(was_training)
    return scores


def _split_pair_side(prompt, answer) -> tuple:
    """(prompt, response text) for one side of a pair: earlier answer turns join the prompt."""
    if isinstance(answer, str):
        return prompt, answer
    return _as_messages(prompt) + list(answer[:-1]), answer[-1]["content"]


def pairwise(model_or_path, rows: Sequence[dict], *, tokenizer=None, batch_size: int = 16,
             device: str = "cpu") -> tuple[list[float], list[float]]:
    """(chosen rewards, rejected rewards) of standard preference rows (`prompt`, `chosen`, `rejected`)."""
    if isinstance(model_or_path, (str, Path)):
        model, own = load_reward_model(model_or_path, device=device)
        return pairwise(model, rows, tokenizer=tokenizer or own, batch_size=batch_size)
    out = []
    for side in ("chosen", "rejected"):
        prompts, responses = zip(*(_split_pair_side(r["prompt"], r[side]) for r in rows)) if rows else ((), ())
        out.append(score(model_or_path, prompts, responses, tokenizer=tokenizer, batch_size=batch_size))
    return out[0], out[1]
