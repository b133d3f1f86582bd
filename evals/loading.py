"""Load a checkpoint to evaluate: a full model directory, or a LoRA adapter directory plus its base.

An adapter directory (one with `adapter_config.json`) names its base in `base_model_name_or_path`.
We look for that base as given, then relative to the adapter directory, load it, apply the adapter
with peft and merge it: a merged model generates as fast as the base, and evaluation never trains.
The tokenizer comes from the adapter directory when it saved one (fine-tuning may have added the chat
template), else from the base.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_prep.chat_template import LLAMA3_SPECIAL_TOKENS
from data_prep.errors import CorralError

ADAPTER_CONFIG = "adapter_config.json"


class CheckpointError(CorralError, ValueError):
    """A model path that cannot be evaluated; the message is one line saying which and why (a CorralError,
    so entry scripts that load through here print it as one line too)."""


def resolve_base(adapter_dir: str | Path) -> Path:
    """The local base checkpoint an adapter directory was trained on."""
    adapter_dir = Path(adapter_dir)
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise CheckpointError(f"{adapter_dir / ADAPTER_CONFIG}: no base_model_name_or_path")
    for candidate in (Path(base), adapter_dir / base):
        if (candidate / "config.json").is_file():
            return candidate
    raise CheckpointError(
        f"{adapter_dir}: base model {base!r} (adapter_config.json base_model_name_or_path) is not a local "
        "checkpoint directory; fix the path in adapter_config.json"
    )


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def load_tokenizer(path: str | Path):
    """Tokenizer ready for batched generation: left padding, and a pad token that is not an EOS."""
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        pad = LLAMA3_SPECIAL_TOKENS["pad"]
        tok.pad_token = pad if pad in tok.get_vocab() else tok.eos_token
    return tok


def load_model(path: str | Path, device: str = "cpu", dtype: str = "auto"):
    """(model, tokenizer) for `path`, a full checkpoint or a LoRA adapter; the model in eval mode."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model directory")
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    if is_adapter(path):
        from peft import PeftModel

        base = resolve_base(path)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
        has_tokenizer = any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
        tokenizer = load_tokenizer(path if has_tokenizer else base)
    elif (path / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        tokenizer = load_tokenizer(path)
    else:
        raise CheckpointError(f"{path}: neither a checkpoint (config.json) nor a LoRA adapter ({ADAPTER_CONFIG})")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a response: the generation config's (int or list), the tokenizer's, `<|eot_id|>`."""
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    vocab = tokenizer.get_vocab()
    extra = [tokenizer.eos_token_id] + [vocab.get(LLAMA3_SPECIAL_TOKENS[k]) for k in ("eot", "eos")]
    for i in extra:
        if i is not None and i not in ids:
            ids.append(i)
    return ids
