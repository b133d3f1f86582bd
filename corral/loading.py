"""The one place corral loads models, tokenizers and LoRA adapters, for training and for use.

Training (`load_causal_lm`, `load_tokenizer`) checks that a checkpoint fits the recipe *before*
weights load: the directory exists (or the id is a Hub id), it holds a causal LM config, the tokenizer
has the chat template's special tokens, and the pad token is not an end-of-sequence token (else
padding is masked as EOS and the model never learns to stop).

Use (`load_model`) takes a full checkpoint or a LoRA adapter directory: an adapter names its base in
`adapter_config.json` (`resolve_base` finds it as given or relative to the adapter), which is loaded,
and the adapter applied and merged (`merge_adapter`): a merged model generates as fast as the base.
The tokenizer comes from the adapter directory when it saved one (fine-tuning may have added the chat
template), else from the base.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from corral.chat_templates import (
    LLAMA3_CHAT_TEMPLATE,
    LLAMA3_SPECIAL_TOKENS,
    LLAMA3_TRAINING_CHAT_TEMPLATE,
    LLAMA31_CHAT_TEMPLATE,
    LLAMA31_TOOL_TOKENS,
)
from corral.errors import CorralError

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CHAT_TEMPLATE_HELP = (
    "llama3: the official Llama 3 Instruct template (added when the checkpoint has none, as Llama 3 base "
    "checkpoints do; a different existing template is an error); llama3.1: Meta's Llama 3.1 format with tool "
    "definitions, tool calls (<|python_tag|> ... <|eom_id|>) and ipython tool results (needs a Llama 3.1+ "
    "tokenizer); keep: use the checkpoint's own template; or a path to a .jinja file."
)


ADAPTER_CONFIG = "adapter_config.json"


class CheckpointError(CorralError, ValueError):
    """A checkpoint (model, adapter or tokenizer) that is missing or does not fit; the message is one line."""


def check_model_path(name_or_path: str | None) -> str:
    """One-line error for a missing local checkpoint; Hub ids pass (they fail later if offline)."""
    if not name_or_path:
        raise CheckpointError("model_name_or_path is not set; point it at a local checkpoint directory or a Hub id")
    p = Path(name_or_path)
    if p.is_dir():
        if not (p / "config.json").is_file() and not (p / "adapter_config.json").is_file():
            raise CheckpointError(f"model_name_or_path {name_or_path}: directory has no config.json (not a checkpoint)")
        return name_or_path
    if p.exists():
        raise CheckpointError(f"model_name_or_path {name_or_path}: is a file; give the checkpoint directory")
    hint = " (run `make tiny-base` to build the embedded tiny model)" if "tiny" in name_or_path else ""
    first = name_or_path.split("/")[0]
    # outputs/ is where every corral recipe writes; a Hub organisation of that name is not worth a network call
    local_looking = name_or_path.startswith((".", "/", "~")) or first == "outputs" or Path(first).is_dir()
    if local_looking or not _HUB_ID.match(name_or_path):
        raise CheckpointError(f"model_name_or_path {name_or_path}: no such directory{hint}")
    # Looks like a Hub id: fetch its config.json now (cached after), so a typo or no network fails here.
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(name_or_path, "config.json")
    except Exception as err:  # offline, unknown repo, gated repo: all end the run the same way
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise CheckpointError(
            f"model_name_or_path {name_or_path}: no such directory, and not fetched from the Hub ({reason}){hint}"
        ) from None
    return name_or_path


def load_error(name: str, err: Exception) -> CheckpointError:
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    if not Path(name).exists():
        return CheckpointError(f"model_name_or_path {name}: not a local directory and the Hub could not be reached ({msg})")
    return CheckpointError(f"model_name_or_path {name}: cannot load ({msg})")


def load_tokenizer(name_or_path: str, chat_template: str | None = "llama3", revision: str = "main",
                   padding_side: str | None = None) -> PreTrainedTokenizerBase:
    """Load the tokenizer, set the chat template per the recipe, and check pad/eos and chat tokens.

    `chat_template=None` keeps whatever the checkpoint has (or lacks), for using a model as it is; then
    a tokenizer without a spare pad token pads with EOS, which is harmless for left-padded generation.
    """
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
    except (OSError, ValueError) as err:
        raise load_error(name_or_path, err) from None
    if padding_side:
        tok.padding_side = padding_side
    if chat_template is None:
        pass
    elif chat_template == "llama3":
        vocab = tok.get_vocab()  # a new 128k-entry dict per call on Llama 3: read it once
        missing = [t for k, t in LLAMA3_SPECIAL_TOKENS.items() if k != "pad" and t not in vocab]
        if missing:
            raise CheckpointError(
                f"{name_or_path}: tokenizer lacks Llama 3 chat tokens {missing}; this is not a Llama 3 tokenizer "
                "(set chat_template: keep, or a .jinja path, for other families)"
            )
        existing = tok.chat_template
        if existing and existing not in (LLAMA3_CHAT_TEMPLATE, LLAMA3_TRAINING_CHAT_TEMPLATE):
            raise CheckpointError(
                f"{name_or_path}: tokenizer has a chat template that is not the official Llama 3 one "
                "(set chat_template: keep to train with it, or remove it from tokenizer_config.json)"
            )
        tok.chat_template = LLAMA3_CHAT_TEMPLATE
    elif chat_template == "llama3.1":
        needed = [t for k, t in LLAMA3_SPECIAL_TOKENS.items() if k != "pad"] + list(LLAMA31_TOOL_TOKENS)
        vocab = tok.get_vocab()
        missing = [t for t in needed if t not in vocab]
        if missing:
            raise CheckpointError(
                f"{name_or_path}: tokenizer lacks Llama 3.1 tokens {missing} (Llama 3.0 holds only reserved tokens at "
                "those ids); use chat_template: llama3 for a Llama 3.0 checkpoint, or a Llama 3.1+ tokenizer")
        if tok.chat_template and tok.chat_template not in (LLAMA31_CHAT_TEMPLATE, LLAMA3_CHAT_TEMPLATE):
            logger.warning("%s: its own chat template is replaced by corral's llama3.1 template (Meta's documented "
                           "format; set chat_template: keep to train with the checkpoint's)", name_or_path)
        tok.chat_template = LLAMA31_CHAT_TEMPLATE
    elif chat_template == "keep":
        if not tok.chat_template:
            raise CheckpointError(f"{name_or_path}: tokenizer has no chat template (use chat_template: llama3 or a .jinja path)")
    else:
        path = Path(chat_template)
        if not path.is_file():
            raise CheckpointError(f"chat_template {chat_template}: no such file (expected llama3, llama3.1, keep, or a .jinja path)")
        tok.chat_template = path.read_text()
    if tok.pad_token is None or tok.pad_token_id in _eos_ids(tok):
        pad = spare_pad_token(tok)
        if pad is not None:
            logger.info("pad token set to %s (id %d; distinct from every end-of-sequence token)", pad,
                        tok.convert_tokens_to_ids(pad))
            tok.pad_token = pad
        elif chat_template is None:
            tok.pad_token = tok.pad_token or tok.eos_token
        else:
            raise CheckpointError(
                f"{name_or_path}: pad token {tok.pad_token!r} is an end-of-sequence token and no spare pad token exists; "
                "padding would be trained as EOS"
            )
    return tok


_RESERVED = re.compile(r"^<\|reserved_special_token_(\d+)\|>$")


def spare_pad_token(tok: PreTrainedTokenizerBase) -> str | None:
    """A pad token that is no end-of-sequence, chat or tool token: Llama 3.1's `<|finetune_right_pad_id|>`,
    else (Meta Llama 3, which lacks it) the highest-numbered `<|reserved_special_token_N|>`. Llama 3.1+
    gave meanings to low reserved ids only (128004 pad, 128008 `<|eom_id|>`, 128010 `<|python_tag|>`),
    so the last one, `<|reserved_special_token_250|>` = 128255 in Llama 3, stays unused by every release."""
    vocab = tok.get_vocab()
    if LLAMA3_SPECIAL_TOKENS["pad"] in vocab:
        return LLAMA3_SPECIAL_TOKENS["pad"]
    reserved = [(vocab[t], t) for t in vocab if _RESERVED.match(t)]
    return max(reserved)[1] if reserved else None


def _eos_ids(tok: PreTrainedTokenizerBase) -> set[int]:
    ids = {tok.eos_token_id}
    vocab = tok.get_vocab()
    for t in ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"):
        if t in vocab:
            ids.add(tok.convert_tokens_to_ids(t))
    return ids


def read_config(name_or_path: str, revision: str = "main"):
    """The checkpoint's config; a missing or unreadable one is a one-line CheckpointError."""
    try:
        return AutoConfig.from_pretrained(name_or_path, revision=revision)
    except (OSError, ValueError) as err:
        raise load_error(name_or_path, err) from None


