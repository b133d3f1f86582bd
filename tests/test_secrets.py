"""Secrets never reach an output file or a log; `trust_remote_code: true` is refused before loading."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import finetune.sft as sft
from corral.recipe import redact_argv, run_cli

REPO = Path(__file__).resolve().parent.parent
TOKEN = "hf_PlantedSecretToken0123456789abcd"


def sft_argv(tiny_small: Path, out: Path, *extra: str) -> list[str]:
    return [str(REPO / "recipes/tiny/sft/lora.yaml"), "--model_name_or_path", str(tiny_small / "tiny-base"),
            "--datasets", f"[{{path: {tiny_small / 'tiny-world/sft_train.jsonl'}}}]", "--output_dir", str(out),
            "--logging_steps", "1", *extra]


def test_redact_argv_hides_token_values_in_every_spelling():
    argv = ["sft.py", "r.yaml", "--hub_token", TOKEN, "--hub-token=abc", "--token", "xyz", "--learning_rate", "1e-3",
            f"--run_name=a{TOKEN}"]
    assert redact_argv(argv) == ["sft.py", "r.yaml", "--hub_token", "<redacted>", "--hub-token=<redacted>", "--token",
                                 "<redacted>", "--learning_rate", "1e-3", "--run_name=a<redacted>"]


def test_planted_hub_token_is_in_no_output_file_and_no_log(tiny_small, tmp_path, monkeypatch, capfd):
    """A tiny LoRA run (2 steps, a checkpoint at each) with `--hub_token`: every file it writes, the
    pickled training_args.bin of each checkpoint included, and everything it logged, is grepped."""
    out = tmp_path / "run"
    argv = sft_argv(tiny_small, out, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1",
                    "--hub_token", TOKEN)
    monkeypatch.setattr(sys, "argv", ["finetune/sft.py", *argv])  # what the manifest records
    monkeypatch.delenv("HF_TOKEN", raising=False)
    run_cli(sft.main, argv)
    assert os.environ.pop("HF_TOKEN") == TOKEN  # where the Hub client finds it for push_to_hub
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in files) and len(files) > 10
    leaks = [str(p.relative_to(out)) for p in files if TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    logged = capfd.readouterr()
    assert TOKEN not in logged.out + logged.err
    assert "<redacted>" in (out / "run_manifest.json").read_text()  # argv kept, with the value hidden


def test_trust_remote_code_is_refused_before_loading(tiny_small, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sft, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded before the error"))
    with pytest.raises(SystemExit) as exc:
        run_cli(sft.main, sft_argv(tiny_small, tmp_path / "run", "--trust_remote_code", "true"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: trust_remote_code: true is not supported") and err.count("\n") == 1


def test_a_token_in_an_error_message_is_redacted(capsys):
    def main(argv):
        from corral.errors import CorralError
        raise CorralError(f"cannot log in with {TOKEN}")

    with pytest.raises(SystemExit):
        run_cli(main, [])
    assert capsys.readouterr().err == "error: cannot log in with <redacted>\n"
