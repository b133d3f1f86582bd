"""Chat with one or more models in the terminal, answers streamed through each model's chat template.

    corral chat outputs/tiny-sft-full
    corral chat outputs/tiny-sft-full outputs/tiny-sft-lora --system "Answer in one sentence."

A model is a full checkpoint, a merged one or a LoRA adapter directory (merged into its base on
load, `corral.loading.load_model`). Each model keeps its own history of the conversation, so with
several models every one answers the same message after its own earlier answers; answers come in
labelled blocks, one model after the other. `/reset` clears the history, `/quit` (or Ctrl-D) ends.
Decoding is greedy unless `--temperature` is above 0.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from threading import Thread
from typing import Callable, Iterator

from corral.errors import CorralError


@dataclass
class ChatModel:
    name: str
    model: object
    tokenizer: object
    history: list[dict] = field(default_factory=list)


def build_parser(prog: str = "corral chat") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                epilog="In the chat: /reset clears the history, /quit ends (also Ctrl-D).")
    p.add_argument("models", nargs="+", metavar="MODEL", help="a model directory: full, merged or LoRA adapter")
    p.add_argument("--system", help="system prompt, the first turn of every conversation")
    p.add_argument("--max-new-tokens", type=int, default=256, help="longest answer in tokens (default: 256)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy (default)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    return p


def model_names(paths: list[str]) -> list[str]:
    """Short unique labels: the directory name, or parent/name when two share a name."""
    names = [Path(p).resolve().name for p in paths]
    out = []
    for p, name in zip(paths, names):
        label = name if names.count(name) == 1 else "/".join(Path(p).resolve().parts[-2:])
        out.append(label if label not in out else f"{label}#{len(out) + 1}")
    return out


def check_chat_template(path: str) -> None:
    """A model without a chat template is an error before any weights load."""
    from corral.loading import is_adapter, load_tokenizer, resolve_base

    if not Path(path).is_dir():
        raise CorralError(f"{path}: no such model directory")
    tok_dir = Path(path)
    if is_adapter(tok_dir) and not any((tok_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        tok_dir = resolve_base(tok_dir)
    if not load_tokenizer(str(tok_dir), chat_template=None).chat_template:
        raise CorralError(f"{path}: tokenizer has no chat template, so it is not a chat model; fine-tune it with "
                          "an SFT recipe (chat_template: llama3), or compare it as plain text with `corral compare --raw`")


def load_chat_models(paths: list[str], device: str = "cpu") -> list[ChatModel]:
    from transformers.utils import logging as hf_logging

    from corral.loading import load_model

    hf_logging.disable_progress_bar()  # a weights-loading bar per model is noise in a chat window
    for path in paths:
        check_chat_template(path)
    out = []
    for name, path in zip(model_names(paths), paths):
        model, tokenizer = load_model(path, device=device)
        out.append(ChatModel(name, model, tokenizer))
    return out


def prompt_ids(cm: ChatModel, messages: list[dict], max_new_tokens: int):
    """The templated prompt; the oldest turns are dropped when it would not fit the context with the answer."""
    limit = getattr(cm.model.config, "max_position_embeddings", None)
    messages = list(messages)
    while True:
        ids = cm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)["input_ids"]
        first = 1 if messages[0]["role"] == "system" else 0
        if not limit or ids.shape[1] + max_new_tokens <= limit or len(messages) - first <= 1:
            return ids
        del messages[first:first + 2]  # the oldest user turn and its answer


def stream_reply(cm: ChatModel, messages: list[dict], max_new_tokens: int = 256,
                 temperature: float = 0.0) -> Iterator[str]:
    """Yield the answer's text as it is generated (transformers' TextIteratorStreamer in a thread)."""
    import torch
    from transformers import TextIteratorStreamer

    from evals.generation import generation_config

    ids = prompt_ids(cm, messages, max_new_tokens).to(cm.model.device)
    config = generation_config(cm.model, cm.tokenizer, max_new_tokens, temperature > 0, temperature or 1.0)
    streamer = TextIteratorStreamer(cm.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)

    def run():
        with torch.no_grad():
            cm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                              streamer=streamer)

    thread = Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()


def answer_all(models: list[ChatModel], text: str, system: str | None, write: Callable[[str], None],
               max_new_tokens: int = 256, temperature: float = 0.0) -> list[str]:
    """Every model's streamed answer to `text` after its own history, in labelled blocks."""
    answers = []
    for cm in models:
        messages = ([{"role": "system", "content": system}] if system else []) + cm.history
        messages.append({"role": "user", "content": text})
        if len(models) > 1:
            write(f"[{cm.name}]\n")
        parts = []
        for chunk in stream_reply(cm, messages, max_new_tokens, temperature):
            parts.append(chunk)
            write(chunk)
        write("\n")
        answer = "".join(parts).strip()
        cm.history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        answers.append(answer)
    return answers


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from corral.threads import pick_threads

        for path in args.models:
            check_chat_template(path)  # before anything else: a wrong directory costs nothing
        pick_threads("eval", warn_busy=False)  # the terminal shows only the conversation
        models = load_chat_models(args.models, args.device)
    except CorralError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    write(f"chatting with {', '.join(cm.name for cm in models)}; /reset clears the history, /quit ends\n")
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            write("\n")
            return 0
        if text == "/quit":
            return 0
        if text == "/reset":
            for cm in models:
                cm.history.clear()
            write("(history cleared)\n")
            continue
        if text.startswith("/") or not text:
            if text:
                write(f"(unknown command {text}; /reset or /quit)\n")
            continue
        answer_all(models, text, args.system, write, args.max_new_tokens, args.temperature)


if __name__ == "__main__":
    sys.exit(main())
