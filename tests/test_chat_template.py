"""The Llama 3 chat template renders byte for byte like Meta's, and masks exactly the answer + <|eot_id|>."""

import pytest
import torch

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE, LLAMA3_TRAINING_CHAT_TEMPLATE, render_llama3

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of Tesland? "},
    {"role": "assistant", "content": "The capital of Tesland is Venri."},
    {"role": "user", "content": "And 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5."},
]
# Written out by hand from Meta's model card format (content is stripped, no newline after <|eot_id|>).
GOLDEN = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of Tesland?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nThe capital of Tesland is Venri.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nAnd 2 + 3?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n2 + 3 = 5.<|eot_id|>"
)


def test_reference_renderer_matches_golden():
    assert render_llama3(CONVERSATION) == GOLDEN
    assert render_llama3(CONVERSATION[:2], add_generation_prompt=True).endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


@pytest.mark.parametrize("template", [LLAMA3_CHAT_TEMPLATE, LLAMA3_TRAINING_CHAT_TEMPLATE])
def test_templates_render_golden_bytes(tiny_tokenizer, template):
    got = tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False, chat_template=template)
    assert got == GOLDEN
    gen = tiny_tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, chat_template=template,
                                             add_generation_prompt=True)
    assert gen == render_llama3(CONVERSATION[:2], add_generation_prompt=True)


def test_trl_ships_the_same_official_template():
    from trl.chat_template_utils import llama3_chat_template

    assert llama3_chat_template == LLAMA3_CHAT_TEMPLATE


def test_assistant_mask_is_exactly_answers_and_their_eot(tiny_tokenizer):
    tok = tiny_tokenizer
    enc = tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                  chat_template=LLAMA3_TRAINING_CHAT_TEMPLATE)
    ids, mask = torch.tensor(enc["input_ids"]), torch.tensor(enc["assistant_masks"])
    expected = []
    for m in CONVERSATION:
        header = tok.encode(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n", add_special_tokens=False)
        body = tok.encode(m["content"].strip() + "<|eot_id|>", add_special_tokens=False)
        expected += [0] * len(header) + [int(m["role"] == "assistant")] * len(body)
    torch.testing.assert_close(mask, torch.tensor([0] + expected))  # leading 0 for <|begin_of_text|>
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert int(((ids == eot) & (mask == 1)).sum()) == 2  # both assistant turns end with a trained <|eot_id|>
    assert tok.decode(ids[mask == 1]) == "The capital of Tesland is Venri.<|eot_id|>2 + 3 = 5.<|eot_id|>"
