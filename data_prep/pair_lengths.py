"""How many preference rows a trainer's `max_length` would cut or drop, counted before the model loads.

    report = length_report(data.train.to_list(), tokenizer, args.max_length)
    warn_if_long(report, "reward")   # one warning line with the count, the longest row and the fix

TRL shortens long rows without a word: the DPO family keeps the first `max_length` tokens of prompt +
completion (a completion past the limit loses its end, a prompt that fills `max_length` is dropped) and the
RewardTrainer drops every pair longer than `max_length`. With `max_length: 128` the tiny world's safety pairs
(up to 280 tokens) lost 46% to the reward model and 35% to DPO, every one with earlier turns (docs/safety.md,
session 12). Lengths are counted
as TRL counts them: the chat template rendered over prompt + completion (a conversational row) or the
prompt and completion texts tokenized (a plain-text row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger("corral.lengths")

# what TRL does with a row longer than max_length: the reward trainer, the DPO family (DPO, KTO, ORPO, CPO, SimPO)
EFFECTS = {
    "reward": "TRL's RewardTrainer drops these pairs",
    "dpo": "TRL keeps their first max_length tokens, so their completions are cut",
    "dpo_keep_end": "TRL keeps their last max_length tokens (truncation_mode: keep_end), so their prompts lose "
                    "their start",
}


def effect(trainer: str, args) -> str:
    """The EFFECTS key of `trainer` ('reward' or 'dpo') under the config's `truncation_mode` (KTO's, ORPO's and
    CPO's configs have none: they keep the start)."""
    keep_end = getattr(args, "truncation_mode", "keep_start") == "keep_end"
    return "dpo_keep_end" if trainer == "dpo" and keep_end else trainer


@dataclass(frozen=True)
class LengthReport:
    rows: int
    max_length: int | None
    longest: int  # tokens of the longest prompt + completion
    over: int  # rows with a prompt + completion longer than max_length
    prompt_fills: int  # rows whose prompt alone reaches max_length: no completion token is trained (DPO drops them)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "max_length": self.max_length, "longest_tokens": self.longest,
                "longer_than_max_length": self.over, "prompt_fills_max_length": self.prompt_fills}


def _completions(row: dict) -> list:
    return [row[k] for k in ("chosen", "rejected", "completion") if row.get(k) is not None]


def _texts(row: dict, tokenizer) -> tuple[str, list[str], bool]:
    """(prompt text, one text per completion, conversational?) of a preference or unpaired row. A conversational
    row's texts are the chat template over prompt + completion (it decides the tokens around each turn); a
    plain row's are the completions alone."""
    completions = _completions(row)
    prompt = row.get("prompt") or ([] if isinstance(completions[0], list) else "")
    if not isinstance(prompt, list):
        return prompt, completions, False
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True) if prompt else ""
    return head, [tokenizer.apply_chat_template(prompt + c, tokenize=False) for c in completions], True


def _lengths(rows: list[dict], tokenizer) -> list[tuple[int, int]]:
    """(prompt tokens, tokens of the prompt + its longest completion) per row, tokenized in one batch."""
    pieces = [_texts(row, tokenizer) for row in rows]
    flat = [text for head, texts, _ in pieces for text in (head, *texts)]
    counts = iter(map(len, tokenizer(flat, add_special_tokens=False)["input_ids"]) if flat else [])
    lengths = []
    for _, texts, conversational in pieces:
        n_prompt = next(counts)
        full = [next(counts) for _ in texts]
        lengths.append((n_prompt, max(full) if conversational else n_prompt + max(full)))
    return lengths


def row_lengths(row: dict, tokenizer) -> tuple[int, int]:
    """(prompt tokens, tokens of the prompt + its longest completion) of one preference or unpaired row."""
    return _lengths([row], tokenizer)[0]


def length_report(rows: list[dict], tokenizer, max_length: int | None) -> LengthReport:
    """Counts over `rows` (standard preference or unpaired rows) against `max_length` (None: no limit)."""
    return report_of(_lengths(rows, tokenizer), max_length)


def report_of(lengths: list[tuple[int, int]], max_length: int | None) -> LengthReport:
    """Counts over (prompt tokens, prompt + longest completion tokens) per row against `max_length`."""
    limit = float("inf") if max_length is None else max_length
    return LengthReport(rows=len(lengths), max_length=max_length, longest=max((n for _, n in lengths), default=0),
                        over=sum(n > limit for _, n in lengths), prompt_fills=sum(p >= limit for p, _ in lengths))


def long_rows_line(report: LengthReport, trainer: str) -> str | None:
    """One line saying how many rows `trainer` (an EFFECTS key) will cut or drop and the fix, or None."""
    if not report.over:
        return None
    share = report.over / report.rows
    line = (f"{report.over} of {report.rows} training rows ({share:.0%}) are longer than max_length="
            f"{report.max_length} tokens (longest {report.longest}): {EFFECTS[trainer]}")
    if trainer == "dpo" and report.prompt_fills:
        line += f"; {report.prompt_fills} keep no completion token (the prompt fills max_length; DPO drops them)"
    return line + f". Set max_length: {report.longest} to train every row whole"


def warn_if_long(report: LengthReport, trainer: str) -> None:
    line = long_rows_line(report, trainer)
    if line:
        logger.warning(line)
    else:
        logger.info("all %d training rows fit max_length=%s (longest %d tokens)", report.rows, report.max_length,
                    report.longest)
