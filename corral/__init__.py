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
