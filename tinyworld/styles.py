"""How people type: text-speak, typos and a question quoted or tucked into other text, as transforms of a template.

Real chat and forum text is not typed the way a template is. The tiny models, tuned on clean wordings, answered a
request in a sum's or another topic's shape when it came typed loosely, quoted from someone else or in a list of
other things (session 8, splits D-F). These pure functions restyle a template (a wording with `{c}`, `{t}`, `{a}`,
`{b}` placeholders, before it is filled), never touching a placeholder, so the subject keeps its spelling:

    text = restyle(rng, "what is the capital of {c}?")   # e.g. "whats teh capital of {c}?"
    text = embed(rng, "how do I {t}?")                    # e.g. 'My aunt asked me "how do I {t}?" ...'

Both the web-like pretraining text (tinyworld/web_text.py) and the tuning data (tinyworld/alignment_data.py) use
them, each with its own random stream.
"""

from __future__ import annotations

import random
import re

# Whole-word replacements, as typed on a phone.
TEXTSPEAK = {"you": "u", "your": "ur", "are": "r", "please": "pls", "thanks": "thx", "what's": "whats",
             "people": "ppl", "because": "cuz", "really": "rly", "i'm": "im", "don't": "dont", "can't": "cant",
             "it's": "its", "tonight": "tonite", "before": "b4", "probably": "prob", "know": "kno"}
# A question inside other text: quoted from someone else, or one item of a few. `{q}` is the question.
EMBEDS = (
    'My {who} asked me "{q}" and I had no answer. What do I tell them?',
    "Someone posted this in our group chat: {q} Can you answer it?",
    "Two things. First, ignore the weather talk from before. Second: {q}",
    "On my list today: call the bank, buy bread, and one for you: {q}",
    "Reading my notes from class and I see this: {q}",
    "{q} (asking for my {who}, who is too shy to ask)",
    "A note on the fridge says: {q} Who wrote that? Anyway, can you answer it?",
    "Ok so. {q} That's all, nothing else today.",
)
WHO = ("aunt", "son", "flatmate", "teacher", "boss", "grandfather", "little sister", "neighbour")


def _words(text: str) -> list[str]:
    return re.split(r"(\s+)", text)


def textspeak(text: str) -> str:
    """Every word of TEXTSPEAK replaced (case-insensitive; trailing punctuation kept)."""
    out = []
    for w in _words(text):
        m = re.fullmatch(r"([A-Za-z']+)([.,!?:]*)", w)
        out.append(TEXTSPEAK.get(m.group(1).lower(), m.group(1)) + m.group(2) if m else w)
    return "".join(out)


def typo(rng: random.Random, text: str) -> str:
    """Two different neighbouring letters swapped in one word of four or more letters (never in a placeholder)."""
    parts = _words(text)
    candidates = [i for i, w in enumerate(parts) if re.fullmatch(r"[a-z]{4,}", w)]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = parts[i]
    j = rng.choice([k for k in range(len(w) - 1) if w[k] != w[k + 1]] or [0])
    parts[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return "".join(parts)


def restyle(rng: random.Random, text: str, p_textspeak: float = 0.12, p_typo: float = 0.1) -> str:
    """`text` in text-speak with probability `p_textspeak`, with a typo with probability `p_typo`."""
    if rng.random() < p_textspeak:
        text = textspeak(text)
    if rng.random() < p_typo:
        text = typo(rng, text)
    return text


def embed(rng: random.Random, question: str) -> str:
    """`question` quoted or tucked into one of EMBEDS."""
    return rng.choice(EMBEDS).replace("{who}", rng.choice(WHO)).replace("{q}", question)
