# corral: two commands set up a fresh machine.
#   make quickstart   venv + install + build the embedded tiny Llama + SFT it + before/after table
#   make test         venv (if missing) + default test tier (offline, < 15 min on 2 cores)
#   make test-all     every tier, including slow end-to-end tests

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned and installed FIRST: an unpinned torch (asked for by transformers, trl, ...)
# pulls a multi-GB CUDA build on a CPU machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.corral-installed

.PHONY: venv quickstart test test-all tiny-base bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

tiny-base: venv
	$(PY) -m data_prep.tiny build

# The main job on the embedded default: build the tiny Llama base (cached), SFT it with the official
# Llama 3 chat template, then compare base (as plain completion and in chat format) with the SFT
# model on the 60 capitals SFT never saw.
quickstart: tiny-base
	$(VENV)/bin/accelerate launch --config_file accelerate_configs/cpu.yaml finetune/sft.py recipes/tiny/sft/full.yaml
	$(PY) -m evals.compare --suite outputs/tiny-world/heldout_capitals.jsonl --raw base --base-format both \
		--model base=outputs/tiny-base --model sft=outputs/tiny-sft-full --out reports/quickstart

test: venv
	$(PY) -m pytest -q

test-all: venv
	$(PY) -m pytest -q -m ''

clean:
	rm -rf outputs reports
