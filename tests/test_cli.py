"""The `corral` command: subcommands, `--help` without heavy imports, one-line errors; trainer `--help`."""

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps import cli

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "trl", "bitsandbytes", "gradio")


def run_py(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_console_script_is_installed_and_lists_every_command():
    corral = Path(sys.executable).parent / "corral"
    assert corral.is_file(), "pip install -e . creates the `corral` console script ([project.scripts])"
    out = subprocess.run([str(corral), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("inspect", "compare", "plan", "train", "chat", "export", "arena"):
        assert f"\n  {name} " in out.stdout
    assert out.stderr == ""


@pytest.mark.parametrize("command", ["inspect", "compare", "plan", "train", "chat", "export", "arena"])
def test_subcommand_help_imports_no_heavy_library(command, tmp_path):
    code = (f"import sys\nfrom apps.cli import main\ntry:\n    main([{command!r}, '--help'])\nexcept SystemExit as e:\n"
            f"    assert e.code in (0, None), e.code\nprint('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = run_py(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
    assert "HEAVY []" in out.stdout, out.stdout[-300:]
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


def test_unknown_command_suggests_the_nearest(capsys):
    assert cli.main(["chta"]) == 2
    assert capsys.readouterr().err == "error: unknown command 'chta'; did you mean 'corral chat'?\n"
    assert cli.main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown command 'frobnicate'; commands: inspect, plan, train")


def test_train_prints_the_exact_launch_line(capsys):
    assert cli.main(["train", "sft", "recipes/tiny/sft/full.yaml", "--accelerate-config",
                     str(ROOT / "accelerate_configs/cpu.yaml"), "--dry-run", "--max_steps", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split(" ")[1:] == ["-m", "corral.launch", "--config_file", str(ROOT / "accelerate_configs/cpu.yaml"),
                                   os.path.relpath(ROOT / "finetune/sft.py"),
                                   "recipes/tiny/sft/full.yaml", "--max_steps", "2"]
    assert line.split(" ")[0] == sys.executable


def test_train_with_a_missing_accelerate_config_is_one_line(capsys):
    assert cli.main(["train", "sft", "r.yaml", "--accelerate-config", "nope.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --accelerate-config nope.yaml: no such file (configs: ") and err.count("\n") == 1


TRAINERS = {
    "finetune/sft.py": ("finetune.sft", "SFTScriptArguments", ["learning_rate", "max_length", "lora_r", "packing"]),
    "finetune/dpo.py": ("finetune.preference", "PreferenceScriptArguments", ["beta", "desirable_weight", "lora_r"]),
    "reward/train.py": ("reward.train", "RewardScriptArguments", ["center_rewards_coefficient", "learning_rate"]),
    "finetune/rl.py": ("finetune.rl", "RLScriptArguments", ["num_generations", "beta", "reward_model_weight"]),
    "finetune/rejection_sampling.py": ("finetune.rejection_sampling", "RSScriptArguments", ["reward_model_weight"]),
}


@pytest.mark.parametrize("script", sorted(TRAINERS))
def test_trainer_help_lists_recipe_keys_before_heavy_imports(script, tmp_path):
    code = (f"import runpy, sys\nsys.argv = [{script!r}, '--help']\ntry:\n"
            f"    runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\nexcept SystemExit as e:\n"
            f"    assert e.code in (0, None), e.code\nprint('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = run_py(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {script} RECIPE.yaml")
    assert "HEAVY []" in out.stdout
    assert list(tmp_path.iterdir()) == []
    _, _, trl_keys = TRAINERS[script]
    for key in trl_keys + ["datasets", "output_dir", "model_name_or_path"]:
        assert f"\n  {key}: " in out.stdout, key


@pytest.mark.parametrize("script", sorted(TRAINERS))
def test_trainer_help_names_every_field_of_the_script_dataclass(script):
    import importlib

    from corral.script_help import render_help

    module, cls, _ = TRAINERS[script]
    text = render_help("", script)
    for f in dataclasses.fields(getattr(importlib.import_module(module), cls)):
        if f.init:
            assert f"\n  {f.name}: " in text, (f"{script} --help lacks {f.name}: docs/recipe-reference.md is stale; "
                                                "run python -m apps.recipe_docs --write")
    key = "temperature" if script == "finetune/rejection_sampling.py" else "learning_rate"
    lines = text.split(f"\n  {key}: ", 1)[1].splitlines()
    assert lines[1].startswith("      ") and len(lines[1].strip()) > 10  # its help text under each key


def test_bitsandbytes_missing_kernels_hint_is_filtered():
    import corral  # noqa: F401  (installs the filter)

    log = logging.getLogger("bitsandbytes.backends.cpu.ops")
    hint = log.makeRecord(log.name, logging.WARNING, "ops.py", 253,
                          "Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please ...", ("x",), None)
    other = log.makeRecord(log.name, logging.WARNING, "ops.py", 1, "something else", (), None)
    assert not log.filter(hint)
    assert log.filter(other)
