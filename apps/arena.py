"""A local web page: one prompt, each model's answer streamed side by side, votes saved as DPO data.

    corral arena outputs/tiny-sft-full outputs/tiny-sft-lora                 # http://127.0.0.1:7860
    corral arena A B --votes votes.jsonl --port 7861
    corral arena A B --host 0.0.0.0    # reachable from other machines: anyone who reaches the port uses the models

"▲ better" (thumbs up) under an answer makes it `chosen` against every other answer; "▼ worse" makes it
`rejected` against each of them. Each pair is one JSONL line in the standard preference schema
(`prompt` messages, `chosen`/`rejected` assistant turns, plus `chosen_model`/`rejected_model`), so
`datasets: [{path: votes.jsonl}]` in a DPO or reward recipe trains on it. Identical answers make no
pair. Needs gradio (`pip install -e .[arena]`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from functools import partial
from pathlib import Path

from corral.errors import CorralError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corral arena", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("models", nargs="+", metavar="MODEL", help="model directories: full, merged or LoRA adapter")
    p.add_argument("--votes", default="arena_votes.jsonl", help="JSONL the votes are appended to "
                   "(default: arena_votes.jsonl)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--system", help="system prompt for every conversation")
    p.add_argument("--max-new-tokens", type=int, default=256, help="longest answer in tokens (default: 256)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy (default)")
    p.add_argument("--prompt", help="answer this prompt as soon as the page opens (demos, screenshots)")
    return p


def check_port(host: str, port: int) -> None:
    """A port in use is a one-line error before any model loads."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise CorralError(f"port {port} on {host} is not free ({err.strerror}); pick another with --port") from None


def preference_rows(prompt: list[dict], answers: dict[str, str], model: str, up: bool) -> list[dict]:
    """The pairs one vote makes: `model`'s answer against each other model's (identical answers: none)."""
    mine = answers[model]
    rows = []
    for other, theirs in answers.items():
        if other == model or theirs.strip() == mine.strip():
            continue
        (chosen, c_model), (rejected, r_model) = ((mine, model), (theirs, other)) if up else ((theirs, other), (mine, model))
        rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}],
                     "chosen_model": c_model, "rejected_model": r_model,
                     "voted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return rows


def append_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_app(models, votes: Path, system: str | None, max_new_tokens: int, temperature: float,
              first_prompt: str | None = None):
    import gradio as gr

    from apps.chat import stream_reply

    def messages(prompt: str) -> list[dict]:
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]

    greedy_answers: dict[str, list[str]] = {}  # greedy decoding answers a prompt the same way every time

    def answer(prompt: str):
        texts = [""] * len(models)
        if not prompt.strip():
            yield texts
            return
        if prompt in greedy_answers:
            yield list(greedy_answers[prompt])
            return
        for i, cm in enumerate(models):  # one model after the other: on a CPU they would only share the cores
            for chunk in stream_reply(cm, messages(prompt), max_new_tokens, temperature):
                texts[i] += chunk
                yield list(texts)
            texts[i] = texts[i].strip()
            yield list(texts)
        if temperature == 0 and len(greedy_answers) < 1000:
            greedy_answers[prompt] = list(texts)

    def vote(i: int, up: bool, prompt: str, *texts: str) -> str:
        if not prompt.strip() or not all(t.strip() for t in texts):
            return "Ask something first: votes compare finished answers."
        rows = preference_rows(messages(prompt), {cm.name: t for cm, t in zip(models, texts)}, models[i].name, up)
        if not rows:
            return "The answers are identical: no preference recorded."
        append_jsonl(votes, rows)
        return f"Recorded {len(rows)} preference pair{'s' * (len(rows) > 1)} in {votes}."

    with gr.Blocks(title="corral arena") as app:
        gr.Markdown(f"## corral arena\n{len(models)} models answer each prompt; ▲ better / ▼ worse append preference pairs to "
                    f"`{votes}`.")
        prompt = gr.Textbox(label="Prompt", placeholder="Ask all models the same thing", value=first_prompt or "")
        send = gr.Button("Send", variant="primary")
        boxes = []
        with gr.Row(equal_height=True):
            for i, cm in enumerate(models):
                with gr.Column(variant="panel"):
                    gr.Markdown(f"**{cm.name}**")
                    # Markdown, not a Textbox: the answer is then text in the page (a textarea's value is not)
                    boxes.append(gr.Markdown(elem_id=f"answer-{i}", min_height=120))
        if len(models) > 1:
            with gr.Row():
                for i, cm in enumerate(models):
                    with gr.Column():
                        with gr.Row():
                            up, down = gr.Button("▲ better", size="sm"), gr.Button("▼ worse", size="sm")
                        status = gr.Markdown(elem_id=f"status-{i}")
                    up.click(partial(vote, i, True), [prompt, *boxes], status, api_name=f"vote_up_{i}")
                    down.click(partial(vote, i, False), [prompt, *boxes], status, api_name=f"vote_down_{i}")
        send.click(answer, prompt, boxes, api_name="answer")
        prompt.submit(answer, prompt, boxes, api_visibility="private")
        if first_prompt:
            app.load(answer, prompt, boxes, api_visibility="private")
    return app


def exposure_warning(host: str, port: int, votes: str) -> str | None:
    if host in LOCAL_HOSTS:
        return None
    return (f"warning: listening on {host}:{port}: anyone who can reach this port can use these models and append "
            f"to {votes}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no usage pings
    try:
        import gradio  # noqa: F401  (the optional extra; checked before any model loads)
    except ImportError:
        print("error: corral arena needs gradio: pip install -e .[arena]", file=sys.stderr)
        return 2
    try:
        check_port(args.host, args.port)
        from apps.chat import load_chat_models
        from corral.threads import pick_threads

        pick_threads("eval", warn_busy=False)  # the terminal shows only the conversation
        models = load_chat_models(args.models)
    except CorralError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    warning = exposure_warning(args.host, args.port, args.votes)
    if warning:
        print(warning, file=sys.stderr)
    app = build_app(models, Path(args.votes), args.system, args.max_new_tokens, args.temperature, args.prompt)
    print(f"corral arena on http://{args.host}:{args.port} ({', '.join(m.name for m in models)}); Ctrl-C stops",
          flush=True)
    app.queue().launch(server_name=args.host, server_port=args.port, show_error=True, quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
