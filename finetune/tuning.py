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
    The mask is hooked onto the weights a forward pass computes with, not onto the parameters: FSDP2
    (`fully_shard`) swaps each parameter for a sharded one and computes with a gathered copy, so a hook
    on the original parameter would never fire and every row would train. The model's own pre-hook
    catches an lm_head that a fused loss reads without calling it; the embeddings' catch their own
    FSDP unit, gathered only when it runs.
    """
    ids = [tokenizer.convert_tokens_to_ids(t) for t in tokens]
    embeddings = (model.get_input_embeddings(), model.get_output_embeddings())
    if not ids:
        for module in embeddings:
            module.weight.requires_grad_(False)
        return
    masks = []
    for module in embeddings:
        mask = torch.zeros(module.weight.shape[0], 1, dtype=module.weight.dtype, device=module.weight.device)
        mask[ids] = 1
        masks.append((module, mask))

    def mask_weights_in_use(_module, _args):
        for module, mask in masks:
            _mask_rows(module.weight, mask)

    for hooked in (model, *embeddings):
        hooked.register_forward_pre_hook(mask_weights_in_use)


def _mask_rows(weight: torch.Tensor, mask: torch.Tensor) -> None:
    """Zero the gradient of the rows where `mask` is 0, once per weight tensor (a tied one is shared)."""
    if weight.requires_grad and not getattr(weight, "_corral_row_mask", False):
        weight.register_hook(lambda g: g * mask.to(g.device))
        weight._corral_row_mask = True


def patch_trainable_token_head(model) -> None:
    """TRL 1.16's fused LM head reads `lm_head.bias`; peft's TrainableTokensWrapper (tied lm_head with
    `trainable_token_indices`) only forwards `.weight`, so training fails with AttributeError. A Llama
    lm_head has no bias: expose `bias = None` on the wrapper. `.weight` already returns the merged
    (trainable) rows, so the fused head trains the token rows correctly."""
    head = model.get_output_embeddings()
    if head is not None and not hasattr(head, "bias"):
        head.bias = None
