"""Detect chat-template special tokens a base checkpoint never trained, and initialise them.

A Llama 3 *base* checkpoint has `<|start_header_id|>`, `<|end_header_id|>` and `<|eot_id|>` in its
vocabulary but never saw them in pretraining, so their embedding rows are whatever initialisation
(or the pull of the softmax through a tied lm_head) left there. SFT must then learn both the chat
format and the task from a few thousand examples; on the tiny world that collapses held-out
accuracy to ~0% (the model memorises the SFT facts instead of retrieving pretraining knowledge).
This is the field's known base->instruct failure (unsloth#915, torchtune#2429, LlamaFactory#5834).

Detection: a row is "untrained" when it sits inside the tight cluster formed by the rows of tokens
that are certainly unused (`<|reserved_special_token_*|>`: all get the same softmax pull through a
tied lm_head, or no gradient at all), or when its norm is tiny (Meta's base checkpoints hold
near-zero rows there). On the tiny base the chat rows lie 0.18-0.20 from that cluster's centre
(radius 0.15) and every token the corpus uses lies > 2.0 away.

Handling (`special_token_init`):
* ``"related"`` (default): copy into each untrained chat token the embedding of ordinary text with
  the same role in web dialogues - a turn opener, a role/colon separator, a newline - so the rendered
  chat looks to the base model like a dialogue layout it has read (``[user]\\n\\nQ\\n[assistant]\\n\\n``).
  The rows are still trained by SFT; they just start somewhere meaningful. When the chat template
  writes Llama 3.1's tool markers (`chat_template: llama3.1`), `<|python_tag|>` and `<|eom_id|>` are
  checked and initialised the same way; a plain chat run leaves them as they are.
* ``"mean"``: the mean of all trained rows (what unsloth does; did not help on the tiny world).
* ``"none"``: leave the rows as they are (reproduces the failure).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

LLAMA3_CHAT_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# Llama 3.1's tool-call markers; initialised only when the chat template writes them (chat_template: llama3.1),
# so a plain chat run leaves those rows as they were.
LLAMA31_TOOL_TOKENS = ("<|python_tag|>", "<|eom_id|>")
# Text each chat token stands for in ad-hoc web dialogue layouts ("[user] hi\n[assistant] hello"); a call
# opens markup ("<q>...</q>" in web Q&A) and ends its message like a turn does.
RELATED_TEXT = {
    "<|start_header_id|>": "[",
    "<|end_header_id|>": "]",
    "<|eot_id|>": "\n",
    "<|python_tag|>": "<",
    "<|eom_id|>": "\n",
}
INIT_CHOICES = ("related", "mean", "none")


@dataclass(frozen=True)
class TokenRowReport:
    token: str
    token_id: int
    norm: float
    untrained: bool


def _reference_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """(ids of tokens surely unused in pretraining, ids of ordinary text tokens)."""
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    reserved = [i for t, i in tokenizer.get_vocab().items() if t.startswith("<|reserved_special_token")]
    ordinary = [i for i in range(len(tokenizer)) if i not in special]
    return reserved, ordinary


def inspect_chat_tokens(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokens: tuple[str, ...] = LLAMA3_CHAT_TOKENS
) -> list[TokenRowReport]:
    """Classify each chat token's input-embedding row as trained or untrained."""
    emb = model.get_input_embeddings().weight.detach().float()
    reserved, ordinary = _reference_ids(tokenizer)
    norms = emb.norm(dim=1)
    ordinary_norm = norms[ordinary].median().item()
    if reserved:
        centroid = emb[reserved].mean(0)
        # Unused rows all receive the same pull (or none), so they stay in a tight cluster; a row is
        # untrained when it sits inside that cluster (2x its radius). Trained rows are far outside.
        radius = (emb[reserved] - centroid).norm(dim=1).max().item()
    reports = []
    for tok in tokens:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is None or tid == tokenizer.unk_token_id or tid >= emb.shape[0]:
            continue
        n = norms[tid].item()
        untrained = n < 0.05 * ordinary_norm
        if reserved:
            untrained = untrained or (emb[tid] - centroid).norm().item() <= 2 * radius + 1e-6
        reports.append(TokenRowReport(tok, tid, n, untrained))
    return reports


def template_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[str, ...]:
    """The special tokens to check: Llama 3's chat tokens, and the tool markers if the chat template writes them."""
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    return LLAMA3_CHAT_TOKENS + tuple(t for t in LLAMA31_TOOL_TOKENS if t in template)


@torch.no_grad()
def initialize_untrained_tokens(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    strategy: str = "related",
    related_text: dict[str, str] | None = None,
) -> list[str]:
    """Re-initialise untrained chat-token rows in place; returns the tokens changed (for the log)."""
    if strategy not in INIT_CHOICES:
        raise ValueError(f"special_token_init must be one of {INIT_CHOICES}, got {strategy!r}")
    reports = [r for r in inspect_chat_tokens(model, tokenizer, template_tokens(tokenizer)) if r.untrained]
    if strategy == "none" or not reports:
        return []
    related_text = {**RELATED_TEXT, **(related_text or {})}
    inp = model.get_input_embeddings().weight
    out_layer = model.get_output_embeddings()
    untied = out_layer is not None and out_layer.weight.data_ptr() != inp.data_ptr()
    _, ordinary = _reference_ids(tokenizer)
    changed = []
    for r in reports:
        if strategy == "mean":
            src = torch.tensor(ordinary)
        else:
            src = torch.tensor(tokenizer.encode(related_text[r.token], add_special_tokens=False))
        inp[r.token_id] = inp[src].mean(0)
        if untied:
            out_layer.weight[r.token_id] = out_layer.weight[src].mean(0)
        changed.append(r.token)
    logger.info("special_token_init=%s: re-initialised untrained rows %s", strategy, changed)
    return changed
