"""The reward model: a causal LM checkpoint (base, SFT, or SFT LoRA adapter) with a scalar head.

`AutoModelForSequenceClassification` on a Llama checkpoint keeps the decoder, drops `lm_head` and
adds `score` (hidden -> 1), initialised from the seed. The head reads the last token that is not
padding, which it finds through `config.pad_token_id`: a causal LM checkpoint often has none (Llama 3
base has none), and then every row would be read at its last position, padding included. So the pad
id is always set from the tokenizer (a pad that is not an end-of-sequence token, see
`corral.loading.load_tokenizer`).
"""

from __future__ import annotations

import logging

from transformers import AutoModelForSequenceClassification, set_seed

from corral.loading import CheckpointError, is_adapter, load_error, merge_adapter_for_recipe, read_config, recipe_dtype

logger = logging.getLogger(__name__)


def _check_architecture(path: str, revision: str) -> None:
    cfg = read_config(path, revision)
    archs = getattr(cfg, "architectures", None) or []
    if archs and archs[0].endswith("ForSequenceClassification") and cfg.num_labels != 1:
        raise CheckpointError(f"{path}: a classifier with num_labels={cfg.num_labels}; a reward model has one output "
                              "(start from its base or SFT checkpoint instead)")
    if archs and not any(a.endswith(("ForCausalLM", "ForSequenceClassification")) for a in archs):
        raise CheckpointError(f"{path}: architecture {archs[0]} is not a causal LM; a reward model starts from a "
                              "*ForCausalLM (or reward) checkpoint")


def load_reward_backbone(model_args, training_args, pad_token_id: int):
    """A `*ForSequenceClassification` with `num_labels=1` from `model_args.model_name_or_path`."""
    if model_args.load_in_4bit or model_args.load_in_8bit:
        raise CheckpointError("reward/train.py saves a merged full reward model, which cannot come from a quantized "
                              "base; use LoRA (use_peft: true) in bf16 instead of load_in_4bit/load_in_8bit")
    set_seed(training_args.seed)  # the new head's initial weights
    path = model_args.model_name_or_path
    if is_adapter(path):
        model = _from_adapter(path, model_args, training_args)
    else:
        _check_architecture(path, model_args.model_revision)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, revision=model_args.model_revision, dtype=recipe_dtype(model_args, training_args),
                attn_implementation=model_args.attn_implementation)
        except (OSError, ValueError) as err:
            raise load_error(path, err) from None
    model.config.pad_token_id = pad_token_id
    return model


def _from_adapter(path: str, model_args, training_args):
    """Merge an SFT LoRA adapter into its base in memory, then move the decoder under a scalar head."""
    causal = merge_adapter_for_recipe(path, model_args, training_args)
    config = causal.config
    config.num_labels = 1
    model = AutoModelForSequenceClassification.from_config(config, dtype=causal.dtype)
    missing, _ = model.load_state_dict(causal.state_dict(), strict=False)
    if [k for k in missing if not k.startswith("score.")]:
        raise CheckpointError(f"{path}: decoder weights {missing[:3]} did not carry over to the reward model")
    logger.info("%s: reward head added to the merged model", path)
    model.config._name_or_path = str(path)
    return model


def seq_cls_lora(peft_config):
    """A reward LoRA trains the new head in full: task type SEQ_CLS makes peft save `score` with the adapter."""
    if peft_config is not None and peft_config.task_type != "SEQ_CLS":
        logger.info("lora_task_type %s -> SEQ_CLS (the score head is trained in full)", peft_config.task_type)
        peft_config.task_type = "SEQ_CLS"
    return peft_config
