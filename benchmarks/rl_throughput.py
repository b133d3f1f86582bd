"""corral's GRPO (finetune/rl.py) against stock TRL's GRPOTrainer: same model, prompts, rewards, num_generations,
completion length, seed and threads. Prints steps/s, rollout tokens/s, the share of training time spent generating,
training CPU seconds, and each side's mean reward per step (the reward curve) with the differences.

    .venv/bin/python benchmarks/rl_throughput.py [--max_steps 20] [--repeats 2] [--threads 1] [--model outputs/tiny-sft-full]
    .venv/bin/python benchmarks/rl_throughput.py --components 8 [--threads 1]   # CPU s per part of a step

Three sides, each a child process of this script with OMP_NUM_THREADS=--threads, run in alternating order
(the order is reversed on every repeat; the machine is shared, so compare the ratios and the CPU seconds):
- `corral`: `finetune/rl.py recipes/tiny/rl/grpo.yaml` as a user runs it (finetune/fast_grpo.py), held-out
  evaluation off, `--freeze_embeddings false` so that every side trains the same parameters;
- `corral-stock`: the same with `--fast_grpo false` (TRL's GRPOTrainer inside corral's script);
- `trl`: TRL's `GRPOTrainer` built the way TRL's own `trl grpo` script builds it (model given as a path, TRL's
  defaults), on the rows corral's prompt loader reads from the same file, with the same rule rewards and
  weights (exact_answer 1.0, format 0.5).
In every child `GRPOTrainer._generate` (prompt tokenization, the whole rollout including any prefill, decoding)
is timed and its completion tokens counted; "generation share" is that time over `train_runtime`; "CPU s" is
the process CPU time inside `Trainer.train`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = "recipes/tiny/rl/grpo.yaml"
PROMPTS = "outputs/tiny-world/rl_prompts_train.jsonl"
SETTINGS = {"num_generations": 8, "per_device_train_batch_size": 32, "max_completion_length": 24, "beta": 0.04,
            "temperature": 1.0, "learning_rate": 5e-5, "seed": 0}
SIDES = ("corral", "corral-stock", "trl")


def instrument(stats: dict) -> None:
    """Time GRPOTrainer._generate (count its completion tokens) and the CPU seconds of Trainer.train."""
    from transformers import Trainer
    from trl import GRPOTrainer

    generate, train = GRPOTrainer._generate, Trainer.train

    def timed_generate(self, prompts):
        start = time.perf_counter()
        out = generate(self, prompts)
        stats["gen_seconds"] += time.perf_counter() - start
        stats["gen_tokens"] += sum(len(ids) for ids in out[1])
        return out

    def timed_train(self, *args, **kwargs):
        cpu = time.process_time()
        try:
            return train(self, *args, **kwargs)
        finally:
            stats["train_cpu_s"] = time.process_time() - cpu

    GRPOTrainer._generate, Trainer.train = timed_generate, timed_train


def child(side: str, model: str, max_steps: int, out_dir: str) -> dict:
    import torch

    from corral.loading import load_tokenizer, stop_token_ids
    from finetune.rl_rewards import RewardArguments, build_rewards, columns_of, weights_of

    stats = {"gen_seconds": 0.0, "gen_tokens": 0, "train_cpu_s": 0.0}
    instrument(stats)
    common = ["--max_steps", str(max_steps), "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none",
              "--output_dir", out_dir] + [x for k, v in SETTINGS.items() for x in (f"--{k}", str(v))]
    if side in ("corral", "corral-stock"):
        from finetune.rl import main

        main([RECIPE, "--model_name_or_path", model, "--heldout_datasets", "[]", "--freeze_embeddings", "false",
              "--fast_grpo", str(side == "corral").lower(), *common])
        history = json.loads((Path(out_dir) / "run_manifest.json").read_text()).get("log_history", [])
    else:
        from trl import GRPOConfig, GRPOTrainer

        from data_prep.mixture import DatasetSpec
        from finetune.online_rl import load_prompts

        tokenizer = load_tokenizer(model, "llama3", None)
        data = load_prompts([DatasetSpec(PROMPTS)], seed=0)
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
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"side": side, "threads": torch.get_num_threads(), "train_runtime": final["train_runtime"],
            "cpu_s_whole_process": round(usage.ru_utime + usage.ru_stime, 1), "steps": max_steps, **stats,
            "reward_curve": [round(h["reward"], 4) for h in history if "reward" in h]}


def components(model: str, batches: int) -> None:
    """CPU seconds of each part of a GRPO step, TRL's GRPOTrainer methods against FastGRPOTrainer's on one trainer,
    the same batches (4 prompts x 8 completions of the rollouts), alternating order. Rollouts are compared too."""
    import torch
    from trl import GRPOConfig, GRPOTrainer
    from trl.trainer.utils import pad

    from corral.loading import load_tokenizer, stop_token_ids
    from data_prep.mixture import DatasetSpec
    from finetune.fast_grpo import FastGRPOTrainer
    from finetune.online_rl import load_prompts
    from finetune.rl_rewards import RewardArguments, build_rewards, columns_of, weights_of

    tokenizer = load_tokenizer(model, "llama3", None)
    data = load_prompts([DatasetSpec(PROMPTS)], seed=0)
    rewards = build_rewards(RewardArguments(rewards={"exact_answer": 1.0, "format": 0.5}), stop_token_ids(tokenizer),
                            columns_of(data.train))
    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(output_dir=tmp, report_to="none", use_cpu=True, bf16=False, gradient_checkpointing=False,
                          reward_weights=weights_of(rewards), **SETTINGS)
        trainer = FastGRPOTrainer(model=model, reward_funcs=rewards, args=args, train_dataset=data.train,
                                  processing_class=tokenizer)
    prompts = [row["prompt"] for row in data.train.to_list()]
    parts = ("generation", "reference forward", "policy forward+backward")
    cpu = {part: {"trl": 0.0, "fast": 0.0} for part in parts}
    same = []

    def timed(part, side, fn):
        start = time.process_time()
        out = fn()
        cpu[part][side] += time.process_time() - start
        return out

    for i in range(batches):
        prompt_ids, _, _ = trainer._tokenize_prompts([p for p in prompts[4 * i:4 * i + 4] for _ in range(8)])
        completions = {}
        for side in ("trl", "fast") if i % 2 == 0 else ("fast", "trl"):
            cls = GRPOTrainer if side == "trl" else FastGRPOTrainer
            torch.manual_seed(i)
            completion_ids, _ = timed("generation", side, lambda: cls._generate_single_turn(trainer, prompt_ids, None, {}, 8))
            completions[side] = completion_ids
            ids = torch.cat([pad([torch.tensor(p) for p in prompt_ids], tokenizer.pad_token_id, padding_side="left"),
                             pad([torch.tensor(c) for c in completion_ids], tokenizer.pad_token_id)], 1)
            mask = torch.cat([pad([torch.ones(len(p), dtype=torch.long) for p in prompt_ids], 0, padding_side="left"),
                              pad([torch.ones(len(c), dtype=torch.long) for c in completion_ids], 0)], 1)
            length = ids.size(1) - max(len(p) for p in prompt_ids)  # the completion columns
            with torch.no_grad():
                timed("reference forward", side, lambda: cls._get_per_token_logps_and_entropies(
                    trainer, trainer.ref_model, ids, mask, length))

            def forward_backward():
                logps, entropy, _ = cls._get_per_token_logps_and_entropies(trainer, trainer.model, ids, mask, length,
                                                                           compute_entropy=True)
                (logps.sum() + entropy.sum()).backward()
                trainer.model.zero_grad()

            timed("policy forward+backward", side, forward_backward)
        same.append(completions["trl"] == completions["fast"])
    print(f"{batches} batches of 4 prompts x 8, {torch.get_num_threads()} thread(s), process CPU s (TRL / fast):")
    for part in parts:
        t, f = cpu[part]["trl"], cpu[part]["fast"]
        print(f"  {part:24s} TRL {t:6.2f}  fast {f:6.2f}  x{t / f:.2f}")
    print(f"  rollouts equal TRL's (same seed): {sum(same)} of {batches} batches")


def run_side(side: str, a, tmp: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, __file__, "--child", side, "--model", a.model, "--max_steps",
                           str(a.max_steps), "--child_out", f"{tmp}/{side}-{time.time_ns()}"], check=False,
                          capture_output=True, text=True, cwd=REPO, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    r = json.loads(lines[-1][7:])
    r["steps_per_s"] = r["steps"] / r["train_runtime"]
    print(f"  {side:12s} {r['steps_per_s']:.3f} steps/s  {r['gen_tokens'] / r['gen_seconds']:.0f} rollout tokens/s  "
          f"generation {100 * r['gen_seconds'] / r['train_runtime']:.0f}% of {r['train_runtime']:.1f} s  "
          f"{r['train_cpu_s']:.1f} CPU s in train ({r['cpu_s_whole_process']:.0f} whole process)  "
          f"({r['threads']} thread(s))", flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="outputs/tiny-sft-full", help="starting policy (a chat model)")
    ap.add_argument("--max_steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2, help="runs of every side, in alternating order")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {','.join(SIDES)}")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--components", type=int, default=0, metavar="N",
                    help="instead: CPU seconds per part of a step (generation, reference forward, policy "
                         "forward+backward), TRL's methods vs FastGRPOTrainer's, on N batches in this process")
    ap.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--child_out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.child, a.model, a.max_steps, a.child_out)), flush=True)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_environment import environment, print_environment

    env = environment(threads=a.threads)
    print_environment(env)
    if a.components:
        import torch

        torch.set_num_threads(a.threads)
        components(a.model, a.components)
        return 0
    print(f"model {a.model}; {a.max_steps} steps x {a.repeats} repeats; {SETTINGS}")
    sides = [s for s in a.sides.split(",") if s]
    runs = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        for repeat in range(a.repeats):
            print(f"repeat {repeat + 1}:")
            for side in sides if repeat % 2 == 0 else reversed(sides):
                runs[side].append(run_side(side, a, tmp))

    def med(side, key):
        return statistics.median(r[key] for r in runs[side])

    print("\nreward curves (mean reward per step, first repeat):")
    for side in sides:
        print(f"  {side:12s} {runs[side][0]['reward_curve']}")
    curves = {s: runs[s][0]["reward_curve"] for s in sides}
    for side in sides[1:]:
        diff = [round(x - y, 4) for x, y in zip(curves[sides[0]], curves[side])]
        print(f"  {sides[0]} - {side}: {diff}  (mean {statistics.mean(diff):+.4f}; "
              f"means {statistics.mean(curves[sides[0]]):.4f} vs {statistics.mean(curves[side]):.4f})")
    base = sides[0]
    print(f"\nmedians over {a.repeats} repeat(s), {a.threads} thread(s); ratios {base} / other:")
    for side in sides[1:]:
        per_repeat = [f"x{c['steps_per_s'] / o['steps_per_s']:.2f}" for c, o in zip(runs[base], runs[side])]
        print(f"  {base} / {side}: steps/s x{med(base, 'steps_per_s') / med(side, 'steps_per_s'):.2f} "
              f"(per repeat {', '.join(per_repeat)}), train CPU s x{med(side, 'train_cpu_s') / med(base, 'train_cpu_s'):.2f} "
              f"(fewer CPU s for {base} when > 1), rollout tokens/s "
              f"x{(med(base, 'gen_tokens') / med(base, 'gen_seconds')) / (med(side, 'gen_tokens') / med(side, 'gen_seconds')):.2f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"environment": env, "settings": SETTINGS, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
