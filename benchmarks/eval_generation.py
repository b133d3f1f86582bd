"""Batched generation (evals.generation) against one `model.generate` call per prompt.

    python benchmarks/eval_generation.py [--prompts 48] [--batch-size 16] [--max-new-tokens 32]

Same small random Llama, same prompts, greedy decoding. Prints prompts/s for both and the speed-up
(goal: >= 3x), and asserts that both produce exactly the same decoded text. Runs torch on one
thread by default: the benchmark machines are shared, and tiny matmuls only lose from a second thread.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

from eval_fixtures import corpus, llama_config, make_tokenizer  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

from evals.formatting import format_prompt  # noqa: E402
from evals.generation import generate, generation_config  # noqa: E402


def per_prompt(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The naive loop: one unpadded `generate` per prompt."""
    config = generation_config(model, tokenizer, max_new_tokens, do_sample=False, temperature=1.0)
    texts = []
    for p in prompts:
        ids = torch.tensor([tokenizer(p, add_special_tokens=False).input_ids])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        texts.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(tokenizer, hidden_size=128, intermediate_size=256, num_hidden_layers=4)).eval()
    model.generation_config.eos_token_id = llama_config(tokenizer).eos_token_id
    lines = random.Random(0).sample(corpus(), args.prompts)
    prompts = [format_prompt(tokenizer, [{"role": "user", "content": line}], "chat") for line in lines]

    start = time.perf_counter()
    naive = per_prompt(model, tokenizer, prompts, args.max_new_tokens)
    t_naive = time.perf_counter() - start
    start = time.perf_counter()
    batched = [g.text for g in generate(model, tokenizer, prompts, False, args.max_new_tokens, args.batch_size)]
    t_batched = time.perf_counter() - start

    same = sum(a == b for a, b in zip(naive, batched))
    print(f"{args.prompts} prompts, {args.max_new_tokens} new tokens, greedy, {args.threads} thread(s)")
    print(f"per-prompt generate : {args.prompts / t_naive:7.1f} prompts/s")
    print(f"batched (bs={args.batch_size:<3})    : {args.prompts / t_batched:7.1f} prompts/s")
    print(f"speed-up            : {t_naive / t_batched:7.1f}x (goal >= 3x)")
    print(f"identical greedy text: {same}/{len(prompts)}")
    print(f"example: {lines[0]!r} -> {batched[0]!r}")
    assert naive == batched, "batched greedy text differs from the per-prompt loop"


if __name__ == "__main__":
    main()
