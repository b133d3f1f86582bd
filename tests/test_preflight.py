"""corral.preflight: recipe settings that cannot work stop with one line before any model loads."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from trl import ModelConfig, SFTConfig, get_peft_config

import finetune.dpo as dpo
import finetune.rl as rl
import finetune.sft as sft
import reward.train as reward_train
from corral.preflight import (
    PreflightError,
    check_disk_space,
    check_lora_targets,
    check_output_dir,
    first_checkpoint_bytes,
    meta_model,
)
from corral.recipe import run_cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_model_load(monkeypatch):
    """Tripwire: every error here must come before a model is loaded."""
    def boom(*a, **k):
        raise AssertionError("model was loaded before the input error was reported")
    for module, name in ((sft, "load_causal_lm"), (dpo, "load_start_model"), (reward_train, "load_reward_backbone")):
        monkeypatch.setattr(module, name, boom)
    monkeypatch.setattr("transformers.PreTrainedModel.from_pretrained", boom)


def error_of(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [str(a) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.removeprefix("error: ").rstrip("\n")


def sft_argv(tiny_small, tmp_path, *extra) -> list:
    return [REPO / "recipes/tiny/sft/lora.yaml", "--model_name_or_path", tiny_small / "tiny-base",
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]",
            "--output_dir", tmp_path / "run", *extra]


@pytest.mark.parametrize("extra, message", [
    (["--lora_r", "-1"], "lora_r: -1; the LoRA rank must be a positive integer (8 to 64 are usual)"),
    (["--lora_alpha", "0"], "lora_alpha: 0; it must be positive (the update is scaled by lora_alpha / lora_r; "
                            "2 * lora_r is usual)"),
    (["--lora_dropout", "1.5"], "lora_dropout: 1.5; it is a probability in [0, 1) (0.0 to 0.1 are usual)"),
    (["--lora_task_type", "CASUAL_LM"], "LoRA settings: Invalid task type: 'CASUAL_LM'. Must be one of the following "
                                        "task types: SEQ_CLS, SEQ_2_SEQ_LM, CAUSAL_LM, TOKEN_CLS, QUESTION_ANS, "
                                        "FEATURE_EXTRACTION."),
    (["--lora_target_modules", "q_proj", "qproj"],
     "lora_target_modules: 'qproj' names no module of LlamaForCausalLM (did you mean 'q_proj'?); its LoRA-able "
     "layers: down_proj, embed_tokens, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj"),
    (["--lora_target_modules", "q_proj"],  # TRL turns a one-item list into a str, which peft reads as a regex
     "lora_target_modules: 'q_proj' matches no module of LlamaForCausalLM; a single name is a regular expression "
     "over full module names such as 'model.layers.0.self_attn.q_proj': write a list, [q_proj]"),
    (["--lora_target_modules", "self_attn", "v_proj"],
     "lora_target_modules: 'self_attn' names LlamaAttention modules of LlamaForCausalLM, which LoRA cannot wrap; "
     "name its Linear or Embedding layers: down_proj, embed_tokens, gate_proj, k_proj, lm_head, o_proj, q_proj, "
     "up_proj, v_proj"),
    (["--lora_modules_to_save", "lm_heads"], "lora_modules_to_save: 'lm_heads' names no module of LlamaForCausalLM "
                                             "(did you mean 'lm_head'?)"),
    (["--trust_remote_code", "true"], "trust_remote_code: true is not supported: corral trains Llama-family "
     "checkpoints, which transformers implements itself, and Python code shipped inside a checkpoint would run "
     "with your rights; remove the key"),
])
def test_sft_lora_mistakes_stop_before_loading(tiny_small, tmp_path, capsys, no_model_load, extra, message):
    assert error_of(sft.main, sft_argv(tiny_small, tmp_path, *extra), capsys) == message


def test_every_trainer_runs_the_checks(tiny_small, tmp_path, capsys, no_model_load):
    world, base = tiny_small / "tiny-world", tiny_small / "tiny-base"
    pref = ["--datasets", f"[{{path: {world / 'pref_train.jsonl'}}}]", "--eval_datasets", "[]"]
    cases = [
        (dpo.main, ["recipes/tiny/dpo/lora.yaml", *pref]),
        (reward_train.main, ["recipes/tiny/reward/lora.yaml", *pref]),
        (rl.main, ["recipes/tiny/rl/grpo.yaml", "--datasets", f"[{{path: {world / 'rl_prompts_train.jsonl'}}}]",
                   "--use_peft", "true"]),
    ]
    for main, argv in cases:
        argv = [REPO / argv[0], *argv[1:], "--model_name_or_path", base, "--output_dir", tmp_path / "x",
                "--lora_r", "0"]
        assert error_of(main, argv, capsys) == "lora_r: 0; the LoRA rank must be a positive integer (8 to 64 are usual)"


def test_reward_head_modules_are_checked_on_the_reward_model(tiny_small, tmp_path, capsys, no_model_load):
    world = tiny_small / "tiny-world"
    argv = [REPO / "recipes/tiny/reward/lora.yaml", "--datasets", f"[{{path: {world / 'pref_train.jsonl'}}}]",
            "--eval_datasets", "[]", "--model_name_or_path", tiny_small / "tiny-base", "--output_dir", tmp_path / "x",
            "--lora_modules_to_save", "lm_head"]
    assert error_of(reward_train.main, argv, capsys) == (
        "lora_modules_to_save: 'lm_head' names no module of LlamaForSequenceClassification")


def test_output_dir_that_is_a_file_or_under_proc_or_below_a_file(tiny_small, tmp_path, capsys, no_model_load):
    f = tmp_path / "a-file"
    f.write_text("x")
    cases = {f: f"output_dir {f}: is an existing file, not a folder; choose another output_dir",
             f / "run": f"output_dir {f / 'run'}: {f} is a file, so no folder can be made under it; choose another "
                        "output_dir",
             "/proc/corral-run": "output_dir /proc/corral-run: is under /proc, a kernel filesystem that holds no "
                                 "files; choose a folder on a disk"}
    for out, message in cases.items():
        argv = sft_argv(tiny_small, tmp_path) + ["--output_dir", out]
        assert error_of(sft.main, argv, capsys) == message


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder where no file can be created: a read-only tmpfs as root, a 0o555 folder otherwise."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("root without permission to mount a read-only tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_output_dir_on_a_read_only_filesystem(read_only_dir):
    with pytest.raises(PreflightError) as err:
        check_output_dir(str(read_only_dir / "run"))
    expected = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert str(err.value) == (f"output_dir {read_only_dir / 'run'}: cannot create files in {read_only_dir} "
                              f"({expected}); choose a writable folder")
    assert list(read_only_dir.iterdir()) == []


def test_output_dir_check_leaves_no_probe_and_creates_nothing(tmp_path):
    assert check_output_dir(str(tmp_path / "a/b/run")) == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_disk_space_for_the_first_checkpoint(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    check_disk_space(tmp_path, (free // 2, 0), "out")
    with pytest.raises(PreflightError, match=r"^output_dir out: the first checkpoint needs about .* GiB \(weights "
                                             r".* GiB \+ optimizer states 0.0 GiB\) but its disk has .* GiB free; "):
        check_disk_space(tmp_path, (free + 2 * 1024 ** 3, 0), "out")


def test_checkpoint_estimate_matches_the_real_model_and_adapter(tiny_small):
    """The meta-device model has the real model's parameters; the LoRA estimate is peft's trainable count."""
    base = str(tiny_small / "tiny-base")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    meta = meta_model(base)
    assert all(p.is_meta for p in meta.parameters())
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in model.parameters())
    args = SFTConfig(output_dir="x", use_cpu=True, report_to="none")
    full = ModelConfig(model_name_or_path=base, dtype="float32")
    n = sum(p.numel() for p in model.parameters())
    assert first_checkpoint_bytes(meta, args, full, None) == (4 * n, 8 * n)

    from peft import get_peft_model
    lora_args = ModelConfig(model_name_or_path=base, use_peft=True, lora_r=4, lora_target_modules=["q_proj", "v_proj"])
    peft_config = get_peft_config(lora_args)
    check_lora_targets(peft_config, meta)
    trainable = sum(p.numel() for p in get_peft_model(model, peft_config).parameters() if p.requires_grad)
    args.save_only_model = True
    assert first_checkpoint_bytes(meta, args, lora_args, peft_config) == (4 * trainable, 0)


def test_run_cli_under_the_launcher_writes_the_line_per_rank(tmp_path, monkeypatch, capsys):
    """Under `python -m corral.launch` each rank's line goes to a file; the launcher prints the first failing rank's."""
    from corral.errors import CorralError
    from corral.launch import user_error_line

    def main(argv):
        raise CorralError("recipe.yaml: unknown key 'x'")

    monkeypatch.setenv("CORRAL_ERROR_DIR", str(tmp_path))
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        with pytest.raises(SystemExit) as exc:
            run_cli(main, [])
        assert exc.value.code == 2
    assert capsys.readouterr().err == ""
    (tmp_path / "rank-0.txt").write_text("error: rank 0's own line\n")
    assert user_error_line(tmp_path, 0) == "error: rank 0's own line"
    assert user_error_line(tmp_path, 1) == "error: recipe.yaml: unknown key 'x'"
    assert user_error_line(tmp_path / "none", 0) is None


def test_processes_stopping_on_the_same_error_do_not_interleave_their_lines():
    """Under a plain `accelerate launch` every rank prints its line to the one stderr pipe; each line
    must arrive whole (print() wrote text and newline separately, which CI once caught mixed)."""
    import sys

    code = ("from corral.errors import CorralError\nfrom corral.recipe import run_cli\n"
            "def main(argv): raise CorralError('recipe.yaml: ' + 'x' * 400)\nrun_cli(main, [])\n")
    read, write = os.pipe()
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=write, env={**os.environ, "RANK": str(i)})
             for i in range(8)]
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as pipe:
        lines = pipe.read().splitlines()
    assert [p.wait() for p in procs] == [2] * 8
    assert lines == ["error: recipe.yaml: " + "x" * 400] * 8


@pytest.mark.slow
def test_bad_inputs_under_one_and_two_processes(tiny_small, tmp_path):
    """benchmarks/bad_inputs.py under python -m corral.launch with accelerate_configs/cpu.yaml and
    cpu_ddp_2proc.yaml: exit code 2, exactly one `error:` line, no traceback, no leaked token."""
    import json
    import sys

    only = ("unknown_key,huge_number,lora_r_negative,lora_target_single_name,output_is_file,output_read_only,"
            "data_not_utf8,dpo_lora_r_zero,reward_target_typo,token_in_failing_run,data_prep_bad_row,inspect_typo")
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks/bad_inputs.py"), "--root", str(tiny_small),
                    "--launchers", "corral-1,corral-2", "--only", only, "--json", str(out)], check=True, cwd=REPO)
    results = json.loads(out.read_text())
    assert sorted(results) == sorted(only.split(","))
    for name, by_launcher in results.items():
        for launcher, r in by_launcher.items():
            assert (r["exit"], r["error_lines"], r["traceback"], r["token_leaked"]) == (2, 1, False, False), \
                (name, launcher, r)
