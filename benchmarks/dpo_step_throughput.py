"""CPU seconds per DPO training step: TRL's DPOTrainer with its own forward vs with corral's shared-prompt forward.

    .venv/bin/python benchmarks/dpo_step_throughput.py outputs/tiny-sft-full reference    # reference model forward
    .venv/bin/python benchmarks/dpo_step_throughput.py outputs/tiny-sft-full precompute   # precomputed reference

Same trainer class (finetune.preference.build_trainer, shared_prompt False/True), same 8 batches of 8
tiny-world pairs, 1 torch thread, `training_step` (forward, loss, backward; the optimizer step is the
same for both and left out), in one process, alternating, 3 repeats. Process CPU time, not wall time:
with one thread it counts the work done and not the waiting on a shared machine.
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run_environment import environment, print_environment  # noqa: E402
from trl import DPOConfig, ModelConfig  # noqa: E402

from corral.loading import load_causal_lm, load_tokenizer  # noqa: E402
from data_prep.mixture import DatasetSpec, load_mixture  # noqa: E402
from finetune.preference import build_trainer  # noqa: E402

torch.set_num_threads(1)
model_path = sys.argv[1]
print_environment(environment(threads=1))
rows = load_mixture([DatasetSpec("outputs/tiny-world/pref_train.jsonl")], kind="preference").train
tok = load_tokenizer(model_path, "llama3", None)
args = DPOConfig(output_dir="/tmp/dpo-step-throughput", per_device_train_batch_size=8, max_length=128, beta=0.1,
                 loss_type=["sigmoid"], use_cpu=True, bf16=False, report_to="none", gradient_checkpointing=False,
                 precompute_ref_log_probs=sys.argv[2] == "precompute", seed=0)
margs = ModelConfig(model_name_or_path=model_path, dtype="float32")
trainers = {}
for shared in (False, True):
    model = load_causal_lm(margs, args)
    trainers[shared] = build_trainer("dpo", model, None, args, rows.select(range(400)), None, tok, None, [], shared_prompt=shared)
loader = trainers[False].get_train_dataloader()
batches = [b for _, b in zip(range(8), loader)]
for rep in range(3):
    for shared in ((False, True) if rep % 2 == 0 else (True, False)):
        t = trainers[shared]
        t.model.train(); t.current_gradient_accumulation_steps = 1
        start = time.process_time()
        for b in batches:
            t.training_step(t.model, b)
        trainers[shared].cpu = getattr(trainers[shared], "cpu", []) + [time.process_time() - start]
a, b = trainers[False].cpu, trainers[True].cpu
print("TRL forward CPU s per 8 steps:", [round(x, 2) for x in a])
print("shared prompt CPU s per 8 steps:", [round(x, 2) for x in b])
print("ratio (TRL / shared) per repeat:", [round(x / y, 2) for x, y in zip(a, b)], "median", sorted(x / y for x, y in zip(a, b))[1])
