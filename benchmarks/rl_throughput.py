"""corral's GRPO (finetune/rl.py) against stock TRL's GRPOTrainer: same model, prompts, rewards, num_generations,
completion length and threads. Prints rollout tokens/s, steps/s, the share of training time spent generating,
and each side's mean reward per logged step (the reward curve).

    make tiny-base && .venv/bin/python benchmarks/rl_throughput.py [--max_steps 8] [--threads 1] [--model outputs/tiny-base]

Each side is a child process of this script with OMP_NUM_THREADS=--threads. The corral side is
`finetune/rl.py recipes/tiny/rl/grpo.yaml` as a user runs it (held-out evaluation off). The stock side
is TRL's `GRPOTrainer` built the way TRL's own `trl grpo` script builds it (model given as a path, TRL's
defaults), on the rows corral's prompt loader reads from the same file and with the same rule rewards
and weights (exact_answer 1.0, format 0.5), so only the trainer setup differs. In both children
`GenerationMixin.generate` is wrapped with a timer that also counts the generated tokens (up to each
row's end of turn); "generation share" is that time over `train_runtime`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = "recipes/tiny/rl/grpo.yaml"
SETTINGS = {"num_generations": 8, "per_device_train_batch_size": 32, "max_completion_length": 24, "beta": 0.04,
            "temperature": 1.0, "learning_rate": 5e-5, "seed": 0}


def timed_generate(stats: dict, stop_ids: set[int]):
    """Wrap transformers' generate: seconds spent and new tokens produced (each row up to its first stop token)."""
    from transformers import GenerationMixin

    original = GenerationMixin.generate

    def generate(self, *args, **kwargs):
        start = time.perf_counter()
        out = original(self, *args, **kwargs)
        stats["seconds"] += time.perf_counter() - start
        prompt = kwargs.get("input_ids", args[0] if args else None)
        sequences = out.sequences if hasattr(out, "sequences") else out
        for row in sequences[:, prompt.shape[1]:].tolist():
            stops = [i for i, t in enumerate(row) if t in stop_ids]
            stats["tokens"] += stops[0] + 1 if stops else len(row)
        stats["calls"] += 1
        return out

    GenerationMixin.generate = generate


def child(side: str, model: str, max_steps: int, out_dir: str) -> dict:
    import torch

    from corral.loading import load_tokenizer, stop_token_ids
    from finetune.rl_rewards import RewardArguments, build_rewards, columns_of, weights_of

    stats = {"seconds": 0.0, "tokens": 0, "calls": 0}
    tokenizer = load_tokenizer(model, "llama3", None)
    timed_generate(stats, set(stop_token_ids(tokenizer)) | {tokenizer.eos_token_id})
    common = ["--max_steps", str(max_steps), "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none",
              "--output_dir", out_dir] + [x for k, v in SETTINGS.items() for x in (f"--{k}", str(v))]
    if side == "corral":
        from finetune.rl import main

        main([RECIPE, "--model_name_or_path", model, "--heldout_datasets", "[]", *common])

        history = json.loads((Path(out_dir) / "run_manifest.json").read_text()).get("log_history", [])
    else:
        from trl import GRPOConfig, GRPOTrainer

        from finetune.online_rl import load_prompts
        from data_prep.mixture import DatasetSpec

        data = load_prompts([DatasetSpec("outputs/tiny-world/rl_prompts_train.jsonl")], seed=0)
        rewards = RewardArguments(rewards={"exact_answer": 1.0, "format": 0.5})
        components = build_rewards(rewards, stop_token_ids(tokenizer), columns_of(data.train))
        args = GRPOConfig(output_dir=out_dir, max_steps=max_steps, logging_steps=1, save_strategy="no", report_to="none",
                          use_cpu=True, bf16=False, gradient_checkpointing=False, reward_weights=weights_of(components),
                          **SETTINGS)
        trainer = GRPOTrainer(model=model, reward_funcs=components, args=args, train_dataset=data.train,
                              processing_class=tokenizer)
        trainer.train()
        history = trainer.state.log_history
    final = next(h for h in reversed(history) if "train_runtime" in h)
    curve = [round(h["reward"], 4) for h in history if "reward" in h]
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"side": side, "threads": torch.get_num_threads(), "train_runtime": final["train_runtime"],
            "cpu_s_whole_process": usage.ru_utime + usage.ru_stime,
            "steps": max_steps, "gen_seconds": stats["seconds"], "gen_tokens": stats["tokens"],
            "gen_calls": stats["calls"], "reward_curve": curve}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="outputs/tiny-sft-full", help="starting policy (a chat model)")
    ap.add_argument("--max_steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--child", choices=("corral", "trl"), help=argparse.SUPPRESS)
    ap.add_argument("--child_out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.child, a.model, a.max_steps, a.child_out)), flush=True)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_environment import environment, print_environment

    env = environment(threads=a.threads)
    print_environment(env)
    print(f"model {a.model}; {a.max_steps} steps; {SETTINGS}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        for side in ("corral", "trl"):
            proc = subprocess.run([sys.executable, __file__, "--child", side, "--model", a.model, "--max_steps",
                                   str(a.max_steps), "--child_out", f"{tmp}/{side}"], capture_output=True, text=True,
                                  cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": str(a.threads), "HF_HUB_OFFLINE": "1",
                                                 "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)})
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                raise SystemExit(f"{side} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
            results[side] = r = json.loads(lines[-1][7:])
            print(f"  {side:7s} {r['steps'] / r['train_runtime']:.3f} steps/s  {r['gen_tokens'] / r['gen_seconds']:.0f} "
                  f"rollout tokens/s  generation {100 * r['gen_seconds'] / r['train_runtime']:.0f}% of "
                  f"{r['train_runtime']:.1f} s  {r['cpu_s_whole_process']:.0f} CPU s (whole process)  ({r['threads']} thread(s))",
                  flush=True)
    for side, r in results.items():
        print(f"reward curve {side:7s}: {r['reward_curve']}")
    c, t = results["corral"], results["trl"]
    print(f"\ncorral / trl at {a.threads} thread(s): steps/s x{(c['steps'] / c['train_runtime']) / (t['steps'] / t['train_runtime']):.2f}, "
          f"rollout tokens/s x{(c['gen_tokens'] / c['gen_seconds']) / (t['gen_tokens'] / t['gen_seconds']):.2f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"environment": env, "settings": SETTINGS, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
