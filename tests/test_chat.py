"""`corral chat` driven through a pseudo-terminal on a LoRA-SFT'd tiny model: streamed answers equal plain
greedy generation through the chat template, history carries over turns, /reset clears it, /quit ends."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.after_training import REPO, heldout_prompts, lora_run

MAX_NEW = 24
SYSTEM = "Answer briefly."


@pytest.fixture(scope="module")
def run_dir(tiny_small, tmp_path_factory):
    return lora_run(tiny_small, tmp_path_factory.getbasetemp() / "after-training")


def reference_answer(model_dir: Path, messages: list[dict]) -> str:
    """Plain transformers greedy decoding of `messages` through the chat template (no streaming, no corral)."""
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoPeftModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    stop = [tok.convert_tokens_to_ids(t) for t in ("<|eot_id|>", "<|end_of_text|>")]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=MAX_NEW, eos_token_id=stop, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


class Terminal:
    """A child process on a pseudo-terminal; `expect` reads until a text appears, `send` types a line."""

    def __init__(self, argv: list[str]):
        self.master, slave = pty.openpty()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TERM": "dumb"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 300) -> str:
        end = time.time() + timeout
        start = len(self.seen)
        while text not in self.seen[start:]:
            ready, _, _ = select.select([self.master], [], [], max(0.0, end - time.time()))
            if not ready:
                raise AssertionError(f"timed out waiting for {text!r}; terminal so far:\n{self.seen}")
            try:
                chunk = os.read(self.master, 4096).decode("utf-8", "replace")
            except OSError:  # the child closed the terminal
                chunk = ""
            if not chunk:
                raise AssertionError(f"terminal closed before {text!r}; terminal so far:\n{self.seen}")
            self.seen += chunk.replace("\r\n", "\n")
        i = self.seen.index(text, start)
        return self.seen[start:i]

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.master)
        return code


def test_chat_in_a_terminal_streams_multi_turn_answers_and_resets(run_dir, tiny_small, tmp_path):
    q1, q2 = (m[-1]["content"] for m in heldout_prompts(tiny_small, 2))
    a1 = reference_answer(run_dir, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q1}])
    a2 = reference_answer(run_dir, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q1},
                                    {"role": "assistant", "content": a1}, {"role": "user", "content": q2}])
    a2_fresh = reference_answer(run_dir, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q2}])
    assert a1 and a2

    term = Terminal([sys.executable, "-m", "apps.cli", "chat", str(run_dir), "--system", SYSTEM,
                     "--max-new-tokens", str(MAX_NEW)])
    term.expect("you> ")
    term.send(q1)
    assert term.expect("you> ").strip() == f"{q1}\n{a1}"  # the terminal echoes the typed line
    term.send(q2)
    assert term.expect("you> ").strip() == f"{q2}\n{a2}"  # the answer saw the first turn
    term.send("/reset")
    assert "(history cleared)" in term.expect("you> ")
    term.send(q2)
    assert term.expect("you> ").strip() == f"{q2}\n{a2_fresh}"
    term.send("/quit")
    code = term.close()
    (tmp_path / "transcript.txt").write_text(term.seen)
    assert code == 0
    assert term.seen.startswith("chatting with sft-lora; /reset clears the history, /quit ends\nyou> ")
    assert "Traceback" not in term.seen and "warning" not in term.seen.lower()  # nothing but the conversation


def test_chat_with_two_models_answers_in_labelled_blocks(run_dir, tiny_small):
    """The adapter directory and its merged copy answer the same message, one labelled block each, identically."""
    from apps.chat import answer_all, load_chat_models

    models = load_chat_models([str(run_dir), str(run_dir / "merged")])
    assert [m.name for m in models] == ["sft-lora", "merged"]
    written = []
    question = heldout_prompts(tiny_small, 1)[0][-1]["content"]
    answers = answer_all(models, question, None, written.append, max_new_tokens=MAX_NEW)
    text = "".join(written)
    first, second = text.split("[merged]\n")
    assert first.startswith("[sft-lora]\n") and first.strip().endswith(answers[0]) and second.strip() == answers[1]
    assert answers[0] == answers[1] == reference_answer(run_dir, [{"role": "user", "content": question}])
    assert all(len(m.history) == 2 for m in models)


def test_chat_on_a_model_without_chat_template_is_one_line(tiny_small, tmp_path, capsys):
    base = tmp_path / "no-template"
    shutil.copytree(tiny_small / "tiny-base", base)
    for name in ("chat_template.jinja",):
        (base / name).unlink(missing_ok=True)
    import json

    cfg_path = base / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg))
    from apps.chat import main as chat_main

    assert chat_main([str(base)]) == 2
    assert capsys.readouterr().err == (f"error: {base}: tokenizer has no chat template, so it is not a chat model; fine-tune it with an "
                          "SFT recipe (chat_template: llama3), or compare it as plain text with `corral compare --raw`\n")


def test_chat_on_a_missing_directory_is_one_line(tmp_path, capsys):
    from apps.chat import main as chat_main

    assert chat_main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such model directory\n"
