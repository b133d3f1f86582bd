"""Meta's real Llama 3 tokenizer (npm, hash-checked): the derived base/instruct/3.1 tokenizers, token ids
against Meta's own tokenizer tests, and pad selection for Meta Llama 3 base (no pad, no spare pad id)."""

from __future__ import annotations

import logging
import shutil

import pytest
from transformers import AutoTokenizer

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE, LLAMA31_CHAT_TEMPLATE
from corral.loading import CheckpointError, load_tokenizer
from realshape.tokenizers import FILE_SHA256, LLAMA31_RENAMED, cached, derive

# github.com/meta-llama/llama-models models/llama3/tests/api/test_tokenizer.py (test_encode, test_encode_dialog).
SENTENCE_IDS = [128000, 2028, 374, 264, 1296, 11914, 13]  # <|begin_of_text|>This is a test sentence.
DIALOG_IDS = [128000, 128006, 9125, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009,
              128006, 882, 128007, 271, 2028, 374, 264, 2077, 13, 128009, 128006, 78191, 128007, 271]


def test_cache_holds_the_hash_checked_files_and_a_changed_byte_is_noticed(real_tokenizer_files, tmp_path):
    assert cached(real_tokenizer_files)
    for name in FILE_SHA256:
        shutil.copy(real_tokenizer_files / name, tmp_path / name)
    assert cached(tmp_path)
    body = (tmp_path / "tokenizer_config.json").read_bytes()
    (tmp_path / "tokenizer_config.json").write_bytes(body.replace(b"<|eot_id|>", b"<|eoT_id|>", 1))
    assert not cached(tmp_path)


def test_base_tokenizer_is_meta_llama3_base(real_tokenizer_files, tmp_path):
    tok = AutoTokenizer.from_pretrained(derive("llama3-base", tmp_path / "base", real_tokenizer_files))
    assert len(tok) == 128256
    assert tok.chat_template is None and tok.pad_token is None
    assert (tok.bos_token, tok.eos_token) == ("<|begin_of_text|>", "<|end_of_text|>")
    assert tok("This is a test sentence.")["input_ids"] == SENTENCE_IDS


def test_instruct_tokenizer_renders_meta_token_ids(real_tokenizer_files, tmp_path):
    tok = AutoTokenizer.from_pretrained(derive("llama3-instruct", tmp_path / "instruct", real_tokenizer_files))
    assert tok.chat_template == LLAMA3_CHAT_TEMPLATE and tok.eos_token == "<|eot_id|>"
    msgs = [{"role": "system", "content": "This is a test sentence."}, {"role": "user", "content": "This is a response."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert list(ids) == DIALOG_IDS


def test_llama31_tokenizer_names_three_reserved_ids(real_tokenizer_files, tmp_path):
    tok = AutoTokenizer.from_pretrained(derive("llama3.1-base", tmp_path / "31", real_tokenizer_files))
    assert {tok.convert_tokens_to_ids(name): name for name in LLAMA31_RENAMED.values()} == LLAMA31_RENAMED
    assert tok("<|python_tag|>x<|eom_id|>", add_special_tokens=False)["input_ids"] == [128010, 87, 128008]
    assert tok.convert_ids_to_tokens(128005) == "<|reserved_special_token_3|>"  # the other reserved ids keep Llama 3's names


def test_meta_llama3_base_pads_with_its_last_reserved_token(real_shaped, caplog):
    with caplog.at_level(logging.INFO, logger="corral.loading"):
        tok = load_tokenizer(str(real_shaped / "llama3-8b-base"), "llama3")
    assert (tok.pad_token, tok.pad_token_id) == ("<|reserved_special_token_250|>", 128255)
    assert "pad token set to <|reserved_special_token_250|> (id 128255" in caplog.text
    assert tok.pad_token_id not in (128001, 128009)
    assert tok.chat_template == LLAMA3_CHAT_TEMPLATE


def test_llama31_pads_with_finetune_right_pad_and_takes_the_tool_template(real_shaped):
    tok = load_tokenizer(str(real_shaped / "llama3.1-8b-base"), "llama3.1")
    assert (tok.pad_token, tok.pad_token_id) == ("<|finetune_right_pad_id|>", 128004)
    assert tok.chat_template == LLAMA31_CHAT_TEMPLATE


def test_llama31_template_on_a_llama3_tokenizer_is_a_one_line_error(real_shaped):
    with pytest.raises(CheckpointError) as e:
        load_tokenizer(str(real_shaped / "llama3-8b-base"), "llama3.1")
    assert str(e.value) == (
        f"{real_shaped / 'llama3-8b-base'}: tokenizer lacks Llama 3.1 tokens ['<|eom_id|>', '<|python_tag|>'] "
        "(Llama 3.0 holds only reserved tokens at those ids); use chat_template: llama3 for a Llama 3.0 checkpoint, "
        "or a Llama 3.1+ tokenizer")
