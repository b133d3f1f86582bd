"""Shared fixtures: the seconds-sized tiny world and base model, built once per test session.

Tests never touch `outputs/` (the quickstart's build); they build `TinyBuild.small()` into a temp
dir: a 0.1M-parameter Llama pretrained for a few seconds, with the same tokenizer layout, chat
tokens and files as the real one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_small(tmp_path_factory) -> Path:
    """Root dir holding `tiny-world/` and `tiny-base/` of the small world."""
    from tinyworld.build import TinyBuild, build_tiny

    root = tmp_path_factory.mktemp("tiny-small")
    build_tiny(root, TinyBuild.small())
    return root


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_small):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_small / "tiny-base")


# Meta's Llama 3 tokenizer (npm, cached) and the real-shaped checkpoints: tests/real_fixtures.py.
from real_fixtures import real_shaped, real_tokenizer_files  # noqa: E402,F401
