"""ShareGPT preference rows as LLaMA-Factory reads them:
`{"conversations": [{from, value}...], "chosen": {from, value}, "rejected": {from, value}, "system"?}`.

`conversations` is the prompt; `chosen` and `rejected` are single answer turns.
"""

from __future__ import annotations

from corral.errors import RowError
from data_prep.formats import sharegpt, turns


def _answer(raw) -> list[dict]:
    message = sharegpt.turn(raw, 1)
    if message["role"] != "assistant":
        raise RowError("answer must be a gpt or function_call turn")
    return turns.check([message])


def convert(row: dict) -> dict:
    if row.get("conversations") == []:
        raise RowError("missing prompt")
    prompt = sharegpt.conversation(row)
    if prompt[-1]["role"] == "assistant":
        raise RowError("prompt ends with an assistant turn")
    answers = {}
    for name in ("chosen", "rejected"):
        raw = turns.require(row, name)
        with turns.in_field(name):
            answers[name] = _answer(raw)
    if answers["chosen"] == answers["rejected"]:
        raise RowError("chosen and rejected are identical")
    return {"prompt": prompt, **answers}
