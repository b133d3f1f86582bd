"""How far a tuned model moved from its baseline: KL on its own responses, perplexity on held-out text.

KL estimator (`kl_from_baseline`). For each suite prompt x and the model M's own response
y = y_1..y_T (its greedy tokens, up to and including the end-of-response token if it emitted one),
both M and the baseline B read the same token ids, x as *M* saw it (its format) followed by y.
At every response position t we take the exact KL over the whole vocabulary of the two next-token
distributions (temperature 1, no sampling noise):

    KL_t = sum_v p_M(v | x, y_<t) * (log p_M(v | x, y_<t) - log p_B(v | x, y_<t))

and report the mean of KL_t over all response tokens of all prompts (nats per token). This is the
per-token KL(policy || reference) that RLHF penalises, measured where the policy actually goes.
A model compared with itself reads identical inputs through identical weights, so every KL_t is
exactly 0. It needs a shared vocabulary; with different tokenizers it is None.

Perplexity (`perplexity`). The held-out text is tokenized once (no special tokens), cut into
non-overlapping blocks of `block_size - 1` tokens, each block is prefixed with BOS, and
perplexity = exp(total negative log-likelihood / number of predicted tokens). Values are per token,
so they compare models that share a tokenizer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from evals.generation import Generation


def same_vocabulary(tokenizer_a, tokenizer_b) -> bool:
    return tokenizer_a.get_vocab() == tokenizer_b.get_vocab()


@torch.no_grad()
def _response_logprobs(model, batch: list[Generation], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities at the positions that predict each response token, and their mask.

    Rows are left-padded, so every response ends at the last position and only the last
    `max_len + 1` positions need logits (`logits_to_keep`: memory stays small for 128k vocabularies).
    """
    seqs = [g.prompt_ids + g.token_ids for g in batch]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s)
        attn[r, width - len(s) :] = 1
    resp = max(len(g.token_ids) for g in batch)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)  # as `generate` numbers left-padded rows
    inputs = dict(input_ids=ids, attention_mask=attn, position_ids=positions)
    out = model(**{k: v.to(model.device) for k, v in inputs.items()}, logits_to_keep=resp + 1)
    logp = F.log_softmax(out.logits[:, :-1].float(), dim=-1)  # position j predicts token j + 1
    mask = torch.zeros(len(batch), resp, dtype=torch.bool)
    for r, g in enumerate(batch):
        mask[r, resp - len(g.token_ids) :] = True
    return logp, mask


def kl_from_baseline(model, baseline, generations: list[Generation], pad_id: int, batch_size: int = 16) -> float | None:
    """Mean per-token KL(model || baseline) on the model's own responses; see the module docstring."""
    if model.config.vocab_size != baseline.config.vocab_size:
        return None
    total, count = 0.0, 0
    scored = [g for g in generations if g.token_ids]
    for start in range(0, len(scored), batch_size):
        batch = scored[start : start + batch_size]
        logp_m, mask = _response_logprobs(model, batch, pad_id)
        logp_b, _ = _response_logprobs(baseline, batch, pad_id)
        kl = (logp_m.exp() * (logp_m - logp_b.to(logp_m.device))).sum(-1).cpu()  # [batch, positions]
        total += kl[mask].double().sum().item()
        count += int(mask.sum())
    return total / count if count else None


@torch.no_grad()
def perplexity(model, tokenizer, text: str, block_size: int = 512, batch_size: int = 8) -> float | None:
    """Perplexity of `text` in non-overlapping BOS-prefixed blocks; see the module docstring."""
    block_size = min(block_size, getattr(model.config, "max_position_embeddings", block_size))
    ids = tokenizer(text, add_special_tokens=False).input_ids
    step = block_size - 1
    blocks = [[tokenizer.bos_token_id] + ids[i : i + step] for i in range(0, len(ids), step)]
    blocks = [b for b in blocks if len(b) > 1]
    nll, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start : start + batch_size]
        width = max(map(len, batch))
        x = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(x)
        for r, b in enumerate(batch):  # right padding: positions start at 0 for every block
            x[r, : len(b)] = torch.tensor(b)
            attn[r, : len(b)] = 1
        logits = model(input_ids=x.to(model.device), attention_mask=attn.to(model.device)).logits.float().cpu()
        labels = x[:, 1:].masked_fill(attn[:, 1:] == 0, -100)
        nll += F.cross_entropy(logits[:, :-1].transpose(1, 2), labels, ignore_index=-100, reduction="sum").item()
        count += int((labels != -100).sum())
    return math.exp(nll / count) if count else None