def recipe_dtype(model_args, training_args) -> torch.dtype:
    """The weights dtype a recipe asks for: `dtype`, or with auto/unset bf16 when training in bf16, else fp32."""
    if model_args.dtype not in ("auto", None):
        return getattr(torch, model_args.dtype)
    return torch.bfloat16 if training_args.bf16 else torch.float32


def check_causal_lm(name_or_path: str, revision: str = "main"):
    """The checkpoint's config, checked to be a causal LM's."""
    cfg = read_config(name_or_path, revision)
    archs = getattr(cfg, "architectures", None) or []
    if archs and not any(a.endswith("ForCausalLM") or a.endswith("ForConditionalGeneration") for a in archs):
        raise CheckpointError(f"{name_or_path}: architecture {archs[0]} is not a causal LM; SFT needs a *ForCausalLM checkpoint")
    return cfg


CONTEXT_KEYS = ("rope_parameters", "rope_scaling", "max_position_embeddings")


def extend_context(config, init_kwargs: dict | None):
    """Apply the recipe's `model_init_kwargs` (RoPE scaling and a longer `max_position_embeddings`) to
    a loaded config and return the new config; `config` itself is left as it was.

    Handed straight to `from_pretrained`, transformers sets these on the config after it is built:
    the RoPE dict then lacks `rope_theta` (a TypeError inside the rotary embedding) and llama3/yarn
    scaling takes the *new* length as the pretraining one. Here the checkpoint's `rope_theta` is
    kept and `original_max_position_embeddings` defaults to the checkpoint's own length.
    """
    init_kwargs = dict(init_kwargs or {})
    unknown = sorted(set(init_kwargs) - set(CONTEXT_KEYS))
    if unknown:
        raise CheckpointError(f"model_init_kwargs: {unknown[0]!r} is not supported; corral reads only "
                              f"{', '.join(CONTEXT_KEYS)} from it (dtype, attention and quantization have their own keys)")
    if "rope_parameters" in init_kwargs and "rope_scaling" in init_kwargs:
        raise CheckpointError("model_init_kwargs: set rope_parameters or its old name rope_scaling, not both")
    rope = init_kwargs.get("rope_parameters") or init_kwargs.get("rope_scaling")
    if not rope and "max_position_embeddings" not in init_kwargs:
        return config
    if config.get_text_config() is not config:
        raise CheckpointError(f"model_init_kwargs: extending the context of a {type(config).__name__} (a multimodal "
                              "config) is not supported; fine-tune its text model")
    values = config.to_dict()
    if rope:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

        old = dict(config.rope_parameters or {})
        rope = {"rope_theta": old.get("rope_theta", getattr(config, "rope_theta", 10000.0)), **rope}
        rope_type = rope.setdefault("rope_type", rope.pop("type", "default"))
        if rope_type != "default" and rope_type not in ROPE_INIT_FUNCTIONS:
            raise CheckpointError(f"model_init_kwargs.rope_parameters: rope_type {rope_type!r} is unknown "
                                  f"(transformers has: default, {', '.join(sorted(ROPE_INIT_FUNCTIONS))})")
        if rope_type in ("llama3", "yarn", "longrope"):
            rope.setdefault("original_max_position_embeddings",
                            old.get("original_max_position_embeddings", config.max_position_embeddings))
        values["rope_parameters"] = rope
    if "max_position_embeddings" in init_kwargs:
        values["max_position_embeddings"] = int(init_kwargs["max_position_embeddings"])
    try:
        new = type(config).from_dict(values)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"model_init_kwargs: {rope or values['max_position_embeddings']} does not fit "
                              f"{type(config).__name__} ({str(err).splitlines()[0]})") from None
    logger.info("context: max_position_embeddings %d -> %d, RoPE %s", config.max_position_embeddings,
                new.max_position_embeddings, new.rope_parameters)
    return new


