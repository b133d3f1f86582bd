"""TRL's GRPOTrainer with each prompt run once per group, in the rollouts and in the loss.

GRPO samples `num_generations` completions per prompt, and TRL 1.16 repeats the prompt in every one of
them: generation prefills the same prompt `num_generations` times, and every log-prob pass (the policy's
forward and backward, the reference model's forward, the old policy's when it is needed) runs
`[prompt; completion]` rows, and off GPU projects every position through the LM head. On the tiny
world a prompt is ~23 tokens and a completion ~9 (padded to the longest of the step, at most
`max_completion_length`). `FastGRPOTrainer` (docs/performance.md has the profile and the figures):

1. rollouts: the distinct prompts of a step are prefilled once (all but their last token) and the KV
   cache is copied to their completions; a sampling loop then decodes with transformers' own warpers
   in transformers' order (temperature, top_k, top_p, min_p; greedy when `do_sample` is off), stops a
   row at its first end-of-turn token or at `max_completion_length`, and drops finished rows from the
   forward (transformers keeps computing them until the last row ends, ~2x the token-passes on the tiny
   world, where answers are ~9 tokens and the longest of 32 ~20). It still draws the random numbers of
   every row, as `generate` does, so the same seed gives TRL's completions token for token (and so
   the same reward curve, up to float rounding in the updates). Any other generation setting
   (repetition penalty, `generation_kwargs`...) keeps the prefilled cache and decodes with `generate`;
2. log-probs: `finetune.shared_prompt.prompt_once_hidden` runs each distinct prompt once, copies its
   cache to its completions (the rows of a training batch are shuffled, so they are matched by their
   prompt tokens), runs the completions on top at the positions TRL's forward gives them, and applies
   the LM head (divided by the temperature, as TRL's fused head does) to completion tokens only.

The returned log-probs and entropies are TRL's (zero off the completion), so the loss is TRL's own.
Anything outside the plain text path (vLLM, continuous batching, images, MoE aux loss, a static
`cache_implementation`, logit soft-capping or scaling, `cast_lm_head_to_fp32`, gradient
checkpointing) goes to TRL's code unchanged. `fast_grpo: false` in a recipe trains with stock
`GRPOTrainer`.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, LogitsProcessorList
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from finetune.shared_prompt import (
    backbone_and_head,
    plain_lm_head,
    prompt_once_hidden,
    scored_token_stats,
)


def group_logps_and_entropies(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_len: int,
                              temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs and entropies (B, completion_len) of TRL's GRPO rows `[left-padded prompt;
    right-padded completion]`, zero off the completion, with each distinct prompt run once."""
    backbone, head, config = backbone_and_head(model)
    width = input_ids.size(1) - completion_len
    prompt_ids, prompt_mask = input_ids[:, :width], attention_mask[:, :width]
    completions, completion_mask = input_ids[:, width:], attention_mask[:, width:]
    distinct, rows = torch.unique(torch.cat([prompt_ids, prompt_mask], 1), dim=0, return_inverse=True)
    positions = torch.arange(input_ids.size(1), device=input_ids.device)  # TRL's forward: the column index
    hidden = prompt_once_hidden(backbone, config, distinct[:, :width], distinct[:, width:],
                                positions[:width].expand(distinct.size(0), -1), rows, completions, completion_mask,
                                positions[width:].expand(completions.size(0), -1))
    keep = completion_mask.bool()
    logps, entropy, _, _ = scored_token_stats(head, hidden[keep], completions[keep], temperature, stats_grad=True)
    return (logps.new_zeros(keep.shape).masked_scatter(keep, logps),
            entropy.new_zeros(keep.shape).masked_scatter(keep, entropy))


@torch.no_grad()
def prefilled_cache(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """A KV cache of every row's left-padded prompt but its last token, each distinct prompt computed once.
    Positions follow transformers' generate (attention-mask cumsum), so `generate` continues it exactly."""
    backbone, _, config = backbone_and_head(model)
    distinct, rows = torch.unique(torch.cat([input_ids, attention_mask], 1), dim=0, return_inverse=True)
    width = input_ids.size(1)
    ids, mask = distinct[:, :width - 1], distinct[:, width:2 * width - 1]
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    cache = DynamicCache(config=config)
    backbone(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True)
    cache.batch_select_indices(rows)
    return cache


# GenerationConfig keys the sampling loop implements (repetition_penalty only at 1.0, cache_implementation unset)
LOOP_KEYS = {"max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
             "pad_token_id", "bos_token_id", "eos_token_id", "disable_compile", "cache_implementation",
             "transformers_version"}


def loop_warpers(config) -> LogitsProcessorList | None:
    """transformers' sampling warpers for `config`, in generate's order, or None if `config` asks for more than
    `sample_completions` does (then `generate` decodes)."""
    settings = config.to_diff_dict()
    if set(settings) - LOOP_KEYS or config.repetition_penalty not in (None, 1.0) or config.max_new_tokens is None:
        return None
    warpers = LogitsProcessorList()
    if not config.do_sample:
        return warpers
    if config.temperature is not None and config.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(config.temperature))
    if config.top_k is not None and config.top_k != 0:
        warpers.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
    if config.top_p is not None and config.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
    if config.min_p is not None:
        warpers.append(MinPLogitsWarper(min_p=config.min_p, min_tokens_to_keep=1))
    return warpers


