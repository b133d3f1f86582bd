"""DPO's chosen/rejected forward with the prompt computed once per pair, and the LM head only where it is scored.

TRL 1.16's DPO forward runs `[prompt + chosen; prompt + rejected]`, each row padded to the longest
row in the batch, and (off GPU) projects every position through the LM head. On the tiny world the
prompt is ~23 tokens and an answer ~8-11, so about a quarter of those token-passes are a second copy of
the prompt or padding, and the head (with its entropy and top-1 statistics) runs mostly on positions
that are never scored (docs/performance.md has the profile). Here (`prompt_once_hidden`):

1. with `sdpa` or `eager` attention, each pair becomes ONE row `[prompt | chosen | rejected]` (right-padded
   to the longest pair), the rejected answer at the positions it has in TRL's row (right after the prompt),
   under a block mask: prompt tokens see the prompt causally, each answer sees the prompt and itself
   causally, never the other answer. One forward gives every answer token's hidden state. Other attention
   implementations (flash attention takes no custom mask) run the left-padded prompts once into a KV cache,
   copy it to the two answers and run the answers on top (two forwards);
2. the LM head, log-softmax and statistics run on the answer tokens only.

Measured per DPO training step on the tiny model, 1 thread, CPU seconds against TRL's forward: the one-row
version x1.9-2.1, the KV-cache version x1.37 (docs/performance.md).

The result has TRL's layout (`FusedCausalLMOutput`'s `log_probs`, `entropy`, `mean_logits`, `is_top1`,
shape `(2B, L - 1)`, zero off the answer), so TRL's loss code is used unchanged. Where this does not
apply (chosen and rejected not sharing a prompt, logit soft-capping or scaling, `use_weighting`'s
`log_sum_sq_probs`), `SharedPromptCall` hands the call to the model as it was.

The pieces (`prompt_once_hidden`: each prompt once, its answers after it; `scored_token_stats`: the head on
scored tokens) also serve GRPO's groups of completions (finetune/fast_grpo.py): there a row is a prompt
and all its completions.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from transformers import DynamicCache


def split_pairs(input_ids: torch.Tensor, scored: torch.Tensor):
    """(prompt lengths, answer lengths) of a TRL DPO batch `[prompt + chosen; prompt + rejected]`, or None if
    some chosen/rejected rows do not start with the same prompt. `scored` marks answer tokens (labels != -100)."""
    pairs = input_ids.size(0) // 2
    prompt_len = scored.int().argmax(dim=1)  # the first answer token
    answer_len = scored.sum(dim=1)
    if (answer_len == 0).any() or (prompt_len == 0).any() or not torch.equal(prompt_len[:pairs], prompt_len[pairs:]):
        return None
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    in_prompt = positions[None, :] < prompt_len[:pairs, None]
    if not torch.equal(input_ids[:pairs][in_prompt], input_ids[pairs:][in_prompt]):
        return None
    return prompt_len, answer_len


def backbone_and_head(model):
    """(backbone, LM head, config) of a causal LM, under a PEFT wrapper or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, base.base_model_prefix), base.get_output_embeddings(), base.config


