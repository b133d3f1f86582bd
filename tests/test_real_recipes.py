"""Every Llama 3 / 3.1 recipe runs a few steps on the real-shaped checkpoints (Meta's real tokenizer, the
real vocabulary, RoPE and GQA ratio, tiny width): recipes/llama3-8b/** on the Llama 3 base,
recipes/llama3.1-*/** on the Llama 3.1 base, with real-format data (the tiny world's files; for tool
calling LLaMA-Factory's Glaive demo and an OpenAI row). Only sizes are overridden on the command line
(steps, lengths, batch, CPU dtype).

    .venv/bin/python -m pytest -q -s tests/test_real_recipes.py    # -s prints the recipe x steps x seconds table
    .venv/bin/python -m pytest -q -s -m '' tests/test_real_recipes.py    # also the slow tier (llama3.1-* SFT)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoTokenizer, GenerationConfig

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "data"
RECIPES = sorted([*(REPO / "recipes/llama3-8b").rglob("*.yaml"), *REPO.glob("recipes/llama3.1-*/**/*.yaml")])
CPU = ["--bf16", "false", "--use_cpu", "true", "--dtype", "float32", "--gradient_checkpointing", "false"]
STEPS = ["--max_steps", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
         "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1", "--report_to", "none"]
TIMINGS: dict[str, tuple[str, int, float]] = {}


def data(*paths: Path) -> str:
    return "[" + ", ".join(f"{{path: {p}}}" for p in paths) + "]"


def recipe_argv(recipe: Path, base: Path, world: Path, out: Path) -> tuple[str, list[str]]:
    """(entry script, argv) running `recipe` for two steps on `base`."""
    method, name = recipe.parent.name, recipe.stem
    model = ["--model_name_or_path", str(base), "--output_dir", str(out)]
    # further mixture sources (e.g. safety_datasets) read the same small file as `datasets`
    extra = [k for k in yaml.safe_load(recipe.read_text()) if k.endswith("_datasets")
             and k not in ("eval_datasets", "heldout_datasets")]
    if method == "sft":
        sources = ((REPO / "tests/fixtures/real/llamafactory_glaive_toolcall_en_demo.json", FIXTURES / "messages.jsonl")
                   if name == "tools" else (world / "sft_train.jsonl",))
        length = "256" if name == "tools" else "64"  # tool rows run long; longer ones are truncated (and counted)
        mixed = [a for k in extra for a in (f"--{k}", data(*sources))]
        return "sft", [str(recipe), *model, "--datasets", data(*sources), *mixed, "--test_split_size", "0",
                       "--max_length", length, *CPU, *STEPS]
    if method in ("dpo", "reward"):
        mixed = [a for k in extra for a in (f"--{k}", data(world / "pref_train.jsonl"))]
        return method, [str(recipe), *model, "--datasets", data(world / "pref_train.jsonl"), *mixed,
                        "--eval_datasets", "[]", "--max_length", "64", *CPU, *STEPS]
    rewards = ["--reward_model", "null", "--rewards", "{stop: 0.5, length: 0.2}", "--length_target", "4",
               "--datasets", data(world / "rl_prompts_train.jsonl"), "--heldout_datasets", "[]"]
    if method == "rl":
        # vLLM needs a GPU: a use_vllm recipe runs the same GRPO with transformers' generate here
        no_vllm = ["--use_vllm", "false"] * bool(yaml.safe_load(recipe.read_text()).get("use_vllm"))
        return "rl", [str(recipe), *model, *rewards, "--num_generations", "2", "--max_completion_length", "8",
                      "--log_completions", "false", *no_vllm, *CPU, *STEPS]
    assert method == "rs", recipe
    sft = ("{max_steps: 2, max_length: 64, per_device_train_batch_size: 2, gradient_accumulation_steps: 1, "
           "learning_rate: 1.0e-4, bf16: false, use_cpu: true, dtype: float32, gradient_checkpointing: false, "
           "test_split_size: 0, eval_strategy: 'no', save_strategy: 'no', logging_steps: 1, merge_adapter: true}")
    return "rs", [str(recipe), *model, *rewards, "--rounds", "1", "--num_samples", "2", "--prompts_per_round", "2",
                  "--max_new_tokens", "8", "--generation_batch_size", "4", "--heldout_samples", "0",
                  "--sft_overrides", sft]


def run(script: str, argv: list[str]):
    if script == "sft":
        from finetune.sft import main
    elif script == "dpo":
        from finetune.dpo import main
    elif script == "reward":
        from reward.train import main
    elif script == "rl":
        from finetune.rl import main
    else:
        from finetune.rejection_sampling import main
    return main(argv)


def steps_taken(out: Path, script: str) -> int:
    if script == "rs":
        out = out / "round-1" / "model"
    log = json.loads((out / "run_manifest.json").read_text())["log_history"]
    return max(e.get("step", 0) for e in log)


@pytest.fixture(scope="module")
def world(tiny_small, tmp_path_factory) -> Path:
    """The first 8 rows of the tiny world's SFT, preference and prompt files (DPO scores its whole data set
    with the reference model first, so size matters)."""
    root = tmp_path_factory.mktemp("world")
    for name in ("sft_train.jsonl", "pref_train.jsonl", "rl_prompts_train.jsonl"):
        lines = (tiny_small / "tiny-world" / name).read_text().splitlines(True)[:8]
        (root / name).write_text("".join(lines))
    return root


@pytest.fixture(scope="module", autouse=True)
def print_table():
    yield
    if TIMINGS:
        print("\n| recipe (real-shaped base) | ran | steps | seconds |\n|---|---|---|---|")
        for recipe, (base, steps, seconds) in TIMINGS.items():
            print(f"| {recipe} ({base}) | yes | {steps} | {seconds:.1f} |")


def test_every_llama3_recipe_is_covered():
    assert len(RECIPES) >= 16
    assert {p.parent.name for p in RECIPES} >= {"sft", "dpo", "reward", "rl", "rs"}


def tier(recipe: Path):
    """The llama3.1-* full/LoRA/QLoRA SFT recipes run the same script with the same overrides as the
    llama3-8b ones, on the Llama 3.1 base: slow tier, to keep the default tier short."""
    same_as_llama3 = recipe.parts[-3].startswith("llama3.1-") and recipe.stem in ("full", "lora", "qlora")
    return pytest.param(recipe, marks=[pytest.mark.slow] * same_as_llama3, id=str(recipe.relative_to(REPO / "recipes")))


@pytest.mark.parametrize("recipe", [tier(r) for r in RECIPES])
def test_recipe_runs_two_steps_on_the_real_shaped_base(recipe, real_shaped, world, tmp_path):
    torch.manual_seed(0)
    base_name = "llama3-8b-base" if recipe.parts[-3] == "llama3-8b" else "llama3.1-8b-base"
    out = tmp_path / "out"
    script, argv = recipe_argv(recipe, real_shaped / base_name, world, out)
    start = time.perf_counter()
    run(script, argv)
    seconds = time.perf_counter() - start
    steps = steps_taken(out, script)
    TIMINGS[str(recipe.relative_to(REPO / "recipes"))] = (base_name, steps, seconds)
    assert steps == 2
    if script == "sft":  # a chat model: the saved tokenizer and generation config stop on <|eot_id|>
        tok = AutoTokenizer.from_pretrained(out)
        assert tok.eos_token == "<|eot_id|>" and tok.pad_token_id not in (128001, 128008, 128009)
        saved = out / "merged" if (out / "merged").is_dir() else out
        if (saved / "generation_config.json").is_file():  # a LoRA adapter alone has none
            assert 128009 in GenerationConfig.from_pretrained(saved).eos_token_id


def test_evals_compare_runs_base_against_instruct(real_shaped, tmp_path):
    from evals.compare import main as compare_main

    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join((REPO / "tinyworld/suites/tiny_world.jsonl").read_text().splitlines(True)[::25]))
    argv = ["--suite", str(suite), "--out", str(tmp_path / "out"), "--raw", "base", "--base-format", "both",
            "--model", f"base={real_shaped / 'llama3-8b-base'}", "--model", f"instruct={real_shaped / 'llama3-8b-instruct'}",
            "--max-new-tokens", "4"]
    start = time.perf_counter()
    assert compare_main(argv) == 0
    TIMINGS["evals.compare base vs instruct"] = ("llama3-8b-base, -instruct", 0, time.perf_counter() - start)
    models = json.loads((tmp_path / "out" / "results.json").read_text())["models"]
    assert set(models) == {"base[raw]", "base[chat]", "instruct"}
