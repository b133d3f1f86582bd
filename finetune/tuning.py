"""Which weights train when a base checkpoint becomes a chat model: chat-token rows under LoRA, frozen embeddings."""

from __future__ import annotations

import logging

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def peft_trainable_tokens(peft_config, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokens: list[str]) -> None:
    """With LoRA the embedding matrix is frozen; also train the rows of the re-initialised chat tokens.

    Uses peft's `trainable_token_indices` (only those rows get a trainable delta, tied lm_head rows
    follow), which is far cheaper than `modules_to_save=["embed_tokens", "lm_head"]` on a 128k vocab.
    """
    ids = sorted(tokenizer.convert_tokens_to_ids(t) for t in tokens)
    name = "embed_tokens" if any(n.endswith("embed_tokens") for n, _ in model.named_modules()) else None
    if name is None:
        logger.warning("no embed_tokens module found; chat-token rows stay frozen under LoRA")
        return
    peft_config.trainable_token_indices = {name: ids}
    logger.info("LoRA also trains embedding rows of %s (trainable_token_indices)", tokens)


def freeze_embeddings_except(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokens: list[str]) -> None:
    """Full fine-tuning: train only the embedding (and untied lm_head) rows of `tokens`.

    Why: with the embedding matrix trainable, SFT on "The capital of A is B" moves the rows of A and B
    (input and, tied, output), and the tuned model then answers questions about countries it never
    saw in SFT with the ones it did ("The capital of <seen country> is ..."). On the tiny world this
    alone moves held-out accuracy from 68% to 87% (docs/results-tiny-world.md, "SFT on a base").
    A gradient mask keeps the model's structure unchanged, so the checkpoint stays a plain Llama.
    With AdamW a zero gradient gives a zero update; weight decay (0 by default) would still shrink rows.
    """
    ids = [tokenizer.convert_tokens_to_ids(t) for t in tokens]
    params = {id(p): p for p in (model.get_input_embeddings().weight, model.get_output_embeddings().weight)}
    for p in params.values():
        mask = torch.zeros(p.shape[0], 1, dtype=p.dtype, device=p.device)
        mask[ids] = 1
        if not ids:
            p.requires_grad_(False)
        else:
            p.register_hook(lambda g, mask=mask: g * mask)


def patch_trainable_token_head(model) -> None:
    """TRL 1.16's fused LM head reads `lm_head.bias`; peft's TrainableTokensWrapper (tied lm_head with
    `trainable_token_indices`) only forwards `.weight`, so training fails with AttributeError. A Llama
    lm_head has no bias: expose `bias = None` on the wrapper. `.weight` already returns the merged
    (trainable) rows, so the fused head trains the token rows correctly."""
    head = model.get_output_embeddings()
    if head is not None and not hasattr(head, "bias"):
        head.bias = None
