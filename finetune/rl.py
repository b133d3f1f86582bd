"""Online RL of a chat model on prompts with rule rewards and/or a reward model: GRPO, RLOO, online DPO.

    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/rl.py recipes/tiny/rl/grpo.yaml
    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/rl.py recipes/tiny/rl/rloo.yaml --reward_model outputs/tiny-rm

`method` picks TRL's trainer (finetune/online_rl.py): grpo (`GRPOTrainer`), rloo (`RLOOTrainer`) or
online_dpo (TRL's *experimental* `OnlineDPOTrainer`). The recipe maps onto `RLScriptArguments`
(data, method, held-out evaluation), `RewardArguments` (finetune/rl_rewards.py: rule rewards from
reward/rules.py and a reward model, with weights), the method's TRL config (`beta` is the KL
coefficient) and TRL's `ModelConfig` (a LoRA adapter on top, if asked). TRL logs every reward
component (`rewards/<name>/mean`), the weighted `reward` and the KL to the reference (`kl`;
`objective/kl` for online DPO). With `heldout_datasets`, the policy is scored on those prompts
before and after training (and its KL to the starting policy measured there): `heldout_rewards.json`.
PPO with a value model is not in TRL 1.16 and is not offered.
"""

from __future__ import annotations

from corral.script_help import exit_on_help

exit_on_help(__name__, __doc__, __file__)  # before the heavy imports: --help answers at once

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

from trl import ModelConfig, get_peft_config

from corral.checkpoints import (CheckpointArguments, MarkCompleteCallback, check_same_inputs, prepare_output_dir,
                               run_training, save_final)
from corral.launch_checks import check_processes, wraps_with_fsdp
from corral.loading import (
    CHAT_TEMPLATE_HELP,
    check_model_path,
    finalize_for_chat,
    load_causal_lm,
    load_tokenizer,
    stop_token_ids,
)
from corral.manifest import start_manifest
from corral.preflight import check_before_loading
from corral.recipe import parse_recipe, resolved_config, run_cli
from corral.run_report import finish_run
from corral.sharding import ShardReport
from corral.threads import ThreadArguments, pick_threads
from data_prep.mixture import DatasetSpec, MixtureArguments
from finetune.fast_grpo import FastGRPOTrainer
from finetune.online_rl import (
    METHODS,
    check_trl_reward_settings,
    config_class,
    count_prompts_in_progress_bar,
    load_prompts,
    materialize_policy,
    recipe_method,
    trainer_class,
)
from finetune.rl_heldout import HeldoutPrompts, heldout_report, write_heldout
from finetune.rl_rewards import RewardArguments, build_rewards, columns_of, weights_of
from finetune.tuning import freeze_embeddings_except

logger = logging.getLogger("corral.rl")


@dataclass
class RLScriptArguments(MixtureArguments, ThreadArguments, CheckpointArguments):
    """What corral adds to the TRL trainer configs: the method, prompt data, held-out evaluation.

    `datasets` rows are prompts (`prompt` messages) plus the columns the rewards read."""

    method: Literal["grpo", "rloo", "online_dpo"] = field(
        default="grpo", metadata={"help": "grpo, rloo (TRL) or online_dpo (TRL experimental)."})
    heldout_datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Prompts never trained on, scored before and after training."})
    heldout_samples: int = field(
        default=0, metadata={"help": "Besides the greedy answer, sample this many answers per held-out prompt at the "
                             "training temperature: their mean is the policy's expected reward, what RL maximises."})
    heldout_batch_size: int = field(default=32, metadata={"help": "Prompts per held-out generation batch."})
    chat_template: str = field(default="llama3", metadata={"help": CHAT_TEMPLATE_HELP})
    fast_grpo: bool | None = field(
        default=None, metadata={"help": "Method grpo only (default on): prefill each prompt once per group in the "
                                "rollouts and run it once per batch in the log-prob passes (finetune/fast_grpo.py; "
                                "same loss and sampling). false: stock TRL GRPOTrainer."})
    freeze_embeddings: bool = field(
        default=True, metadata={"help": "Full fine-tuning: keep the embedding/lm_head matrix frozen. Rewarding answers "
                                "about the training prompts' entities otherwise raises those entities' (tied) "
                                "rows, and the policy names them for questions about others (docs/rl.md)."})

    def __post_init__(self):
        super().__post_init__()
        if self.heldout_samples < 0:
            raise ValueError(f"heldout_samples must be >= 0, got {self.heldout_samples}")
        if self.fast_grpo is not None and self.method != "grpo":
            raise ValueError(f"fast_grpo applies to method grpo only; remove it from this {self.method} recipe")


