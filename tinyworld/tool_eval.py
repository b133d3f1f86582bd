"""Measure the tiny world's tool-use skill: does a model emit a well-formed Llama 3.1 call on held-out prompts?

    python -m tinyworld.tool_eval --model base=outputs/tiny-base --model tools=outputs/tiny-sft-tools

Every prompt of `outputs/tiny-world/tools_heldout.jsonl` (tinyworld/tools.py: countries and sums the
tool data never holds, and greetings/how-to questions that need no tool) is rendered with
`chat_template: llama3.1` and both tool definitions, for every model alike, and answered greedily. The
prompts come in two splits, scored apart: "phrasing" (the question alone, in wordings no training row
uses) and "context" (other unseen wordings, under unseen system prompts or as the second user turn after
an exchange no training row has). The reply is read as the template renders a custom-tool call,
`<|python_tag|>{"type": "function", "name": ..., "parameters": {...}}<|eom_id|>`, and scored:

  well_formed  on tool prompts: <|python_tag|>, one JSON object with a declared tool `name` and a
               `parameters` object, closed by <|eom_id|>
  right_tool   on tool prompts: well formed, naming the expected tool (whatever the arguments)
  right_call   on tool prompts: well formed, with the expected tool and exactly the expected arguments
  answered     on tool prompts: right call, and after the true tool result (an ipython turn) the next
               reply contains it (the capital, the sum)
  false_call   on no-tool prompts: the reply starts a call (<|python_tag|>) instead of answering

Prints one table (counts and rates per model and split) and writes it as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from corral.chat_templates import LLAMA31_CHAT_TEMPLATE
from corral.errors import CorralError
from corral.loading import load_model
from data_prep.io import read_rows
from evals.generation import generate
from tinyworld.tools import TOOL_NAMES, TOOLS

PROMPTS = "outputs/tiny-world/tools_heldout.jsonl"
CALL_START, CALL_END = "<|python_tag|>", "<|eom_id|>"
TOOL_COLUMNS = ("well_formed", "right_tool", "right_call", "answered")  # rates over the tool prompts


@dataclass(frozen=True)
class Call:
    name: str
    parameters: dict


def parse_call(reply: str) -> Call | None:
    """The call in `reply` (decoded with its special tokens), or None when it is not a well-formed call."""
    if not reply.startswith(CALL_START) or not reply.endswith(CALL_END):
        return None
    try:
        body = json.loads(reply[len(CALL_START):-len(CALL_END)])
    except json.JSONDecodeError:
        return None
    if not isinstance(body, dict) or body.get("type", "function") != "function":
        return None
    name, parameters = body.get("name"), body.get("parameters")
    if name not in TOOL_NAMES or not isinstance(parameters, dict):
        return None
    return Call(name, parameters)


def tool_result(row: dict) -> dict:
    """The true result of the row's expected call (the held-out rows carry it as `reference`)."""
    if row["tool"] == "lookup_capital":
        return {"capital": row["reference"]}
    return {"sum": int(row["reference"])}


def render(tokenizer, messages: list[dict], generation_prompt: bool = True) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, chat_template=LLAMA31_CHAT_TEMPLATE,
                                         tools=list(TOOLS), add_generation_prompt=generation_prompt)


