"""Standard rows -> token ids and loss masks for SFT, with guards for the field's known failures.

corral tokenizes conversations itself (TRL's SFTTrainer accepts pre-tokenized `input_ids` +
`assistant_masks` and builds labels from them) so it can check, before training starts:

* every sample has a non-empty assistant mask (else it trains on nothing);
* every assistant turn's `<|eot_id|>` is inside the mask - otherwise the model never learns to
  stop, and the loss still looks healthy;
* the chat template renders byte for byte like the official Llama 3 template;
* every tool call and tool definition of a row appears in the rendered text (the official Llama 3
  template renders only role and content, so a tool call would silently train as an empty answer;
  `chat_template: llama3.1` renders them, a tool-calling turn ending with a trained `<|eom_id|>`);
* how many samples exceed `max_length`, reported (count and share) and never cut silently;
  `drop_long_samples` drops them instead of truncating.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from datasets import Dataset, concatenate_datasets
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from corral.chat_templates import (
    END_OF_TURN_TOKENS,
    LLAMA3_CHAT_TEMPLATE,
    LLAMA3_TRAINING_CHAT_TEMPLATE,
    LLAMA31_CHAT_TEMPLATE,
    LLAMA31_TRAINING_CHAT_TEMPLATE,
    render_llama3,
)
from corral.errors import CorralDataError

logger = logging.getLogger(__name__)


class SFTDataError(CorralDataError):
    """A training sample that would train the model wrongly (no loss tokens, no end-of-turn...)."""


def training_template(tokenizer: PreTrainedTokenizerBase) -> str:
    """The template used to tokenize: the tokenizer's own, or its twin with `{% generation %}` markers."""
    tmpl = tokenizer.chat_template
    if tmpl == LLAMA3_CHAT_TEMPLATE:
        return LLAMA3_TRAINING_CHAT_TEMPLATE
    if tmpl == LLAMA31_CHAT_TEMPLATE:
        return LLAMA31_TRAINING_CHAT_TEMPLATE
    if "{% generation %}" in tmpl or "{%- generation %}" in tmpl:
        return tmpl
    from trl.chat_template_utils import get_training_chat_template

    patched = get_training_chat_template(tokenizer)
    if patched is None:
        raise SFTDataError(
            "chat template has no {% generation %} markers and TRL has no training twin for it; "
            "set assistant_only_loss: false or give chat_template: a .jinja file with generation markers"
        )
    return patched


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int:
    vocab = tokenizer.get_vocab()
    return vocab["<|eot_id|>"] if "<|eot_id|>" in vocab else tokenizer.eos_token_id


def end_of_turn_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Ids that close an assistant turn: `<|eot_id|>`, and Llama 3.1's `<|eom_id|>` after a tool call."""
    vocab = tokenizer.get_vocab()
    return {end_of_turn_id(tokenizer)} | {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab}