def quantization_config(load_in_4bit: bool, load_in_8bit: bool, quant_type: str, nested: bool, dtype: torch.dtype):
    if load_in_4bit and load_in_8bit:
        raise CorralError("load_in_4bit and load_in_8bit are both true; pick one")
    if load_in_4bit:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_use_double_quant=nested,
                                  bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_storage=dtype)
    if load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def load_causal_lm(model_args, training_args):
    """Load the model with the recipe's dtype, attention implementation and quantization."""
    name = model_args.model_name_or_path
    config = check_causal_lm(name, model_args.model_revision)
    dtype = recipe_dtype(model_args, training_args)
    quant = quantization_config(model_args.load_in_4bit, model_args.load_in_8bit, model_args.bnb_4bit_quant_type,
                                model_args.use_bnb_nested_quant, dtype)
    init_kwargs = getattr(training_args, "model_init_kwargs", None)
    if init_kwargs:  # applied here, as corral loads the model itself (TRL then logs that it ignores them)
        config = extend_context(config, init_kwargs)
    kwargs = dict(revision=model_args.model_revision, dtype=dtype, attn_implementation=model_args.attn_implementation,
                  config=config)  # config.json read once, by check_causal_lm
    text = config.get_text_config()
    if (getattr(training_args, "router_aux_loss_coef", 0.0) is None and getattr(text, "router_aux_loss_coef", 0.0)
            and not hasattr(text, "num_experts")):
        raise CheckpointError(
            f"{name}: set router_aux_loss_coef: 0.0 in the recipe; TRL would add Mixtral's load-balancing loss with "
            f"coefficient {text.router_aux_loss_coef} from the config and fail reading config.num_experts, which "
            f"{type(text).__name__} lacks (transformers' own model adds no such loss)")
    limit = getattr(text, "max_position_embeddings", None)
    max_length = getattr(training_args, "max_length", None)
    if limit and max_length and max_length > limit:
        logger.warning("max_length %d is beyond the model's max_position_embeddings %d: positions past it were never "
                       "trained; extend the context with model_init_kwargs (see recipes/tiny/long_context/sft.yaml)",
                       max_length, limit)
    if quant is not None:
        kwargs["quantization_config"] = quant
        if torch.cuda.is_available():
            from accelerate import PartialState

            kwargs["device_map"] = {"": PartialState().local_process_index}
    try:
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as err:
        raise load_error(name, err) from None
    # TRL 1.16's fused LM head reaches the decoder through `model.base_model`. Llama4ForCausalLM's
    # base_model_prefix is "language_model" (for loading the multimodal checkpoint) while its decoder is
    # `.model`, so base_model is the whole model and the first training step fails; point it at `.model`.
    if model.base_model is model and isinstance(getattr(model, "model", None), torch.nn.Module):
        model.base_model_prefix = "model"
    return model


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


