"""Rejection sampling (best-of-n) fine-tuning in rounds, as in Llama 2/3 post-training.

    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/rejection_sampling.py recipes/tiny/rs/rounds.yaml

Each round k = 1..R: sample `num_samples` responses per prompt from the current policy (batched
generation with KV cache, evals/generation.py), score them with the rule rewards and/or reward model
(finetune/rl_rewards.py, the same weighted sum GRPO uses), keep each prompt's best response if it
scores at least `min_score` (finetune/best_of_n.py), and fine-tune the policy on those conversations
with finetune/sft.py (the `sft_recipe`'s training settings plus `sft_overrides`). The tuned model is
the next round's policy. Everything a round did is kept in `output_dir/round-k/`: samples.jsonl
(every response with its scores; `selected` marks the kept ones), sft_data.jsonl, sft_command.txt (the
SFT run, reproducible on its own), model/, summary.json. Round 0 is the starting policy. With
`heldout_datasets`, each round's model is scored on those prompts; `output_dir/summary.md` (also
printed) has one line per round. Generation runs in one process: launch with a single-process config.
"""

from __future__ import annotations

from corral.script_help import exit_on_help

exit_on_help(__name__, __doc__, __file__)  # before the heavy imports: --help answers at once

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelerate import PartialState
from trl import ModelConfig, SFTConfig

from corral.errors import CorralError
from corral.loading import check_model_path, stop_token_ids
from corral.manifest import start_manifest
from corral.preflight import check_before_loading
from corral.recipe import parse_recipe, resolved_config, run_cli
from corral.run_report import finish_run
from data_prep.mixture import DatasetSpec, MixtureArguments
from finetune.online_rl import load_prompts
from finetune.rl_rewards import RewardArguments, build_rewards, columns_of
from finetune.rounds import load_policy, run_rounds, sft_argv, summary_table
from finetune.sft import SFTScriptArguments


@dataclass
class RSScriptArguments(MixtureArguments):
    """Rounds of best-of-n sampling and SFT: the policy, prompts, sampling, selection and SFT settings.

    `datasets` rows are prompts (`prompt` messages) plus the columns the rewards read."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Starting policy: a chat checkpoint directory (a LoRA adapter is merged)."})
    output_dir: str | None = field(default=None, metadata={"help": "Where round-k/ directories and summary.md go."})
    heldout_datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Prompts never trained on, scored after every round."})
    rounds: int = field(default=3, metadata={"help": "Number of sample -> select -> SFT rounds."})
    num_samples: int = field(default=8, metadata={"help": "Responses sampled per prompt (the n of best-of-n)."})
    prompts_per_round: int | None = field(
        default=None, metadata={"help": "Prompts drawn (seeded, without replacement) each round; null: all."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (> 0)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Longest response, in tokens."})
    generation_batch_size: int = field(default=64, metadata={"help": "Prompts per generation batch."})
    min_score: float | None = field(
        default=None, metadata={"help": "Drop a prompt whose best response scores below this; null keeps every best."})
    accumulate: bool = field(
        default=False, metadata={"help": "SFT on the best responses of this and all earlier rounds (Llama 2 did, "
                                 "against forgetting), not this round's only."})
    sft_recipe: str | None = field(
        default=None, metadata={"help": "An SFT recipe (finetune/sft.py) whose training settings every round uses; "
                                "its model, datasets and output_dir are replaced."})
    sft_overrides: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "SFT recipe keys to change, e.g. {learning_rate: 1.0e-4}."})
    heldout_samples: int = field(
        default=0, metadata={"help": "Besides the greedy answer, sample this many answers per held-out prompt at "
                             "`temperature` (the policy's expected reward)."})
    seed: int = field(default=0, metadata={"help": "Seed for prompt draws and sampling (round k uses seed + k)."})

    def __post_init__(self):
        super().__post_init__()
        if not self.sft_recipe:
            raise ValueError("sft_recipe is not set; name the SFT recipe each round trains with, e.g. "
                             "recipes/tiny/sft/full.yaml")
        for name in ("rounds", "num_samples", "max_new_tokens", "generation_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.heldout_samples < 0:
            raise ValueError(f"heldout_samples must be >= 0, got {self.heldout_samples}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 to sample {self.num_samples} different responses")
        reserved = {"model_name_or_path", "datasets", "output_dir"} & set(self.sft_overrides)
        if reserved:
            raise ValueError(f"sft_overrides: {sorted(reserved)} are set by each round; remove them")


RECIPE_TYPES = (RSScriptArguments, RewardArguments)


def main(argv: list[str] | None = None) -> list[dict]:
    script, rewards = parse_recipe(RECIPE_TYPES, argv, required=("model_name_or_path", "output_dir", "sft_recipe"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # WORLD_SIZE too: a CPU launch without use_cpu starts 2 processes that each see a world of 1.
    if int(os.environ.get("WORLD_SIZE") or 1) > 1 or PartialState().num_processes > 1:
        raise CorralError("rejection sampling generates in one process; launch with accelerate_configs/cpu.yaml "
                          "or --num_processes 1")
    check_model_path(script.model_name_or_path)
    out = Path(script.output_dir)
    # The SFT settings are checked now, not after the first round's sampling.
    _, sft_args, sft_model_args = parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig), sft_argv(
        script, script.model_name_or_path, str(out / "round-1/sft_data.jsonl"), str(out / "round-1/model")),
        required=("output_dir",))
    check_before_loading(sft_args, sft_model_args)  # LoRA settings and targets, output_dir, disk space, secrets
    prompts = load_prompts(script.datasets, script.seed, dedup=script.dedup, reader="rejection sampling",
                           on_bad_rows=script.on_bad_rows).train.to_list()
    heldout = load_prompts(script.heldout_datasets, script.seed, "heldout_datasets", dedup=script.dedup,
                           reader="rejection sampling",
                           on_bad_rows=script.on_bad_rows).train.to_list() if script.heldout_datasets else []

    policy = load_policy(script.model_name_or_path, out / "round-0/model")
    eos = stop_token_ids(policy.tokenizer)
    components = build_rewards(rewards, eos, columns_of(prompts), "the prompt data (datasets)")
    if heldout:
        build_rewards(rewards, eos, columns_of(heldout), "the held-out prompts (heldout_datasets)")
    manifest = start_manifest(str(out), "finetune/rejection_sampling.py", resolved_config((script, rewards)),
                              {"prompts": len(prompts), "heldout_prompts": len(heldout),
                               "rewards": {c.name: c.weight for c in components}})

    summaries, changes = run_rounds(script, policy, prompts, heldout, components, out)
    table = summary_table(summaries, changes)
    (out / "summary.md").write_text(table + "\n")
    print("\n" + table + "\n")
    finish_run(str(out), manifest, rounds=summaries, heldout_changes=changes)
    return summaries


if __name__ == "__main__":
    run_cli(main)
