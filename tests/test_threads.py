"""corral.threads: which torch CPU thread count a run gets, and who may override corral's pick.

The accelerate cases launch a real `accelerate launch` (a few seconds each): accelerate always exports
OMP_NUM_THREADS to its workers, so only the launcher's own command line, config file and environment
tell a user's choice from accelerate's default.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from corral.errors import CorralError
from corral.threads import FASTEST, available_cores, explicit_threads, pick_threads, workload

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("args, expected", [
    (SimpleNamespace(use_peft=False, load_in_4bit=False), "sft/full"),
    (SimpleNamespace(use_peft=True, load_in_4bit=False), "sft/lora"),
    (SimpleNamespace(use_peft=True, load_in_4bit=True), "sft/qlora"),
])
def test_workload_names_the_adapter_kind(args, expected):
    assert workload("sft", args) == expected
    assert workload("eval") == "eval"
    assert workload("dpo", SimpleNamespace(use_peft=True, load_in_4bit=True)) == "dpo/lora"  # no dpo/qlora entry


def test_every_entry_scripts_workload_has_a_measured_setting():
    for kind in ("sft", "dpo", "reward", "rl"):
        for adapter in ("full", "lora"):
            assert f"{kind}/{adapter}" in FASTEST
    assert "eval" in FASTEST


def test_default_pick_is_the_table_and_is_logged(monkeypatch, restore_threads, caplog):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ACCELERATE_DYNAMO_BACKEND", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # a quiet machine
    with caplog.at_level(logging.INFO, logger="corral.threads"):
        n = pick_threads("sft", SimpleNamespace(use_peft=False), None, use_cpu=True)
    assert n == (FASTEST["sft/full"] or available_cores()) == torch.get_num_threads()
    assert "measured fastest for sft/full" in caplog.text
    lora = pick_threads("sft", SimpleNamespace(use_peft=True), None, use_cpu=True)
    assert lora == (FASTEST["sft/lora"] or available_cores()) == torch.get_num_threads()


def test_a_busy_machine_keeps_the_pick_and_is_warned(monkeypatch, restore_threads, caplog):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ACCELERATE_DYNAMO_BACKEND", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (float(available_cores()), 0.0, 0.0))
    with caplog.at_level(logging.INFO, logger="corral.threads"):
        n = pick_threads("sft", SimpleNamespace(use_peft=True), None, use_cpu=True)
    assert n == available_cores() == torch.get_num_threads()  # the same count as on a quiet machine
    assert ("the machine is busy" in caplog.text and "num_threads: 1" in caplog.text) or available_cores() == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="corral.threads"):
        assert pick_threads("eval", warn_busy=False) == available_cores()  # the chat: the same pick, no warning
    assert "busy" not in caplog.text


def test_recipe_value_beats_the_environment(monkeypatch, restore_threads, caplog):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with caplog.at_level(logging.INFO, logger="corral.threads"):
        assert pick_threads("sft", SimpleNamespace(use_peft=True), 1, use_cpu=True) == 1
    assert torch.get_num_threads() == 1
    assert "the recipe's num_threads" in caplog.text


def test_exported_omp_num_threads_counts_without_accelerate(monkeypatch):
    monkeypatch.delenv("ACCELERATE_DYNAMO_BACKEND", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert explicit_threads(None) == (3, "OMP_NUM_THREADS=3")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert explicit_threads(None) is None


def test_bad_recipe_value_is_a_one_line_error():
    with pytest.raises(CorralError, match="num_threads must be >= 1"):
        pick_threads("sft", None, 0, use_cpu=True)


def test_recipe_key_parses_onto_every_entry_scripts_arguments(tmp_path):
    from corral.recipe import parse_recipe
    from finetune.sft import SFTScriptArguments
    from trl import ModelConfig, SFTConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\noutput_dir: o\ndatasets: [{path: d.jsonl}]\nuse_cpu: true\nnum_threads: 1\n")
    script, _, _ = parse_recipe((SFTScriptArguments, SFTConfig, ModelConfig), [str(recipe)])
    assert script.num_threads == 1
    from finetune.preference import PreferenceScriptArguments
    from finetune.rl import RLScriptArguments
    from reward.train import RewardScriptArguments

    for cls in (PreferenceScriptArguments, RLScriptArguments, RewardScriptArguments):
        assert "num_threads" in cls.__dataclass_fields__


PROBE = "import json, os; from corral.threads import explicit_threads; print(json.dumps(explicit_threads(None)))"


def _launch(tmp_path, config: str, *launch_flags, env_omp: str | None = None):
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "acc.yaml").write_text(config)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT)
    if env_omp is not None:
        env["OMP_NUM_THREADS"] = env_omp
    out = subprocess.run([str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
                          str(tmp_path / "acc.yaml"), *launch_flags, str(tmp_path / "probe.py")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


CPU_CONFIG = (ROOT / "accelerate_configs/cpu.yaml").read_text()


def test_under_accelerate_its_default_omp_num_threads_is_not_a_user_choice(tmp_path):
    # accelerate exports OMP_NUM_THREADS=<cores> to its workers by default: corral still picks.
    assert _launch(tmp_path, CPU_CONFIG) is None


@pytest.mark.slow
def test_under_accelerate_its_flag_and_an_exported_omp_num_threads_are_user_choices(tmp_path):
    assert _launch(tmp_path, CPU_CONFIG, "--num_cpu_threads_per_process", "1") == \
        [1, "accelerate's num_cpu_threads_per_process"]
    assert _launch(tmp_path, CPU_CONFIG, env_omp="1")[0] == 1  # exported before `accelerate launch`
