"""Train a Bradley-Terry reward model (full or LoRA) from a base or SFT Llama checkpoint.

    accelerate launch --config_file accelerate_configs/cpu.yaml reward/train.py recipes/tiny/reward/full.yaml
    accelerate launch --config_file accelerate_configs/cpu.yaml reward/train.py recipes/tiny/reward/lora.yaml

The recipe maps onto `RewardScriptArguments` (corral: data and chat handling), TRL's `RewardConfig`
(training; `center_rewards_coefficient` adds the mean-zero penalty) and TRL's `ModelConfig`. Rows are
preference pairs (any preference format corral reads); an optional `margin` column, on every row,
makes the loss -log sigmoid(r_chosen - r_rejected - margin). Order of work: recipe -> checkpoint path
-> data -> tokenizer -> model with a scalar head -> RewardTrainer -> train -> atomic save (a LoRA
reward model is saved merged, so `reward.score` can load it) -> held-out accuracy and margin histogram
from the saved checkpoint, through `reward.score`.
"""

from __future__ import annotations

from corral.script_help import exit_on_help

exit_on_help(__name__, __doc__, __file__)  # before the heavy imports: --help answers at once

import logging
from dataclasses import dataclass

from trl import ModelConfig, RewardConfig, RewardTrainer, get_peft_config

from corral.checkpoints import (CheckpointArguments, MarkCompleteCallback, check_same_inputs, prepare_output_dir,
                               run_training, save_trained)
from corral.errors import DataError
from corral.launch_checks import check_processes
from corral.loading import check_model_path, load_tokenizer
from corral.manifest import start_manifest
from corral.pair_sampling import check_pair_sampling, with_pair_sampling
from corral.preflight import check_before_loading
from corral.recipe import parse_recipe, resolved_config, run_cli
from corral.run_report import finish_run
from corral.sharding import ShardReport
from corral.threads import ThreadArguments, pick_threads
from data_prep.pair_lengths import length_report, warn_if_long
from data_prep.preference_data import PreferenceDataArguments, load_preference_data
from evals.reward_model import pairwise
from reward.modeling import load_reward_backbone, seq_cls_lora
from reward.report import write_heldout_report

logger = logging.getLogger("corral.reward")


@dataclass
class RewardScriptArguments(PreferenceDataArguments, ThreadArguments, CheckpointArguments):
    """corral's part of a reward recipe: the preference data (`datasets`, `eval_datasets`, ...) and chat template."""


def check_margins(rows, where: str) -> None:
    """A `margin` column must be on every row or none (TRL batches it as one float tensor)."""
    if "margin" not in rows.column_names:
        return
    missing = sum(m is None for m in rows["margin"])
    if missing:
        raise DataError(f"{where}: {missing} of {len(rows)} rows have no margin; give every row a margin or none")


def main(argv: list[str] | None = None):
    script, args, model_args = parse_recipe(
        (RewardScriptArguments, RewardConfig, ModelConfig), argv, required=("model_name_or_path", "output_dir"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pick_threads("reward", model_args, script.num_threads, args.use_cpu)
    check_pair_sampling(args, "reward")
    check_model_path(model_args.model_name_or_path)
    check_before_loading(args, model_args, head="reward")  # LoRA settings and targets, output_dir, disk, secrets
    check_processes(args)  # every launched process joined the group (a CPU run without use_cpu trains alone)
    prepare_output_dir(args, script.overwrite_output_dir)  # clean a killed run's leftovers; resume by default

    data = load_preference_data(script, "preference", args.seed)
    # before the model loads: resuming a checkpoint of other data or another start model would be garbage
    start_fp = check_same_inputs(args.output_dir, args.resume_from_checkpoint, data.report.fingerprint,
                                 model_args.model_name_or_path)
    check_margins(data.train, "datasets")
    tokenizer = load_tokenizer(model_args.model_name_or_path, script.chat_template, model_args.model_revision)
    # TRL drops long pairs without a word; counted once, on the process that logs
    lengths = length_report(data.train.to_list(), tokenizer, args.max_length) if args.process_index == 0 else None
    if lengths:
        warn_if_long(lengths, "reward")
    model = load_reward_backbone(model_args, args, tokenizer.pad_token_id)
    peft_config = seq_cls_lora(get_peft_config(model_args))

    # group_by_length: transformers' own sampler needs input_ids, which pairs lack
    trainer_cls = with_pair_sampling(RewardTrainer, args)
    trainer = trainer_cls(model=model, args=args, train_dataset=data.train, eval_dataset=data.eval,
                          processing_class=tokenizer, peft_config=peft_config,
                          callbacks=[MarkCompleteCallback(), ShardReport()])
    main_process = trainer.accelerator.is_main_process
    manifest = start_manifest(args.output_dir, "reward/train.py", resolved_config((script, args, model_args)), {
        "fingerprint": data.report.fingerprint, "start_model_fingerprint": start_fp,
        "train_rows": len(data.train), "lengths": lengths.as_dict(),
        "eval_rows": len(data.eval_rows)}) if main_process else None

    result = run_training(trainer)  # resumes from args.resume_from_checkpoint, stops at max_steps
    save_trained(trainer, tokenizer, args.output_dir, merge_lora=peft_config is not None,
                 adapter_dir=f"{args.output_dir}/adapter")
    heldout = None
    if main_process:
        if data.eval_rows:
            chosen, rejected = pairwise(args.output_dir, data.eval_rows, batch_size=args.per_device_eval_batch_size,
                                        device=str(args.device))
            source = "eval_datasets" if script.eval_datasets else "test_split_size"
            heldout = write_heldout_report(args.output_dir, chosen, rejected, source)
            logger.info("held-out pairwise accuracy %.1f%% on %d pairs (mean margin %.2f); %s/reward_margins.png",
                        100 * heldout["accuracy"], heldout["pairs"], heldout["margin_mean"], args.output_dir)
        finish_run(args.output_dir, manifest, metrics=result.metrics, heldout=heldout,
                        log_history=trainer.state.log_history)
    logger.info("saved to %s", args.output_dir)
    return trainer


if __name__ == "__main__":
    run_cli(main)