# --- adapters --------------------------------------------------------------------------------------

def is_adapter(path: str | Path) -> bool:
    """A LoRA adapter directory alone (adapter_config.json and no full model beside it)."""
    return (Path(path) / ADAPTER_CONFIG).is_file() and not (Path(path) / "config.json").is_file()


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


def merge_adapter(adapter_dir: str | Path, base_model: PreTrainedModel) -> PreTrainedModel:
    """`base_model` (loaded unquantized: merging into 4-bit weights would round the delta away) with the
    LoRA/DoRA adapter of `adapter_dir` applied and merged, as a plain causal LM."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
    logger.info("%s: adapter merged into %s", adapter_dir, base_model.config._name_or_path)
    return model


def merge_adapter_for_recipe(adapter_dir: str, model_args, training_args) -> PreTrainedModel:
    """The causal LM of a LoRA adapter directory merged into its base, the base loaded as the recipe asks."""
    base_args = dataclasses.replace(model_args, model_name_or_path=str(resolve_base(adapter_dir)))
    return merge_adapter(adapter_dir, load_causal_lm(base_args, training_args))


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel | None = None) -> list[int]:
    """Every id that ends a response: the generation config's (int or list, when a model is given), the
    tokenizer's EOS, Llama 3's `<|eot_id|>` and `<|end_of_text|>`, and Llama 3.1's `<|eom_id|>`."""
    ids = model.generation_config.eos_token_id if model is not None else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    vocab = tokenizer.get_vocab()
    extra = [tokenizer.eos_token_id] + [vocab.get(t) for t in ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")]
    for i in extra:
        if i is not None and i not in ids:
            ids.append(i)
    return ids


def finalize_for_chat(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Make generation stop at `<|eot_id|>` (as Meta's Instruct generation_config does) and pad with pad.
    A tokenizer carrying a Llama 3 chat template also gets `<|eot_id|>` as its EOS, as Meta's Instruct
    tokenizers have, so runtimes that read only the tokenizer's EOS stop at the end of the turn too."""
    if "<|eot_id|>" in (tokenizer.chat_template or "") and tokenizer.convert_tokens_to_ids("<|eot_id|>") not in (None, tokenizer.unk_token_id):
        tokenizer.eos_token = "<|eot_id|>"
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id


def save_merged(adapter_dir: str, model_args, out: str | Path | None = None) -> str:
    """Reload the base unquantized in the recipe's dtype (fp32 for auto), merge the saved adapter, and
    save the merged model and the adapter's tokenizer to `out` (default `adapter_dir/merged`)."""
    dtype = torch.float32 if model_args.dtype in (None, "auto", "float32") else getattr(torch, model_args.dtype)
    base = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision,
                                                dtype=dtype)
    merged = merge_adapter(adapter_dir, base)
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    finalize_for_chat(merged, tokenizer)
    out = Path(out) if out else Path(adapter_dir) / "merged"
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("merged model saved to %s", out)
    return str(out)


# --- using a model ---------------------------------------------------------------------------------

def load_model(path: str | Path, device: str = "cpu", dtype: str = "auto"):
    """(model, tokenizer) for `path`, a full checkpoint or a LoRA adapter (merged); the model in eval mode
    and the tokenizer left-padded for batched generation."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model directory")
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    if is_adapter(path):
        base = resolve_base(path)
        model = merge_adapter(path, AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype))
        has_tokenizer = any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
        tokenizer = load_tokenizer(str(path if has_tokenizer else base), chat_template=None, padding_side="left")
    elif (path / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        tokenizer = load_tokenizer(str(path), chat_template=None, padding_side="left")
    else:
        raise CheckpointError(f"{path}: neither a checkpoint (config.json) nor a LoRA adapter ({ADAPTER_CONFIG})")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


def eos_token_ids(model, tokenizer) -> list[int]:
    """`stop_token_ids` of a loaded model: its generation config's ids first."""
    return stop_token_ids(tokenizer, model)
