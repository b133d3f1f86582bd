"""What the DPO-family entry script needs beyond the shared core: the method table, the start checkpoint, the trainer.

`finetune/dpo.py` trains every offline preference method with TRL's own trainers, chosen by the
recipe's `method` key; `reward/train.py` reads the same data arguments. Where each trainer lives in
TRL 1.16 (corral pins `trl>=1.16,<1.17` because two of them are experimental):

| method  | TRL classes                                          | reference model | data                      |
|---------|------------------------------------------------------|-----------------|---------------------------|
| `dpo`   | `trl.DPOConfig` / `trl.DPOTrainer`                   | yes             | pairs                     |
| `kto`   | `trl.KTOConfig` / `trl.KTOTrainer`                   | yes             | unpaired (pairs are split)|
| `orpo`  | `trl.experimental.orpo.ORPOConfig` / `ORPOTrainer`   | no              | pairs                     |
| `cpo`   | `trl.experimental.cpo.CPOConfig` / `CPOTrainer`      | no              | pairs                     |
| `simpo` | CPO with `loss_type: simpo` (`cpo_alpha: 0` = SimPO) | no              | pairs                     |

The recipe is parsed onto `PreferenceScriptArguments`, the method's TRL config and TRL's
`ModelConfig`, so a key of another method (`desirable_weight` in a DPO recipe) is an unknown key.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from corral import recipe
from corral.checkpoints import CheckpointArguments
from corral.errors import CorralError
from corral.loading import CheckpointError, is_adapter, load_causal_lm, merge_adapter_for_recipe
from corral.pair_sampling import with_pair_sampling
from corral.threads import ThreadArguments
from data_prep.preference_data import PreferenceDataArguments
from finetune.shared_prompt import shared_prompt_dpo_trainer

logger = logging.getLogger(__name__)

METHODS = ("dpo", "kto", "orpo", "cpo", "simpo")
REFERENCE_FREE = ("orpo", "cpo", "simpo")


@dataclass
class PreferenceScriptArguments(PreferenceDataArguments, ThreadArguments, CheckpointArguments):
    """corral's part of a DPO-family recipe: which method, and how a LoRA result is saved."""

    method: Literal["dpo", "kto", "orpo", "cpo", "simpo"] = field(
        default="dpo", metadata={"help": "dpo (any DPOConfig loss_type), kto, orpo, cpo, or simpo (CPO with loss_type: simpo)."})
    freeze_embeddings: bool = field(
        default=True, metadata={"help": "Full fine-tuning: keep the embedding matrix (and a tied lm_head) frozen. "
                                "Trainable rows drift toward the names in the pairs, and the tuned model then answers "
                                "about other subjects with those (docs/results-tiny-world.md)."})
    merge_adapter: bool = field(
        default=False, metadata={"help": "With LoRA: also save the merged full model in output_dir/merged. Always "
                                 "done (into output_dir) when model_name_or_path is itself a LoRA adapter."})
    shared_prompt: bool = field(
        default=True, metadata={"help": "method dpo: run each pair's prompt once and the LM head on answer tokens only "
                                "(finetune/shared_prompt.py; same log-probs as TRL's forward, fewer FLOPs)."})


def method_classes(method: str) -> tuple[type, type]:
    """(TRL config class, TRL trainer class) of a method. ORPO and CPO are in `trl.experimental` in TRL 1.16."""
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer
    if method == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOConfig, KTOTrainer
    if method == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOConfig, ORPOTrainer
    if method in ("cpo", "simpo"):
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        return CPOConfig, CPOTrainer
    raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")


def peek_method(argv: list[str]) -> str:
    """The recipe's preference method (`dpo` when unreadable; the strict parse then says why)."""
    return recipe.peek_method(argv, METHODS, "dpo")


def recipe_types(argv: list[str]) -> tuple[type, type, type]:
    """The dataclasses a recipe is parsed onto: corral's arguments, its method's TRL config, TRL's ModelConfig."""
    from trl import ModelConfig

    return PreferenceScriptArguments, method_classes(peek_method(argv))[0], ModelConfig


def parse_preference_recipe(argv: list[str]) -> tuple:
    """`parse_recipe` onto `recipe_types(argv)`; a key that belongs to another method says so."""
    from corral.recipe import RecipeError, parse_recipe

    types = recipe_types(argv)
    try:
        return parse_recipe(types, argv, required=("model_name_or_path", "output_dir"))
    except RecipeError as err:
        found = re.search(r"unknown (key|option) '(?:--)?([\w-]+)'", str(err))
        key = found.group(2).replace("-", "_") if found else None
        owners = [m for m in METHODS if key and key in {f.name for f in dataclasses.fields(method_classes(m)[0])}]
        if not owners:
            raise
        what = found.group(1)
        head = str(err)[: found.end()]
        raise RecipeError(f"{head} (a {'/'.join(owners)} {what}; this recipe's method is {peek_method(argv)})") from None


