"""Pretrain (or continue pretraining) a LlamaForCausalLM on plain text, packed into fixed blocks.

Used by `python -m tinyworld build` to make the embedded tiny base. Documents are wrapped as
`<|begin_of_text|> doc <|end_of_text|>`, concatenated and cut into `block_size` blocks, the classic
GPT recipe: every token is trained on, no padding, and the plain causal mask (documents may attend
to the previous ones in the block, which also teaches robustness to unrelated preceding text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase, Trainer, TrainingArguments


@dataclass
class TinyLlamaShape:
    """Architecture of the embedded tiny Llama (Llama 3 layout: RMSNorm, SwiGLU, RoPE, GQA)."""

    hidden_size: int = field(default=192, metadata={"help": "Model width."})
    num_hidden_layers: int = field(default=6, metadata={"help": "Decoder layers."})
    num_attention_heads: int = field(default=6, metadata={"help": "Query heads."})
    num_key_value_heads: int = field(default=2, metadata={"help": "KV heads (GQA, as Llama 3)."})
    intermediate_size: int = field(default=512, metadata={"help": "SwiGLU width."})
    max_position_embeddings: int = field(default=512, metadata={"help": "Pretraining context length."})
    tie_word_embeddings: bool = field(default=True, metadata={"help": "Tied, as Llama 3.2 1B/3B."})
    rope_theta: float = field(default=500000.0, metadata={"help": "RoPE base, as Llama 3."})

    def llama_config(self, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            tie_word_embeddings=self.tie_word_embeddings,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            rms_norm_eps=1e-5,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )


@dataclass
class PretrainSettings:
    block_size: int = field(default=256, metadata={"help": "Tokens per packed training block."})
    batch_size: int = field(default=16, metadata={"help": "Blocks per optimizer step."})
    epochs: float = field(default=10.0, metadata={"help": "Passes over the corpus."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak AdamW learning rate (cosine decay)."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps spent warming up."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    seed: int = field(default=0, metadata={"help": "Seed for init and data order."})


def pack_documents(tokenizer: PreTrainedTokenizerBase, docs: list[str], block_size: int) -> torch.Tensor:
    """Tokenize `docs` (BOS added by the tokenizer), append EOS to each, and cut into full blocks."""
    eos = tokenizer.eos_token_id
    flat: list[int] = []
    for ids in tokenizer(docs)["input_ids"]:
        flat.extend(ids)
        flat.append(eos)
    n_blocks = len(flat) // block_size
    return torch.tensor(flat[: n_blocks * block_size]).view(n_blocks, block_size)


class _Blocks(torch.utils.data.Dataset):
    def __init__(self, blocks: torch.Tensor):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.blocks[i], "labels": self.blocks[i]}


def pretrain(
    docs: list[str],
    tokenizer: PreTrainedTokenizerBase,
    shape: TinyLlamaShape,
    settings: PretrainSettings,
    output_dir: str,
    model: LlamaForCausalLM | None = None,
) -> LlamaForCausalLM:
    """Train a fresh (or the given) Llama on `docs` and save it with the tokenizer to `output_dir`."""
    torch.manual_seed(settings.seed)
    if model is None:
        model = LlamaForCausalLM(shape.llama_config(tokenizer))
    blocks = pack_documents(tokenizer, docs, settings.block_size)
    # Several shuffled epochs over a small corpus; different block boundaries per epoch would be
    # nicer, but a fixed packing keeps the build deterministic and simple.
    steps = math.ceil(len(blocks) * settings.epochs / settings.batch_size)
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(settings.warmup_ratio * steps)),
        weight_decay=settings.weight_decay,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        logging_steps=max(1, steps // 20),
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        seed=settings.seed,
        data_seed=settings.seed,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=_Blocks(blocks))
    trainer.train()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return model