def plain_lm_head(model) -> bool:
    """Whether `model`'s logits are `head(hidden)` (no soft-capping or scaling, which TRL's fused head applies) and
    its backbone can return a KV cache in training (gradient checkpointing turns the cache off)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "base_model_prefix") and not hasattr(model, "get_base_model"):
        return False  # e.g. a DistributedDataParallel wrapper: its own forward must run
    text = config.get_text_config()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    checkpointing = (base.is_activation_checkpointing if hasattr(type(base), "is_activation_checkpointing")
                     else getattr(base, "is_gradient_checkpointing", False))  # renamed in transformers 5.x
    return not checkpointing and not any(
        getattr(text, k, None) for k in ("final_logit_softcapping", "logit_scale", "output_multiplier",
                                         "lm_head_multiplier", "logits_scaling"))


def prompt_once_hidden(backbone, config, prompts, prompt_mask, prompt_pos, rows, answers, answer_mask, answer_pos,
                       packed: bool | None = None):
    """Hidden states that predict each answer token, with each distinct prompt run once.

    `prompts` (U, P) are left-padded (the last column is every prompt's last token), `rows` (R,) names the prompt of
    each of the R answer rows, `answers` (R, A) are right-padded; `*_pos` are the positions the model sees.
    Returns (R, A, H): column j predicts answer token j (column 0 comes from the prompt's last token).
    `packed` (default: with sdpa or eager attention) puts each prompt and all its answers in one row under a block
    mask (`packed_rows_hidden`); otherwise the prompts fill a KV cache the answers run on (`cached_prompt_hidden`)."""
    if packed is None:
        packed = config._attn_implementation in ("sdpa", "eager")
    run = packed_rows_hidden if packed else cached_prompt_hidden
    return run(backbone, config, prompts, prompt_mask, prompt_pos, rows, answers, answer_mask, answer_pos)


def packed_rows_hidden(backbone, config, prompts, prompt_mask, prompt_pos, rows, answers, answer_mask, answer_pos):
    """`prompt_once_hidden` in one forward: row u is `[prompt u | its answers, one after another]`; prompt tokens
    see the prompt causally, each answer sees the prompt and itself causally, never another answer."""
    (n_prompts, width), (n_answers, a_width) = prompts.shape, answers.shape
    device = prompts.device
    # answer r takes `used[r]` columns (up to its last unmasked token), after the answers of its prompt before it
    used = (answer_mask.bool() * torch.arange(1, a_width + 1, device=device)).amax(1)
    order = torch.argsort(rows, stable=True)
    before = used[order].cumsum(0) - used[order]  # columns of all answers before, in prompt order
    counts = torch.bincount(rows, minlength=n_prompts)
    group_start = counts.cumsum(0) - counts  # where each prompt's answers begin in `order`
    start = torch.empty_like(used)
    start[order] = width + before - before[group_start[rows[order]]]
    total = int((start + used).max()) if n_answers else width
    cols = start[:, None] + torch.arange(a_width, device=device)  # (R, A): where each answer token goes
    placed = torch.arange(a_width, device=device)[None, :] < used[:, None]

    def packed(prompt_part, answer_part, fill=0):
        out = torch.full((n_prompts, total), fill, dtype=answer_part.dtype, device=device)
        out[:, :width] = prompt_part
        out[rows[:, None].expand(-1, a_width)[placed], cols[placed]] = answer_part[placed]
        return out

    ids, positions = packed(prompts, answers), packed(prompt_pos, answer_pos)
    key_valid = packed(prompt_mask.bool(), answer_mask.bool(), False)
    segment = packed(torch.zeros_like(prompts), torch.arange(1, n_answers + 1, device=device)[:, None].expand(
        -1, a_width), -1)
    index = torch.arange(total, device=device)
    allowed = ((index[:, None] >= index[None, :])[None] & key_valid[:, None, :]
               & ((segment[:, None, :] == 0) | (segment[:, None, :] == segment[:, :, None])))
    allowed[:, :, width - 1] |= ~key_valid  # padding looks at the prompt's last token: no fully masked row
    if config._attn_implementation == "eager":  # eager adds the mask to the scores; sdpa takes booleans
        mask = torch.zeros(allowed.shape, dtype=backbone.dtype, device=device).masked_fill(
            ~allowed, torch.finfo(backbone.dtype).min)
    else:
        mask = allowed
    hidden = backbone(input_ids=ids, attention_mask=mask[:, None], position_ids=positions,
                      use_cache=False).last_hidden_state
    # column j of an answer is predicted by its column j - 1 (column 0: the prompt's last token); columns past
    # `used` predict nothing the callers keep
    predictors = torch.cat([torch.full((n_answers, 1), width - 1, device=device), cols[:, :-1]], 1).clamp(max=total - 1)
    return hidden[rows[:, None], predictors]


def cached_prompt_hidden(backbone, config, prompts, prompt_mask, prompt_pos, rows, answers, answer_mask, answer_pos):
    """`prompt_once_hidden` in two forwards: the prompts leave their keys and values in a cache, which is copied to
    the answer rows; the answers run on top. For attention implementations that take no custom mask."""
    cache = DynamicCache(config=config)
    prompt_out = backbone(input_ids=prompts, attention_mask=prompt_mask, position_ids=prompt_pos,
                          past_key_values=cache, use_cache=True)
    cache.batch_select_indices(rows)
    answer_out = backbone(input_ids=answers, attention_mask=torch.cat([prompt_mask[rows], answer_mask], 1),
                          position_ids=answer_pos, past_key_values=cache, use_cache=True)
    return torch.cat([prompt_out.last_hidden_state[rows, -1:], answer_out.last_hidden_state[:, :-1]], 1)


def scored_token_stats(head, hidden, targets, temperature: float = 1.0, stats_grad: bool = False):
    """TRL's fused-head statistics for the scored tokens only: (log-prob of each target, entropy, mean logit,
    target is top-1), from `hidden` (N, H) and `targets` (N,), logits divided by `temperature` as TRL's head does.
    Entropy carries gradient with `stats_grad` (GRPO's entropy bonus); the mean logit and top-1 never do."""
    logits = head(hidden).float()
    if temperature != 1.0:
        logits = logits / temperature
    log_softmax = logits.log_softmax(-1)
    token_logps = log_softmax.gather(1, targets[:, None]).squeeze(1)
    with torch.set_grad_enabled(stats_grad and torch.is_grad_enabled()):
        entropy = -(log_softmax.exp() * log_softmax).sum(-1)
    with torch.no_grad():
        mean_logits = logits.mean(-1)
        is_top1 = logits.argmax(-1) == targets
    return token_logps, entropy, mean_logits, is_top1


def shared_prompt_forward(model, input_ids: torch.Tensor, scored: torch.Tensor, packed: bool | None = None):
    """TRL's fused-head outputs for a DPO batch, computed with each pair's prompt run once (module docstring).
    Returns None when the batch does not have that shape."""
    lengths = split_pairs(input_ids, scored)
    if lengths is None:
        return None
    return pairs_forward(model, input_ids, *lengths, packed=packed)


def trl_layout(input_ids: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, stats) -> SimpleNamespace:
    """`scored_token_stats` of the answer tokens put back where TRL's fused head has them: row `rows` of
    `[chosen; rejected]`, column `cols` (the position of the token that predicts it), zero elsewhere."""
    shape = (input_ids.size(0), input_ids.size(1) - 1)

    def place(values):
        return torch.zeros(shape, dtype=values.dtype, device=input_ids.device).index_put((rows, cols), values)

    token_logps, entropy, mean_logits, is_top1 = stats
    return SimpleNamespace(log_probs=place(token_logps), entropy=place(entropy), mean_logits=place(mean_logits),
                           is_top1=place(is_top1), log_sum_sq_probs=None, aux_loss=None)


def pairs_forward(model, input_ids: torch.Tensor, prompt_len: torch.Tensor, answer_len: torch.Tensor,
                  packed: bool | None = None):
    """TRL's fused-head outputs of `[prompt + chosen; prompt + rejected]` from `prompt_once_hidden`."""
    pairs, device = input_ids.size(0) // 2, input_ids.device
    backbone, head, config = backbone_and_head(model)

    # 1. prompts, left-padded: the last column is every prompt's last token
    p_len = prompt_len[:pairs]
    width = int(p_len.max())
    cols = torch.arange(width, device=device)
    src = (cols[None, :] - (width - p_len)[:, None])  # column -> position in the prompt (negative: padding)
    prompt_mask = (src >= 0).long()
    prompt_ids = torch.gather(input_ids[:pairs], 1, src.clamp(min=0)) * prompt_mask

    # 2. answers, interleaved (chosen_i, rejected_i), right-padded, after their prompt
    order = torch.stack([torch.arange(pairs, device=device), torch.arange(pairs, device=device) + pairs], 1).flatten()
    a_len, a_start = answer_len[order], prompt_len[order]
    a_width = int(a_len.max())
    a_cols = torch.arange(a_width, device=device)
    answer_mask = (a_cols[None, :] < a_len[:, None]).long()
    a_pos = a_start[:, None] + a_cols[None, :]
    answer_ids = torch.gather(input_ids[order], 1, a_pos.clamp(max=input_ids.size(1) - 1)) * answer_mask
    hidden = prompt_once_hidden(backbone, config, prompt_ids, prompt_mask, src.clamp(min=0),
                                torch.arange(pairs, device=device).repeat_interleave(2), answer_ids, answer_mask, a_pos,
                                packed)

    # 3. the head on scored tokens only, back to TRL's layout
    keep = answer_mask.bool()
    stats = scored_token_stats(head, hidden[keep], answer_ids[keep])
    return trl_layout(input_ids, order[:, None].expand(-1, a_width)[keep], (a_pos - 1)[keep], stats)


class SharedPromptCall:
    """Stands in for a model in TRL's DPO loss: `model(..., labels=..., fused_lm_head=True)` goes through
    `shared_prompt_forward`; any other call, or a batch it does not fit, goes to the model itself."""

    def __init__(self, model):
        self.model = model
        self.usable = plain_lm_head(model)

    def __call__(self, *args, labels=None, fused_lm_head=False, **kwargs):
        input_ids = kwargs.get("input_ids")
        if self.usable and fused_lm_head and labels is not None and input_ids is not None and not args and \
                set(kwargs) <= {"input_ids", "attention_mask", "use_cache"}:
            out = shared_prompt_forward(self.model, input_ids, labels != -100)
            if out is not None:
                return out
        return self.model(*args, labels=labels, fused_lm_head=fused_lm_head, **kwargs)


def shared_prompt_dpo_trainer(dpo_trainer_cls: type) -> type:
    """`dpo_trainer_cls` (TRL's DPOTrainer) with the policy's and the reference's log-probs from
    `shared_prompt_forward`. `use_weighting` (which needs `log_sum_sq_probs`) keeps TRL's forward."""

    class SharedPromptDPOTrainer(dpo_trainer_cls):
        def _compute_loss(self, model, inputs, return_outputs):
            if self.use_weighting:
                return super()._compute_loss(model, inputs, return_outputs)
            ref = self.ref_model
            self.ref_model = SharedPromptCall(ref) if ref is not None else None
            try:
                return super()._compute_loss(SharedPromptCall(model), inputs, return_outputs)
            finally:
                self.ref_model = ref

        def compute_ref_log_probs(self, model, inputs):
            if self.ld_alpha is not None:
                return super().compute_ref_log_probs(model, inputs)
            return super().compute_ref_log_probs(SharedPromptCall(model), inputs)

    return SharedPromptDPOTrainer