def recipe_types(argv: list[str]) -> tuple[type, ...]:
    """The dataclasses a recipe maps onto: the TRL config depends on its `method`."""
    return RLScriptArguments, RewardArguments, config_class(recipe_method(argv)), ModelConfig


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    script, rewards, args, model_args = parse_recipe(recipe_types(argv), argv,
                                                     required=("model_name_or_path", "output_dir"))
    method = script.method
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    check_trl_reward_settings(args)
    pick_threads("rl", model_args, script.num_threads, args.use_cpu)
    check_model_path(model_args.model_name_or_path)
    check_before_loading(args, model_args)  # LoRA settings and targets, output_dir, disk space, secrets
    check_processes(args)  # every launched process joined the group (a CPU run without use_cpu trains alone)
    if method == "grpo" and script.fast_grpo is not False and wraps_with_fsdp(args):
        logger.warning("fast_grpo is off: under FSDP its prompt-once passes call the inner model, whose "
                       "embeddings FSDP has not gathered; TRL's GRPOTrainer runs (same loss, more FLOPs)")
        script.fast_grpo = False
    prepare_output_dir(args, script.overwrite_output_dir)  # clean a killed run's leftovers; resume by default

    data = load_prompts(script.datasets, args.seed, dedup=script.dedup, on_bad_rows=script.on_bad_rows)
    # before the model loads: resuming a checkpoint of other data or another start model would be garbage
    start_fp = check_same_inputs(args.output_dir, args.resume_from_checkpoint, data.report.fingerprint,
                                 model_args.model_name_or_path)
    heldout = load_prompts(script.heldout_datasets, args.seed, "heldout_datasets", dedup=script.dedup,
                           on_bad_rows=script.on_bad_rows).train.to_list() if script.heldout_datasets else []
    tokenizer = load_tokenizer(model_args.model_name_or_path, script.chat_template, model_args.model_revision)
    eos = stop_token_ids(tokenizer)
    components = build_rewards(rewards, eos, columns_of(data.train), "the prompt data (datasets)")
    if heldout:
        build_rewards(rewards, eos, columns_of(heldout), "the held-out prompts (heldout_datasets)")
    args.reward_weights = weights_of(components)
    logger.info("rewards: %s", ", ".join(f"{c.name} x {c.weight:g}" for c in components))

    # Loaded below with the recipe's dtype and quantization, not as the merge left it.
    model_args.model_name_or_path, _ = materialize_policy(model_args.model_name_or_path,
                                                          f"{args.output_dir}/policy-init")
    model = load_causal_lm(model_args, args)
    finalize_for_chat(model, tokenizer)
    if script.freeze_embeddings and not model_args.use_peft:
        freeze_embeddings_except(model, tokenizer, [])
    held = HeldoutPrompts(heldout, components, script.heldout_samples, args.temperature,
                          getattr(args, "max_completion_length", None) or args.max_new_tokens,
                          script.heldout_batch_size, args.seed)
    before = held.score(model, tokenizer, "before") if heldout else None
    trainer_cls = FastGRPOTrainer if method == "grpo" and script.fast_grpo is not False else trainer_class(method)
    trainer = trainer_cls(model=model, reward_funcs=components, args=args, train_dataset=data.train,
                          processing_class=tokenizer, peft_config=get_peft_config(model_args),
                          callbacks=[MarkCompleteCallback(), ShardReport()])
    count_prompts_in_progress_bar(trainer, method)
    main_process = trainer.accelerator.is_main_process
    manifest = start_manifest(args.output_dir, "finetune/rl.py", resolved_config((script, rewards, args, model_args)), {
        "fingerprint": data.report.fingerprint, "start_model_fingerprint": start_fp,
        "train_prompts": len(data.train), "heldout_prompts": len(heldout),
        "rewards": {c.name: c.weight for c in components}}) if main_process else None

    start = time.time()
    result = run_training(trainer)  # resumes from args.resume_from_checkpoint, stops at max_steps
    seconds = time.time() - start
    save_final(trainer, args.output_dir)
    summary = {"method": method, "steps": trainer.state.global_step, "train_seconds": round(seconds, 1)}
    if heldout and main_process:
        after = held.score(trainer.model, tokenizer, "after")
        summary.update(heldout_report(trainer.model, before, after, model_args, args, tokenizer.pad_token_id))
        write_heldout(args.output_dir, summary, after)
    if main_process:
        tokenizer.save_pretrained(args.output_dir)
        finish_run(args.output_dir, manifest, metrics=result.metrics, summary=summary,
                        log_history=trainer.state.log_history)
    logger.info("saved to %s", args.output_dir)
    return summary


if __name__ == "__main__":
    run_cli(main)


__all__ = ["METHODS", "RLScriptArguments", "main", "recipe_types"]
