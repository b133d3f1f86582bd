"""Offline preference tuning of a chat model: DPO (every TRL loss type), KTO, ORPO, CPO and SimPO.

    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/dpo.py recipes/tiny/dpo/lora.yaml
    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/dpo.py recipes/tiny/dpo/lora.yaml --loss_type ipo
    accelerate launch ... finetune/dpo.py recipes/tiny/dpo/full.yaml --loss_type sigmoid sft --loss_weights 1.0 0.2

The recipe's `method` key picks the TRL trainer (table in finetune/preference.py); the recipe maps
onto `PreferenceScriptArguments`, that trainer's config (DPOConfig, KTOConfig, ORPOConfig, CPOConfig)
and TRL's `ModelConfig`. Order of work: recipe -> checkpoint path -> data (pairs, or unpaired rows for
KTO) -> tokenizer -> start model (an SFT LoRA adapter is merged into its base) -> reference (the start
model; with LoRA, the adapter-disabled model) -> trainer -> held-out metrics -> train -> held-out
metrics -> atomic save. Every user mistake before `train()` stops with a one-line error.
"""

from __future__ import annotations

from corral.script_help import exit_on_help

exit_on_help(__name__, __doc__, __file__)  # before the heavy imports: --help answers at once

import logging
import sys

from trl import get_peft_config

from corral.checkpoints import (MarkCompleteCallback, check_same_inputs, prepare_output_dir, run_training,
                               save_trained)
from corral.launch_checks import check_processes, wraps_with_fsdp
from corral.loading import check_model_path, finalize_for_chat, load_tokenizer, save_merged
from corral.manifest import start_manifest
from corral.pair_sampling import check_pair_sampling
from corral.preflight import check_before_loading
from corral.recipe import resolved_config, run_cli
from corral.run_report import finish_run
from corral.sharding import ShardReport
from corral.threads import pick_threads
from data_prep.pair_lengths import effect, length_report, warn_if_long
from data_prep.preference_data import load_preference_data
from finetune.preference import (
    build_trainer,
    check_method_args,
    load_start_model,
    parse_preference_recipe,
    reference_model,
)
from finetune.tuning import freeze_embeddings_except

logger = logging.getLogger("corral.dpo")


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    script, args, model_args = parse_preference_recipe(argv)
    method = script.method
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    check_method_args(method, args)
    check_pair_sampling(args, method)
    pick_threads("dpo", model_args, script.num_threads, args.use_cpu)
    check_model_path(model_args.model_name_or_path)
    check_before_loading(args, model_args)  # LoRA settings and targets, output_dir, disk space, secrets
    check_processes(args)  # every launched process joined the group (a CPU run without use_cpu trains alone)
    if method == "dpo" and script.shared_prompt and wraps_with_fsdp(args):
        logger.warning("shared_prompt is off: under FSDP its prompt-once forward calls the inner model, whose "
                       "embeddings FSDP has not gathered; TRL's forward runs (same log-probs, more FLOPs)")
        script.shared_prompt = False
    prepare_output_dir(args, script.overwrite_output_dir)  # clean a killed run's leftovers; resume by default

    data = load_preference_data(script, "unpaired" if method == "kto" else "preference", args.seed)
    # before the model loads: resuming a checkpoint of other data or another start model would be garbage
    start_fp = check_same_inputs(args.output_dir, args.resume_from_checkpoint, data.report.fingerprint,
                                 model_args.model_name_or_path)
    tokenizer = load_tokenizer(model_args.model_name_or_path, script.chat_template, model_args.model_revision)
    # TRL cuts long rows without a word; counted once, on the process that logs
    lengths = length_report(data.train.to_list(), tokenizer, args.max_length) if args.process_index == 0 else None
    if lengths:
        warn_if_long(lengths, effect("dpo", args))
    model, adapter_start = load_start_model(model_args, args)
    finalize_for_chat(model, tokenizer)
    peft_config = get_peft_config(model_args)
    if peft_config is None and script.freeze_embeddings:
        freeze_embeddings_except(model, tokenizer, [])
    ref = reference_model(method, model, adapter_start, peft_config, args)

    trainer = build_trainer(method, model, ref, args, data.train, data.eval, tokenizer, peft_config,
                            [MarkCompleteCallback(), ShardReport()], shared_prompt=script.shared_prompt)
    main_process = trainer.accelerator.is_main_process
    manifest = start_manifest(args.output_dir, "finetune/dpo.py", resolved_config((script, args, model_args)), {
        "fingerprint": data.report.fingerprint, "start_model_fingerprint": start_fp,
        "train_rows": len(data.train), "eval_rows": len(data.eval_rows), "lengths": lengths.as_dict(),
        "start_adapter_merged": adapter_start}) if main_process else None

    heldout = {}
    if data.eval is not None:
        heldout["before"] = trainer.evaluate()
    result = run_training(trainer)  # resumes from args.resume_from_checkpoint, stops at max_steps
    if data.eval is not None:
        heldout["after"] = trainer.evaluate()
        for key in ("eval_rewards/accuracies", "eval_rewards/margins"):
            if key in heldout["before"]:
                logger.info("held-out %s: %.3f -> %.3f", key.removeprefix("eval_"), heldout["before"][key],
                            heldout["after"][key])

    merged_only = peft_config is not None and adapter_start is not None
    if merged_only:
        # The adapter sits on an SFT model that exists only in memory: save the merged model instead.
        logger.info("%s was a LoRA adapter: saving the merged full model to %s", adapter_start, args.output_dir)
    save_trained(trainer, tokenizer, args.output_dir, merge_lora=merged_only)
    if main_process:
        if script.merge_adapter and peft_config is not None and not merged_only:
            save_merged(args.output_dir, model_args)
        finish_run(args.output_dir, manifest, metrics=result.metrics, heldout=heldout,
                        log_history=trainer.state.log_history)
    logger.info("saved to %s", args.output_dir)
    return trainer


if __name__ == "__main__":
    run_cli(main)
