"""Batched generation for evaluation: left padding, KV cache, greedy by default, seedable sampling.

Prompts are sorted by length before batching so a batch holds prompts of similar length (less
padding), and results come back in the caller's order. Generation stops on every end-of-response
id (`corral.loading.eos_token_ids`: the generation config's list, the tokenizer's EOS, `<|eot_id|>`),
so an instruct model's `<|eot_id|>` ends its answer. `benchmarks/eval_generation.py` checks that this
gives the same greedy text as one `generate` call per prompt, and how much faster it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from corral.loading import eos_token_ids


@dataclass
class Generation:
    text: str
    prompt_ids: list[int]
    token_ids: list[int]  # generated ids, including the end-of-response id if one was emitted
    ended_with_eos: bool

    @property
    def n_tokens(self) -> int:
        """Response length in tokens, not counting the end-of-response token."""
        return len(self.token_ids) - int(self.ended_with_eos)


def generation_config(model, tokenizer, max_new_tokens: int, do_sample: bool, temperature: float) -> GenerationConfig:
    """Explicit settings, so a checkpoint's own sampling defaults (e.g. top_p=0.9) never leak in."""
    sampling = dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0) if do_sample else dict(do_sample=False)
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_ids(model, tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **sampling,
    )


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    add_special_tokens: bool,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    desc: str | None = None,
) -> list[Generation]:
    """Generate one response per prompt (already formatted text); see `Generation`."""
    config = generation_config(model, tokenizer, max_new_tokens, do_sample, temperature)
    stop = set(config.eos_token_id)
    encoded = [tokenizer(p, add_special_tokens=add_special_tokens).input_ids for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    results: list[Generation | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), desc=desc, unit="prompt", leave=False) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt").to(model.device)
            out = model.generate(**padded, generation_config=config)
            new = out[:, padded["input_ids"].shape[1] :].tolist()
            for i, ids in zip(batch, new):
                results[i] = _finish(tokenizer, encoded[i], ids, stop)
            bar.update(len(batch))
    return results


def _finish(tokenizer, prompt_ids: list[int], ids: list[int], stop: set[int]) -> Generation:
    """Cut a generated row at its first end-of-response id (what follows is padding)."""
    end = next((k for k, t in enumerate(ids) if t in stop), None)
    kept = ids if end is None else ids[: end + 1]
    body = kept if end is None else kept[:-1]
    return Generation(
        text=tokenizer.decode(body, skip_special_tokens=True),
        prompt_ids=prompt_ids,
        token_ids=kept,
        ended_with_eos=end is not None,
    )
