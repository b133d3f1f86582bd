"""corral's shared core: what every method folder uses and none of them owns.

    corral.errors          CorralError and the data errors: one-line user mistakes, one exit code
    corral.recipe          strict YAML recipes onto config dataclasses, CLI overrides, `run_cli`
    corral.chat_templates  the Llama 3 chat templates and their special tokens
    corral.special_tokens  untrained chat-token rows and how they are initialised
    corral.manifest        run_manifest.json: resolved config, versions, data fingerprints, results
    corral.checkpoints     complete-checkpoint marking, resume, atomic saves
    corral.loading         models, tokenizers and LoRA adapters: load, check, merge

It imports no method folder (finetune, reward, evals, data_prep, tinyworld); tests/test_layout.py checks.
"""

import logging


def _not_kernels_hint(record: logging.LogRecord) -> bool:
    # bitsandbytes (CPU with AVX512-bf16) logs at import that its optional 4-bit CPU kernel from the Hub
    # package `kernels` is missing; it then uses its own kernel, so nothing needs doing. Installed on
    # corral's logger before any bitsandbytes import: every entry point imports corral first.
    return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_not_kernels_hint)