def check_template_matches_official(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> None:
    """The tokenizer's template and its training twin both render exactly what Meta's template renders."""
    want = render_llama3(messages, bos_token=tokenizer.bos_token)
    for name, tmpl in (("chat template", tokenizer.chat_template), ("training template", LLAMA3_TRAINING_CHAT_TEMPLATE)):
        got = tokenizer.apply_chat_template(messages, tokenize=False, chat_template=tmpl)
        if got != want:
            raise SFTDataError(f"{name} renders differently from the official Llama 3 template: {got[:80]!r}... vs {want[:80]!r}...")


def check_tools_rendered(row: dict, text: str, where: str) -> None:
    """Every tool the row calls or declares appears in the rendered `text`. The official Llama 3 (3.0)
    template renders only role and content, so a tool-calling turn would train as an empty answer."""
    # Llama 3.1's code interpreter call is rendered as its code alone, without the tool's name.
    calls = [fn["arguments"].get("code") if fn["name"] == "code_interpreter" else fn["name"]
             for m in row["messages"] for fn in (c["function"] for c in m.get("tool_calls") or [])]
    declared = [t.get("function", t).get("name") for t in row.get("tools") or [] if isinstance(t, dict)]
    missing = [name for name in dict.fromkeys(calls + declared) if isinstance(name, str) and name not in text]
    if missing:
        raise SFTDataError(
            f"{where}: the chat template does not render tool calls or tool definitions ({', '.join(missing)} "
            "missing from the text; the official Llama 3 template drops them); give chat_template: a .jinja file "
            "that renders tool calls and has {% generation %} markers, or chat_template: llama3.1 (Meta's Llama 3.1 "
            "tool format, for Llama 3.1+ tokenizers)")


def _describe(row: dict, index: int) -> str:
    first_user = next((m["content"] for m in row.get("messages", []) if m["role"] == "user"), "")
    return f"training row {index + 1} (user: {first_user[:40]!r})"


@dataclass
class TokenizedSFT:
    dataset: Dataset
    n_long: int
    n_dropped: int
    lengths: list[int]

    def summary(self, max_length: int | None) -> str:
        n = len(self.lengths) + self.n_dropped
        share = self.n_long / n if n else 0.0
        tail = f"dropped {self.n_dropped}" if self.n_dropped else "truncated to max_length"
        return (f"{n} samples, {sum(self.lengths)} tokens; {self.n_long} ({share:.1%}) longer than "
                f"max_length={max_length} ({tail if self.n_long else 'none cut'})")


def tokenize_conversations(
    rows: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    *,
    assistant_only_loss: bool = True,
    max_length: int | None = None,
    drop_long_samples: bool = False,
) -> TokenizedSFT:
    """Tokenize `messages` rows with assistant masks and run the guards. Pure given the tokenizer."""
    tmpl = training_template(tokenizer) if assistant_only_loss else tokenizer.chat_template
    eot = end_of_turn_id(tokenizer)
    ends = end_of_turn_ids(tokenizer)
    kept, lengths, n_long, n_dropped = [], [], 0, 0
    for i, row in enumerate(tqdm(rows, desc="tokenizing", unit=" rows", disable=len(rows) < 10_000, mininterval=1.0)):
        msgs = row["messages"]
        enc = tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True, chat_template=tmpl,
                                            return_assistant_tokens_mask=assistant_only_loss, tools=row.get("tools"))
        ids = list(enc["input_ids"])
        if row.get("tools") or any(m.get("tool_calls") for m in msgs):
            check_tools_rendered(row, tokenizer.decode(ids), _describe(row, i))
        mask = list(enc["assistant_masks"]) if assistant_only_loss else [1] * len(ids)
        n_assistant = sum(m["role"] == "assistant" for m in msgs)
        if assistant_only_loss and not any(mask):
            raise SFTDataError(f"{_describe(row, i)}: no assistant tokens to train on (empty loss mask)")
        trained_eots = sum(1 for t, m in zip(ids, mask) if t in ends and m)
        if trained_eots < n_assistant:
            raise SFTDataError(
                f"{_describe(row, i)}: {n_assistant - trained_eots} assistant turn(s) end without a trained "
                f"{tokenizer.convert_ids_to_tokens(eot)}; the model would never learn to stop (fix the chat template)"
            )
        if max_length is not None and len(ids) > max_length:
            n_long += 1
            if drop_long_samples:
                n_dropped += 1
                continue
        kept.append({"input_ids": ids, "assistant_masks": mask})
        lengths.append(len(ids))
    if not kept:
        raise SFTDataError(f"no training samples left (all {n_dropped} longer than max_length={max_length})")
    return TokenizedSFT(Dataset.from_list(kept), n_long, n_dropped, lengths)


def tokenize_text(rows: list[dict], tokenizer: PreTrainedTokenizerBase, max_length: int | None = None,
                  drop_long_samples: bool = False) -> TokenizedSFT:
    """Plain `text` rows (continued pretraining): BOS + text + EOS, every token trained."""
    kept, lengths, n_long, n_dropped = [], [], 0, 0
    for row in rows:
        ids = tokenizer(row["text"])["input_ids"] + [tokenizer.eos_token_id]
        if max_length is not None and len(ids) > max_length:
            n_long += 1
            if drop_long_samples:
                n_dropped += 1
                continue
        kept.append({"input_ids": ids})
        lengths.append(len(ids))
    if not kept:
        raise SFTDataError(f"no training samples left (all {n_dropped} longer than max_length={max_length})")
    return TokenizedSFT(Dataset.from_list(kept), n_long, n_dropped, lengths)


def with_replay(conversations: TokenizedSFT, text: TokenizedSFT) -> TokenizedSFT:
    """Tokenized conversations followed by tokenized plain-text rows whose every token is trained (an all-ones
    `assistant_masks`); the trainer's sampler shuffles them together."""
    masks = [[1] * n for n in text.lengths]
    replayed = text.dataset.add_column("assistant_masks", masks)
    return TokenizedSFT(concatenate_datasets([conversations.dataset, replayed]), conversations.n_long + text.n_long,
                        conversations.n_dropped + text.n_dropped, conversations.lengths + text.lengths)
