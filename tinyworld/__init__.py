"""The embedded tiny Llama world: its facts, corpus, BPE tokenizer, pretrained base, SFT/safety/preference/RL
data and the evaluation suites drawn from it. Build it with `python -m tinyworld build` (cached)."""
