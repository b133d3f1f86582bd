"""Score (prompt, response) pairs with a scalar reward model.

The reward model is an `AutoModelForSequenceClassification` checkpoint with `num_labels=1` (what TRL's
`RewardTrainer` saves). It reads the conversation as it was trained on it: the user turn(s) and the
response as the assistant turn, rendered by its tokenizer's chat template (Llama 3's if it has none),
and its score is the logit at the last non-pad token. Rows are right-padded, so a score does not
depend on the batch it was computed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from data_prep.chat_template import LLAMA3_CHAT_TEMPLATE


class RewardModelError(ValueError):
    """A reward checkpoint that cannot score; the message is one line saying which and why."""


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
    return model.to(device), tokenizer


def _as_messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def conversation_ids(tokenizer, prompt, response: str, max_length: int) -> list[int]:
    """Token ids of the chat-formatted (prompt, response); the start is dropped if too long (the end scores)."""
    messages = _as_messages(prompt) + [{"role": "assistant", "content": response}]
    template = None if tokenizer.chat_template else LLAMA3_CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    return tokenizer(text, add_special_tokens=False).input_ids[-max_length:]


@torch.no_grad()
def score(model_dir_or_model, tokenizer=None, prompts=(), responses=(), batch_size: int = 16) -> list[float]:
    """One reward per (prompt, response); `prompts` are strings or message lists.

    `model_dir_or_model` is a checkpoint directory (its tokenizer is used when `tokenizer` is None)
    or an already loaded sequence-classification model.
    """
    if isinstance(model_dir_or_model, (str, Path)):
        model, own_tokenizer = load_reward_model(model_dir_or_model)
        tokenizer = tokenizer or own_tokenizer
    else:
        model = model_dir_or_model
    name = type(model).__name__
    if not name.endswith("ForSequenceClassification"):
        raise _not_reward(name, "model class")
    if model.config.num_labels != 1:
        raise _not_reward(name, f"num_labels={model.config.num_labels}")
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad  # the head pools the last token that is not padding
    model.eval()
    max_length = getattr(model.config, "max_position_embeddings", 4096)
    rows = [conversation_ids(tokenizer, p, r, max_length) for p, r in zip(prompts, responses)]
    scores: list[float] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), model.config.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for r, row in enumerate(batch):
            ids[r, : len(row)] = torch.tensor(row)
            attn[r, : len(row)] = 1
        logits = model(input_ids=ids.to(model.device), attention_mask=attn.to(model.device)).logits
        scores += logits[:, 0].float().cpu().tolist()
    return scores