def check_method_args(method: str, args) -> None:
    """One-line errors for settings TRL would reject with a traceback, or accept and train wrongly."""
    if method == "simpo" and args.loss_type != "simpo":
        raise CorralError(f"method simpo trains CPO with loss_type: simpo, got loss_type: {args.loss_type} "
                          "(set loss_type: simpo, or method: cpo for the other CPO losses)")
    if method == "kto" and args.loss_type == "kto" and args.per_device_train_batch_size < 2:
        raise CorralError("method kto: per_device_train_batch_size must be >= 2 (the KL term is estimated from the "
                          "other completions in the batch)")
    if method == "dpo" and "robust" in args.loss_type and not 0 <= args.label_smoothing < 0.5:
        raise CorralError(f"loss_type robust: label_smoothing is the share of flipped labels and must be in [0, 0.5), "
                          f"got {args.label_smoothing}")
    if method in ("dpo", "kto") and args.sync_ref_model and args.precompute_ref_log_probs:
        raise CorralError("sync_ref_model and precompute_ref_log_probs cannot both be true (a moving reference "
                          "cannot be computed in advance)")


def load_start_model(model_args, training_args):
    """The model preference tuning starts from: a full checkpoint, or a LoRA adapter merged into its base.

    Returns (model, adapter_dir or None). A merged SFT adapter exists only in memory, which is why
    `finetune/dpo.py` then saves a full model and gives TRL an explicit reference copy.
    """
    path = model_args.model_name_or_path
    if not is_adapter(path):
        return load_causal_lm(model_args, training_args), None
    if model_args.load_in_4bit or model_args.load_in_8bit:
        raise CheckpointError(f"{path}: a LoRA adapter cannot be merged into a quantized base; save the merged SFT "
                              "model (merge_adapter: true in the SFT recipe) and start from it")
    model = merge_adapter_for_recipe(path, model_args, training_args)
    model.requires_grad_(True)  # peft froze the base weights when it wrapped them; they are the model now
    model.config._name_or_path = str(path)
    return model, str(path)


def reference_model(method: str, model, adapter_start: str | None, peft_config, args):
    """The frozen reference for DPO/KTO, or None where TRL derives it itself.

    None: with LoRA (TRL disables the adapter to get the start model), with precomputed reference
    log-probs (computed from the start model before its first update), and for a full checkpoint on
    disk (TRL loads a second copy from the same path). A merged SFT adapter is not on disk, so it gets
    an explicit frozen copy.
    """
    if method in REFERENCE_FREE or peft_config is not None or args.precompute_ref_log_probs or adapter_start is None:
        return None
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def build_trainer(method: str, model, ref_model, args, train, evaluation, tokenizer, peft_config, callbacks,
                  shared_prompt: bool = False):
    """The TRL trainer for `method`, built the same way for every method (DPO's with a shared-prompt forward if asked)."""
    _, trainer_cls = method_classes(method)
    trainer_cls = with_pair_sampling(trainer_cls, args)  # group_by_length: transformers' sampler needs input_ids
    if method == "dpo" and shared_prompt:
        trainer_cls = shared_prompt_dpo_trainer(trainer_cls)
    if method == "dpo" and getattr(args, "precompute_ref_log_probs", False):
        trainer_cls = shared_precompute_cache(trainer_cls)
    kwargs = dict(model=model, args=args, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer,
                  peft_config=peft_config, callbacks=callbacks)
    if method not in REFERENCE_FREE:
        kwargs["ref_model"] = ref_model
    return trainer_cls(**kwargs)


def shared_precompute_cache(dpo_trainer_cls):
    """`dpo_trainer_cls` whose precomputed reference log-probs reach every process of a multi-process run.

    TRL 1.16 writes them to a cache file next to the dataset's own cache files on rank 0 and reads that file
    on every rank. An in-memory dataset (what corral's mixture builds) keeps its cache in a temporary
    directory of each process, so rank 1 looked for a file only rank 0 had (FileNotFoundError). Here the
    dataset is first written once to `<output_dir>/precompute/`, a directory every process sees.
    """

    class SharedPrecomputeCache(dpo_trainer_cls):
        def _precompute_ref_logps(self, dataset, name, batch_size):
            if self.accelerator.num_processes > 1 and not dataset.cache_files:
                path = Path(self.args.output_dir) / "precompute" / f"{name}.arrow"
                path.parent.mkdir(parents=True, exist_ok=True)
                with self.accelerator.main_process_first():  # rank 0 writes it, the others read it
                    dataset = dataset.map(cache_file_name=str(path),
                                          load_from_cache_file=not self.accelerator.is_main_process)
            return super()._precompute_ref_logps(dataset, name, batch_size)

    return SharedPrecomputeCache
