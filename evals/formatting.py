"""How a suite prompt becomes the text a model sees: the chat template, or plain completion for base models.

A base checkpoint was never trained on chat markup, so judging it through the template measures the
template as much as the model. `--base-format raw` shows it the prompt as a completion instead:

    Question: {prompt}
    Answer:

(`raw_prompt`). A base model continues that pattern and often writes the next `Question:` itself,
so raw responses are cut at the first `"\\nQuestion:"` (`trim_raw_response`).
"""

from __future__ import annotations

from corral.chat_templates import LLAMA3_CHAT_TEMPLATE

FORMATS = ("raw", "chat")
RAW_TEMPLATE = "Question: {prompt}\nAnswer:"
RAW_STOP = "\nQuestion:"


def raw_prompt(messages: list[dict]) -> str:
    """Plain-completion text for `messages`.

    A system message becomes a preamble line; earlier user/assistant turns become answered
    `Question:/Answer:` pairs; the last user turn is left open after `Answer:`.
    """
    parts = []
    for m in messages:
        content = m["content"].strip()
        if m["role"] == "system":
            parts.append(content + "\n\n")
        elif m["role"] == "user":
            parts.append(RAW_TEMPLATE.format(prompt=content))
        else:
            parts.append(f" {content}\n\n")
    return "".join(parts)


def trim_raw_response(text: str) -> str:
    """Drop what a base model writes after its answer when it starts the next question."""
    return text.split(RAW_STOP, 1)[0].strip()


def chat_prompt(tokenizer, messages: list[dict]) -> str:
    """The chat-templated prompt, ending in the assistant header; Llama 3's template if the tokenizer has none."""
    template = None if tokenizer.chat_template else LLAMA3_CHAT_TEMPLATE
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True
    )


def format_prompt(tokenizer, messages: list[dict], fmt: str) -> str:
    if fmt == "chat":
        return chat_prompt(tokenizer, messages)
    if fmt == "raw":
        return raw_prompt(messages)
    raise ValueError(f"unknown prompt format {fmt!r} (expected one of {', '.join(FORMATS)})")


def adds_bos(fmt: str) -> bool:
    """Raw text gets the tokenizer's BOS; a chat template writes `<|begin_of_text|>` itself."""
    return fmt == "raw"


def is_base(tokenizer, name: str, raw_names: set[str]) -> bool:
    """A model is treated as *base* if its tokenizer has no chat template or the user said `--raw NAME`."""
    return not tokenizer.chat_template or name in raw_names