@torch.no_grad()
def sample_completions(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, config, warpers,
                       eos_ids: list[int]) -> list[list[int]]:
    """Completions of the left-padded prompts, each up to and including its first end token: transformers'
    sampling step (logits in float32, `warpers`, softmax, multinomial; argmax without `do_sample`) with the
    forward on the rows still running, after each distinct prompt is prefilled once."""
    backbone, head, _ = backbone_and_head(model)
    cache = prefilled_cache(model, input_ids, attention_mask)
    rows = torch.arange(input_ids.size(0), device=input_ids.device)  # the original row of each running row
    sequences, mask = input_ids, attention_mask
    positions = attention_mask.long().sum(1, keepdim=True) - 1  # the last prompt token's, as generate counts
    tokens = input_ids[:, -1:]
    eos = torch.tensor(eos_ids, device=input_ids.device)
    completions = [[] for _ in range(input_ids.size(0))]
    for _ in range(config.max_new_tokens):
        hidden = backbone(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=cache,
                          use_cache=True).last_hidden_state[:, -1]
        scores = warpers(sequences, head(hidden).float())
        if config.do_sample:  # multinomial over every row, as generate draws: same seed, same tokens
            probs = scores.new_ones(len(completions), scores.size(1))
            probs[rows] = scores.softmax(-1)
            next_tokens = torch.multinomial(probs, num_samples=1).squeeze(1)[rows]
        else:
            next_tokens = scores.argmax(-1)
        for row, token in zip(rows.tolist(), next_tokens.tolist()):
            completions[row].append(token)
        running = ~torch.isin(next_tokens, eos)
        if not running.any():
            break
        if not running.all():  # drop the finished rows, from the cache too
            keep = running.nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, next_tokens, sequences, mask, positions = (x[keep] for x in (rows, next_tokens, sequences, mask,
                                                                             positions))
        tokens = next_tokens[:, None]
        sequences = torch.cat([sequences, tokens], 1)
        mask = torch.cat([mask, mask.new_ones(mask.size(0), 1)], 1)
        positions = positions + 1
    return completions


def completions_until_eos(completion_ids: torch.Tensor, eos_ids: list[int]) -> list[list[int]]:
    """Each row up to and including its first end token (all of it when it has none), as TRL keeps it."""
    is_eos = torch.isin(completion_ids, torch.tensor(eos_ids, device=completion_ids.device))
    ends = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, completion_ids.size(1))
    return [row[:end].tolist() for row, end in zip(completion_ids.cpu(), ends.tolist())]


class FastGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose rollouts prefill each prompt once and whose log-prob passes run each prompt once
    per batch (module docstring). Same loss, same sampling distribution."""

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):
        if compute_aux_loss or self.args.cast_lm_head_to_fp32 or any(v is not None for v in multimodal.values()) \
                or not plain_lm_head(model):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **multimodal)
        batch_size = batch_size or input_ids.size(0)  # TRL's chunking, to keep its memory peak
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            with self.accelerator.autocast():
                lp, ent = group_logps_and_entropies(model, input_ids[start:start + batch_size],
                                                    attention_mask[start:start + batch_size], logits_to_keep,
                                                    self.temperature)
            logps.append(lp)
            entropies.append(ent)
        return torch.cat(logps), torch.cat(entropies) if compute_entropy else None, None

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if self.use_vllm or self.use_transformers_continuous_batching or images is not None or multimodal_fields \
                or self.generation_config.cache_implementation is not None or not plain_lm_head(self.model):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        rows = [torch.tensor(ids) for ids in prompt_ids]
        pad_id = self._tokenizer.pad_token_id
        inputs = {"input_ids": pad(rows, padding_value=pad_id, padding_side="left",
                                   pad_to_multiple_of=self.pad_to_multiple_of),
                  "attention_mask": pad([torch.ones_like(r) for r in rows], padding_value=0, padding_side="left",
                                        pad_to_multiple_of=self.pad_to_multiple_of)}
        inputs = super(GRPOTrainer, self)._prepare_inputs(inputs)  # to the device, as TRL's path does
        with (profiling_context(self, "transformers.generate"),
              unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                          gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                                          generation_kwargs=self.generation_kwargs,
                                          gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs)
              as unwrapped, torch.no_grad(), self._dist.summon_full_params(self.model_wrapped, recurse=False)):
            warpers = loop_warpers(self.generation_config)
            if warpers is not None:
                return sample_completions(unwrapped, inputs["input_ids"], inputs["attention_mask"],
                                          self.generation_config, warpers, self.eos_token_ids), None
            cache = prefilled_cache(unwrapped, inputs["input_ids"], inputs["attention_mask"])
            out = unwrapped.generate(**inputs, past_key_values=cache, generation_config=self.generation_config)
        return completions_until_eos(out[:, inputs["input_ids"].size(1):], self.eos_token_ids), None
