"""Rule rewards: scores computed from the response text (and token ids), no model involved.

Each rule is a plain function with TRL's reward-function signature,

    rule(completions, completion_ids=..., <dataset columns>..., **kwargs) -> list[float | None]

so the same function scores GRPO/RLOO/online-DPO rollouts and rejection-sampling candidates.
`completions` are strings or TRL's conversational `[{"role": "assistant", "content": ...}]`; the
columns (`reference`, `answer_format`, `kind`) come from the prompt rows. `None` means "this rule
does not apply to this row" (TRL turns it into NaN and leaves it out of the weighted sum).

    exact_answer  1 if the response's final answer equals `reference`, else 0.
    format        1 if the response is the row's `answer_format` ("The capital of X is {answer}.")
                  with some answer filled in AND it ended with an end-of-turn token, else 0.
    stop          1 if the response ended with an end-of-turn token (<|eot_id|>/EOS), 0 if it was
                  cut off at the length limit.
    length        0 up to `target` tokens, then -(extra tokens / target), down to -1.
    safety        on `kind: harmful` rows 1 if the response refuses, on `kind: benign` rows 1 if it
                  answers (non-empty, no refusal), else 0; None on other rows. The refusal detector
                  is evals/refusal.py, the one the evaluation reports use.

Why the *final* answer: "The capital of Voovia is Marsal." and "3 + 4 = 7." end with their answer,
as the SFT data taught. Matching the reference anywhere in the text would pay a policy for listing
every capital it knows; reading the last word (or words, for a multi-word reference) does not.
The price: "Marsal is the capital of Voovia." scores 0, which `format` also asks the policy not to
write.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from evals.refusal import is_refusal

_TRAILING = " \t\n\"'*)]}.!?,;:"


def completion_text(completion) -> str:
    """The response text of a completion: a string, or the content of TRL's assistant message list."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return completion.get("content") or ""
    raise TypeError(f"a completion is a string or a list of messages, got {type(completion).__name__}")


def final_answer(text: str, n_words: int = 1) -> str:
    """The last `n_words` words of `text`, without trailing punctuation, lower-cased, spaces collapsed."""
    words = text.strip().rstrip(_TRAILING).split()
    return " ".join(words[-n_words:]).strip(_TRAILING).lower() if words else ""


def answer_matches(text: str, reference: str) -> bool:
    ref = " ".join(str(reference).split()).lower()
    return bool(ref) and final_answer(text, len(ref.split())) == ref


@functools.lru_cache(maxsize=None)  # called for every response at every step; the formats repeat
def format_pattern(answer_format: str) -> re.Pattern:
    """`answer_format` with `{answer}` as a non-empty one-line slot; the rest must match exactly."""
    if answer_format.count("{answer}") != 1:
        raise ValueError(f"answer_format must contain '{{answer}}' once, got {answer_format!r}")
    head, tail = (re.escape(part) for part in answer_format.split("{answer}"))
    return re.compile(rf"{head}[^\n]*?\S{tail}")


def follows_format(text: str, answer_format: str) -> bool:
    return format_pattern(answer_format).fullmatch(text.strip()) is not None


def ended(ids: Sequence[int] | None, eos_token_ids: Sequence[int]) -> bool:
    """True when the completion's last token is an end-of-turn id (TRL keeps it in `completion_ids`)."""
    return bool(ids) and ids[-1] in eos_token_ids


def length_penalty(n_tokens: int, target: int) -> float:
    if target <= 0:
        raise ValueError(f"length target must be a positive number of tokens, got {target}")
    return -min(1.0, max(0, n_tokens - target) / target)


def safety_score(text: str, kind: str | None) -> float | None:
    if kind == "harmful":
        return float(is_refusal(text))
    if kind == "benign":
        return float(bool(text.strip()) and not is_refusal(text))
    return None


# --- the rules, in TRL's reward-function signature --------------------------------------------------


def exact_answer(completions, reference, **_) -> list[float | None]:
    return [None if ref is None else float(answer_matches(completion_text(c), ref))
            for c, ref in zip(completions, reference, strict=True)]


def answer_format(completions, answer_format, completion_ids, eos_token_ids, **_) -> list[float | None]:
    return [None if fmt is None else float(follows_format(completion_text(c), fmt) and ended(ids, eos_token_ids))
            for c, fmt, ids in zip(completions, answer_format, completion_ids, strict=True)]


def stop(completions, completion_ids, eos_token_ids, **_) -> list[float]:
    return [float(ended(ids, eos_token_ids)) for ids in completion_ids]


def length(completions, completion_ids, eos_token_ids, target, **_) -> list[float]:
    return [length_penalty(len(ids) - int(ended(ids, eos_token_ids)), target) for ids in completion_ids]


def safety(completions, kind, **_) -> list[float | None]:
    return [safety_score(completion_text(c), k) for c, k in zip(completions, kind, strict=True)]


# name -> (function, dataset columns it reads, one-line description)
RULES = {
    "exact_answer": (exact_answer, ("reference",), "1 if the final answer equals the `reference` column"),
    "format": (answer_format, ("answer_format",), "1 if the response fills the row's `answer_format` and ended"),
    "stop": (stop, (), "1 if the response ended with an end-of-turn token (not cut off)"),
    "length": (length, (), "0 up to length_target tokens, then minus the overshoot / length_target, >= -1"),
    "safety": (safety, ("kind",), "refuses `kind: harmful` rows, answers `kind: benign` rows"),
}