def replies(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy replies, decoded with special tokens (the call markers are the point)."""
    prompts = [render(tokenizer, msgs) for msgs in conversations]
    out = generate(model, tokenizer, prompts, add_special_tokens=False, max_new_tokens=max_new_tokens)
    return [tokenizer.decode(g.token_ids, skip_special_tokens=False) for g in out]


@dataclass
class ToolScores:
    tool_prompts: int = 0
    well_formed: int = 0
    right_tool: int = 0
    right_call: int = 0
    answered: int = 0
    direct_prompts: int = 0
    false_call: int = 0

    def rates(self) -> dict[str, float]:
        per_tool = max(self.tool_prompts, 1)
        return {"well_formed": self.well_formed / per_tool, "right_tool": self.right_tool / per_tool,
                "right_call": self.right_call / per_tool,
                "answered": self.answered / per_tool, "false_call": self.false_call / max(self.direct_prompts, 1)}


def conversation(row: dict) -> list[dict]:
    """The messages a held-out row asks: its context (system prompt, earlier turns), then the prompt."""
    return [*row.get("context", []), {"role": "user", "content": row["prompt"]}]


def score_model(model, tokenizer, rows: list[dict], max_new_tokens: int = 128) -> tuple[ToolScores, list[dict]]:
    """Scores on `rows` and one record per row (prompt, reply, parsed call, follow-up answer)."""
    first = replies(model, tokenizer, [conversation(r) for r in rows], max_new_tokens)
    scores, records = ToolScores(), []
    follow_ups = []
    for row, reply in zip(rows, first):
        call = parse_call(reply)
        record = {"id": row["id"], "prompt": row["prompt"], "reply": reply, "call": asdict(call) if call else None}
        if row["tool"] is None:
            scores.direct_prompts += 1
            scores.false_call += reply.startswith(CALL_START)
        else:
            scores.tool_prompts += 1
            scores.well_formed += call is not None
            scores.right_tool += call is not None and call.name == row["tool"]
            if call is not None and call.name == row["tool"] and call.parameters == row["arguments"]:
                scores.right_call += 1
                follow_ups.append((record, row, reply))
        records.append(record)
    # Second turn for the right calls: the true result as an ipython turn, then the answer.
    conversations = [conversation(row) + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": row["tool"], "arguments": row["arguments"]}}]},
        {"role": "tool", "content": json.dumps(tool_result(row))}] for _, row, _ in follow_ups]
    for (record, row, _), answer in zip(follow_ups, replies(model, tokenizer, conversations, 32) if follow_ups else []):
        record["answer"] = answer
        scores.answered += row["reference"] in answer
    return scores, records


def score_splits(model, tokenizer, rows: list[dict]) -> tuple[dict[str, ToolScores], list[dict]]:
    """`score_model` on each split of `rows` (rows without a `split` form one called "all")."""
    splits: dict[str, list[dict]] = {}
    for row in rows:
        splits.setdefault(row.get("split", "all"), []).append(row)
    scores, records = {}, []
    for split, split_rows in splits.items():
        scores[split], split_records = score_model(model, tokenizer, split_rows)
        records += split_records
    return scores, records


def table(results: dict[str, ToolScores]) -> str:
    lines = [f"{'model/split':<20} " + " ".join(f"{c:>14}" for c in (*TOOL_COLUMNS, "false_call"))]
    for name, s in results.items():
        r = s.rates()
        cells = [f"{n}/{s.tool_prompts} {r[k]:.0%}" for k, n in
                 ((k, getattr(s, k)) for k in TOOL_COLUMNS)]
        cells.append(f"{s.false_call}/{s.direct_prompts} {r['false_call']:.0%}")
        lines.append(f"{name:<20} " + " ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def parse_models(specs: list[str]) -> dict[str, str]:
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CorralError(f"--model {spec!r}: expected NAME=PATH, e.g. --model base=outputs/tiny-base")
        models[name] = path
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyworld.tool_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH (repeat to compare)")
    parser.add_argument("--prompts", default=PROMPTS, help=f"held-out tool prompts (default: {PROMPTS})")
    parser.add_argument("--out", default="reports/tool_eval.json", help="scores and every reply, as JSON")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, printed (default 1: on a shared CPU more threads wait on each other)")
    parser.add_argument("--show", type=int, default=2, help="print this many replies per model")
    args = parser.parse_args(argv)
    try:
        models = parse_models(args.model)
        rows = [row for _, row in read_rows(args.prompts)]
    except CorralError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    print(f"{len(rows)} prompts from {args.prompts}; torch threads: {torch.get_num_threads()}")
    results, report = {}, {}
    for name, path in models.items():
        model, tokenizer = load_model(path)
        scores, records = score_splits(model, tokenizer, rows)
        results.update({f"{name}/{split}": s for split, s in scores.items()})
        report[name] = {"path": path, "splits": {split: {**asdict(s), "rates": s.rates()} for split, s in scores.items()},
                        "replies": records}
        for rec in records[: args.show]:
            print(f"[{name}] {rec['prompt']!r} -> {rec['reply'][:160]!r}")
    print(table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
