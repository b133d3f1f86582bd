"""Reward-model training over the same pairs: random batches vs `train_sampling_strategy: group_by_length`.

    .venv/bin/python benchmarks/pair_grouping.py outputs/tiny-sft-safe

The tiny pipeline's reward data (helpfulness pairs + safety pairs, a third with earlier turns), the first
800 rows of the shuffled mixture = one mega-batch of the length sampler (50 batches of 16). Each trainer
(TRL's RewardTrainer; grouped: corral's subclass, `corral/pair_sampling.py`) runs `training_step` over all 50 of its own
batches: the same rows, in a different grouping. 1 torch thread, process CPU time, alternating, 2 repeats.
Prints pad tokens per epoch (exact) and CPU seconds (measured), and their ratios.
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run_environment import environment, print_environment  # noqa: E402
from trl import ModelConfig, RewardConfig, RewardTrainer  # noqa: E402

from corral.loading import load_tokenizer  # noqa: E402
from corral.pair_sampling import padded_tokens, with_pair_sampling  # noqa: E402
from data_prep.mixture import DatasetSpec, load_mixture  # noqa: E402
from reward.modeling import load_reward_backbone  # noqa: E402

torch.set_num_threads(1)
model_path = sys.argv[1] if len(sys.argv) > 1 else "outputs/tiny-sft-safe"
print_environment(environment(threads=1))
specs = [DatasetSpec("outputs/tiny-world/pref_train.jsonl", weight=0.5),
         DatasetSpec("outputs/tiny-world/safety_pref_train.jsonl")]
rows = load_mixture(specs, kind="preference", seed=0).train.select(range(800))
tok = load_tokenizer(model_path, "llama3", None)
trainers = {}
for strategy in ("random", "group_by_length"):
    args = RewardConfig(output_dir=f"/tmp/pair-grouping-{strategy}", per_device_train_batch_size=16, max_length=320,
                        use_cpu=True, bf16=False, report_to="none", gradient_checkpointing=False, seed=0,
                        train_sampling_strategy=strategy)
    model = load_reward_backbone(ModelConfig(model_name_or_path=model_path, dtype="float32"), args, tok.pad_token_id)
    trainers[strategy] = with_pair_sampling(RewardTrainer, args)(model=model, args=args, train_dataset=rows,
                                                                 processing_class=tok)
batches, pads, cpu = {}, {}, {s: [] for s in trainers}
for strategy, t in trainers.items():
    batches[strategy] = list(t.get_train_dataloader())
    pads[strategy] = padded_tokens(t.train_dataset, list(t._get_train_sampler()), 16)
for rep in range(2):
    for strategy in (("random", "group_by_length") if rep == 0 else ("group_by_length", "random")):
        t = trainers[strategy]
        t.model.train()
        t.current_gradient_accumulation_steps = 1
        start = time.process_time()
        for b in batches[strategy]:
            t.training_step(t.model, b)
        cpu[strategy].append(time.process_time() - start)
print(f"rows {len(rows)}, batches of 16: {len(batches['random'])}")
print("padded tokens per pass: random", pads["random"], "grouped", pads["group_by_length"],
      f"ratio {pads['random'] / pads['group_by_length']:.2f}")
print("CPU s per pass: random", [round(x, 1) for x in cpu["random"]], "grouped",
      [round(x, 1) for x in cpu["group_by_length"]])
print("ratio (random / grouped) per repeat:", [round(a / b, 2) for a, b in zip(cpu["random"], cpu["group_by_length"])])
