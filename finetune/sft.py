"""Supervised fine-tuning (full, LoRA, QLoRA 4-bit, DoRA) of a Llama checkpoint on chat or plain text.

    accelerate launch --config_file accelerate_configs/cpu.yaml finetune/sft.py recipes/tiny/sft/lora.yaml
    accelerate launch finetune/sft.py recipes/tiny/sft/lora.yaml --learning_rate 3e-4   # CLI overrides YAML

The recipe maps onto three dataclasses: `SFTScriptArguments` (corral: data and chat handling),
TRL's `SFTConfig` (training) and TRL's `ModelConfig` (checkpoint, LoRA/QLoRA/DoRA). Order of work:
recipe -> checkpoint path -> data (read, validated, mixed) -> tokenizer and template checks ->
tokenized samples with guards -> model -> untrained chat tokens -> trainer -> train -> atomic save.
Every user mistake before `train()` stops with a one-line error.
"""

from __future__ import annotations

from corral.script_help import exit_on_help

exit_on_help(__name__, __doc__, __file__)  # before the heavy imports: --help answers at once

import logging
from dataclasses import dataclass, field
from typing import Literal

from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

from corral.checkpoints import (CheckpointArguments, MarkCompleteCallback, check_same_inputs, prepare_output_dir,
                               run_training, save_final)
from corral.launch_checks import check_processes
from corral.loading import (CHAT_TEMPLATE_HELP, check_model_path, finalize_for_chat, load_causal_lm, load_tokenizer,
                            save_merged)
from corral.manifest import start_manifest
from corral.preflight import check_before_loading
from corral.recipe import parse_recipe, resolved_config, run_cli
from corral.run_report import finish_run
from corral.sharding import ShardReport, full_embeddings
from corral.special_tokens import initialize_untrained_tokens
from corral.threads import ThreadArguments, pick_threads
from data_prep.mixture import DatasetSpec, MixtureArguments, load_mixture
from data_prep.replay import check_replay_mix, load_replay
from data_prep.safety_mix import check_safety_mix, with_safety_share
from finetune.packing import row_packing
from finetune.plan import check_memory_before_loading
from finetune.sft_data import check_template_matches_official, tokenize_conversations, tokenize_text, with_replay
from finetune.tuning import freeze_embeddings_except, patch_trainable_token_head, peft_trainable_tokens

logger = logging.getLogger("corral.sft")


@dataclass
class SFTScriptArguments(MixtureArguments, ThreadArguments, CheckpointArguments):
    """What corral adds to TRL's SFTConfig/ModelConfig: where the data is and how chat is handled."""

    dataset_kind: Literal["sft", "text"] = field(
        default="sft", metadata={"help": "sft: conversations (messages); text: plain documents (continued pretraining)."})
    test_split_size: float = field(
        default=0.0, metadata={"help": "Held-out eval rows: a share (< 1) or a count (>= 1) of the unique rows."})
    chat_template: str = field(default="llama3", metadata={"help": CHAT_TEMPLATE_HELP})
    special_token_init: Literal["related", "mean", "none"] = field(
        default="related", metadata={"help": "Re-initialise chat tokens a base checkpoint never trained: related "
                                     "(from text with the same role, default), mean, or none."})
    drop_long_samples: bool = field(
        default=False, metadata={"help": "Drop samples longer than max_length instead of truncating them."})
    freeze_embeddings: bool = field(
        default=True, metadata={"help": "Full fine-tuning: keep embedding/lm_head rows frozen except the chat tokens "
                                "re-initialised by special_token_init (LoRA trains those rows via trainable_token_indices)."})
    merge_adapter: bool = field(
        default=False, metadata={"help": "With LoRA/QLoRA/DoRA: also save a merged full model in output_dir/merged."})
    memory_check: Literal["warn", "error", "off"] = field(
        default="warn", metadata={"help": "Before loading the model, estimate per-GPU memory for this launch "
                                  "(python -m finetune.plan) and warn, or stop (error), if it does not fit."})
    memory_check_gib: float | None = field(
        default=None, metadata={"help": "GPU memory (GiB) for memory_check; default: the first GPU's. On a CPU "
                                "without it the check is skipped."})
    safety_datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Safety sources (refusals of harmful requests, answers to harmless "
                                        "look-alikes) mixed into `datasets` at the share `safety_mix`."})
    safety_mix: float = field(
        default=0.0, metadata={"help": "Share of the training rows drawn from safety_datasets, in [0, 1] (0.15: about "
                               "one row in seven); their weights are scaled to reach it (data_prep/safety_mix.py)."})

    replay_datasets: list[DatasetSpec] = field(
        default_factory=list, metadata={"help": "Plain-text sources (`text` rows, e.g. the base model's pretraining "
                                        "corpus) trained with every token beside the conversations, at the share "
                                        "`replay_mix`, so tuning keeps what the base knew (data_prep/replay.py)."})
    replay_mix: float = field(
        default=0.0, metadata={"help": "Share of the training rows drawn from replay_datasets, in [0, 1) (0.2: one "
                               "row in five is replayed text)."})

    def __post_init__(self):
        super().__post_init__()
        check_safety_mix(self.safety_mix, self.safety_datasets)
        check_replay_mix(self.replay_mix, self.replay_datasets, self.dataset_kind)


