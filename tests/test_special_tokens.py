"""Untrained chat tokens are detected in a base checkpoint and initialised from related text."""

import copy

import torch
from transformers import AutoModelForCausalLM

from corral.chat_templates import LLAMA31_CHAT_TEMPLATE
from corral.special_tokens import (
    LLAMA3_CHAT_TOKENS,
    LLAMA31_TOOL_TOKENS,
    RELATED_TEXT,
    initialize_untrained_tokens,
    inspect_chat_tokens,
)


def test_base_chat_tokens_detected_as_untrained_and_ordinary_tokens_not(tiny_small, tiny_tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base")
    reports = {r.token: r for r in inspect_chat_tokens(model, tiny_tokenizer)}
    assert set(reports) == {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
    assert all(r.untrained for r in reports.values())
    # A token the corpus uses a lot is not flagged when asked about.
    the = inspect_chat_tokens(model, tiny_tokenizer, tokens=("Ġthe", "<|end_of_text|>"))
    assert [r.untrained for r in the] == [False, False]


def test_related_init_copies_text_embeddings_and_reports_the_tokens(tiny_small, tiny_tokenizer):
    tok = tiny_tokenizer
    model = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base")
    changed = initialize_untrained_tokens(model, tok, "related")
    assert changed == ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    emb = model.get_input_embeddings().weight
    for t in LLAMA3_CHAT_TOKENS:
        src = tok.encode(RELATED_TEXT[t], add_special_tokens=False)
        torch.testing.assert_close(emb[tok.convert_tokens_to_ids(t)], emb[src].mean(0))
    # after init they look trained, so a second call changes nothing (idempotent on tuned checkpoints)
    assert initialize_untrained_tokens(model, tok, "related") == []


def test_none_leaves_rows_untouched(tiny_small, tiny_tokenizer):
    model = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base")
    before = model.get_input_embeddings().weight.detach().clone()
    assert initialize_untrained_tokens(model, tiny_tokenizer, "none") == []
    torch.testing.assert_close(model.get_input_embeddings().weight, before)


def test_tool_markers_are_initialised_only_when_the_template_writes_them(tiny_small, tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_small / "tiny-base")
    before = model.get_input_embeddings().weight.detach().clone()
    markers = [tok.convert_tokens_to_ids(t) for t in LLAMA31_TOOL_TOKENS]
    assert initialize_untrained_tokens(model, tok, "related") == list(LLAMA3_CHAT_TOKENS)  # llama3: no tool calls
    torch.testing.assert_close(model.get_input_embeddings().weight[markers], before[markers])

    tok.chat_template = LLAMA31_CHAT_TEMPLATE
    assert initialize_untrained_tokens(model, tok, "related") == list(LLAMA31_TOOL_TOKENS)
    emb = model.get_input_embeddings().weight
    for t in LLAMA31_TOOL_TOKENS:
        src = tok.encode(RELATED_TEXT[t], add_special_tokens=False)
        torch.testing.assert_close(emb[tok.convert_tokens_to_ids(t)], emb[src].mean(0))
