"""The tiny tokenizer looks like Llama 3's to every piece of code that loads it."""

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE


def test_special_tokens_and_pad(tiny_tokenizer):
    tok = tiny_tokenizer
    for t in ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
        assert t in tok.get_vocab()
        assert tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(t)) == t
    assert tok.bos_token == "<|begin_of_text|>" and tok.eos_token == "<|end_of_text|>"
    assert tok.pad_token == "<|finetune_right_pad_id|>"
    assert tok.pad_token_id not in (tok.eos_token_id, tok.convert_tokens_to_ids("<|eot_id|>"))
    # special tokens come after the learned vocabulary, as in Llama 3
    assert min(tok.convert_tokens_to_ids(t) for t in tok.all_special_tokens) >= len(tok) - 11


def test_bos_is_prepended_once_and_chat_template_is_official(tiny_tokenizer):
    tok = tiny_tokenizer
    ids = tok("The capital of Tesland is Venri.")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids, skip_special_tokens=True) == "The capital of Tesland is Venri."
    assert tok.chat_template == LLAMA3_CHAT_TEMPLATE
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)["input_ids"]
    assert chat.count(tok.bos_token_id) == 1