def load_data(script: SFTScriptArguments, seed: int):
    """The recipe's data mixture, read and validated (also what `python -m finetune.inspect_recipe` shows)."""
    specs = with_safety_share(script.datasets, script.safety_datasets, script.safety_mix, script.dataset_kind,
                              seed=seed, dedup=script.dedup, on_bad_rows=script.on_bad_rows)
    return load_mixture(specs, kind=script.dataset_kind, seed=seed, test_split_size=script.test_split_size,
                        dedup=script.dedup, on_bad_rows=script.on_bad_rows)


def tokenize_rows(rows: list[dict], tokenizer, script: SFTScriptArguments, args: SFTConfig, drop_long_samples: bool):
    """Rows tokenized as training sees them, guards included; sft rows carry their loss masks (`assistant_masks`)."""
    if script.dataset_kind == "text":
        return tokenize_text(rows, tokenizer, args.max_length, drop_long_samples)
    return tokenize_conversations(rows, tokenizer, assistant_only_loss=args.assistant_only_loss,
                                  max_length=args.max_length, drop_long_samples=drop_long_samples)


def main(argv: list[str] | None = None) -> None:
    script, args, model_args = parse_recipe(
        (SFTScriptArguments, SFTConfig, ModelConfig), argv, required=("model_name_or_path", "output_dir"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pick_threads("sft", model_args, script.num_threads, args.use_cpu)
    check_model_path(model_args.model_name_or_path)
    check_before_loading(args, model_args)  # LoRA settings and targets, output_dir, disk space, secrets
    check_processes(args)  # every launched process joined the group (a CPU run without use_cpu trains alone)
    prepare_output_dir(args, script.overwrite_output_dir)  # clean a killed run's leftovers; resume by default

    data = load_data(script, args.seed)
    replay = load_replay(script.replay_datasets, script.replay_mix, len(data.train), seed=args.seed,
                         dedup=script.dedup, on_bad_rows=script.on_bad_rows)
    fingerprint = data.report.fingerprint + (f"+{replay.report.fingerprint}" if replay else "")
    # before the model loads: resuming a checkpoint of other data or another start model would be garbage
    start_fp = check_same_inputs(args.output_dir, args.resume_from_checkpoint, fingerprint,
                                 model_args.model_name_or_path)
    replay_lines = [f"replay: {line}" for line in replay.report.summary_lines()] if replay else []
    for line in data.report.summary_lines() + replay_lines:
        logger.info(line)
    tokenizer = load_tokenizer(model_args.model_name_or_path, script.chat_template, model_args.model_revision)

    train_rows = data.train.to_list()
    if script.dataset_kind == "sft" and script.chat_template == "llama3":
        check_template_matches_official(tokenizer, train_rows[0]["messages"])
    train = tokenize_rows(train_rows, tokenizer, script, args, script.drop_long_samples)
    if replay:  # every token of a replayed text row is trained
        train = with_replay(train, tokenize_text(replay.train.to_list(), tokenizer, args.max_length,
                                                 script.drop_long_samples))
    logger.info("train: %s", train.summary(args.max_length))
    test = None if data.test is None else tokenize_rows(data.test.to_list(), tokenizer, script, args,
                                                        script.drop_long_samples)
    # The loss masks are in the tokenized data (`assistant_masks`); TRL must not re-derive them.
    args.assistant_only_loss = False

    check_memory_before_loading(args, model_args, script.memory_check, script.memory_check_gib)
    model = load_causal_lm(model_args, args)
    changed = []
    with full_embeddings(model):  # whole, also when DeepSpeed ZeRO-3 built the model partitioned
        if script.dataset_kind == "sft":
            changed = initialize_untrained_tokens(model, tokenizer, script.special_token_init)
        finalize_for_chat(model, tokenizer)
        peft_config = get_peft_config(model_args)
        if peft_config is not None and changed:
            peft_trainable_tokens(peft_config, model, tokenizer, changed)
        elif peft_config is None and script.freeze_embeddings:
            freeze_embeddings_except(model, tokenizer, changed)

    # Without flash-attention, TRL's packed batches cost (B*L)^2 attention: pack here, one row per item.
    collator, train_set = row_packing(train.dataset, tokenizer.pad_token_id, args, model_args.attn_implementation)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_set, data_collator=collator,
                         eval_dataset=test.dataset if test else None, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[MarkCompleteCallback(), ShardReport()])
    patch_trainable_token_head(trainer.model)
    main_process = trainer.accelerator.is_main_process
    config = resolved_config((script, args, model_args))
    manifest = start_manifest(args.output_dir, "finetune/sft.py", config, {
        "fingerprint": fingerprint, "start_model_fingerprint": start_fp,
        "train_rows": len(data.train), "train_tokens": sum(train.lengths),
        "sources": data.report.as_dict()["sources"],  # per source: path, detected format, row counts
        "replay_rows": len(replay.train) if replay else 0,
        "replay_sources": replay.report.as_dict()["sources"] if replay else [],
        "long_samples": train.n_long, "dropped_long_samples": train.n_dropped,
        "special_tokens_reinitialised": changed}) if main_process else None

    result = run_training(trainer)  # resumes from args.resume_from_checkpoint, stops at max_steps
    save_final(trainer, args.output_dir)
    if main_process:
        tokenizer.save_pretrained(args.output_dir)
        if script.merge_adapter and peft_config is not None:
            save_merged(args.output_dir, model_args)
        finish_run(args.output_dir, manifest, metrics=result.metrics, log_history=trainer.state.log_history)
    logger.info("saved to %s", args.output_dir)


if __name__ == "__main__":
    run_cli(main)
