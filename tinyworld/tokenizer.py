"""A byte-level BPE tokenizer for the tiny world that behaves like Llama 3's.

Llama 3 uses a byte-level BPE (tiktoken) with 256 reserved special tokens at the end of the vocab;
`<|begin_of_text|>` is prepended to every encoded text, the base model's EOS is `<|end_of_text|>`,
and the Instruct chat template uses `<|start_header_id|>`, `<|end_header_id|>` and `<|eot_id|>`.
A base model never trains those three chat tokens - that is the failure the foundation issue
reproduces - so they sit after the learned merges, just as in the real vocabulary.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE, LLAMA3_SPECIAL_TOKENS

# Order mirrors Llama 3.1's reserved block (begin, end, reserved..., finetune_right_pad, header, eot).
SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]


def train_tokenizer(texts: list[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `texts`; special tokens get the ids after the learned vocabulary."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    bos = LLAMA3_SPECIAL_TOKENS["bos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=LLAMA3_SPECIAL_TOKENS["eos"],
        pad_token=LLAMA3_SPECIAL_TOKENS["pad"],
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
    fast.chat_template = LLAMA3_CHAT_TEMPLATE
    return fast
