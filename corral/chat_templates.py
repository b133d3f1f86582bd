"""The Llama 3 Instruct chat template, byte for byte, and a training variant with loss markers.

`LLAMA3_CHAT_TEMPLATE` is the template shipped in Meta's Llama-3-8B-Instruct `tokenizer_config.json`.
A rendered conversation looks like::

    <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYSTEM<|eot_id|>
    <|start_header_id|>user<|end_header_id|>\n\nQUESTION<|eot_id|>
    <|start_header_id|>assistant<|end_header_id|>\n\nANSWER<|eot_id|>

(without the line breaks between turns). `LLAMA3_TRAINING_CHAT_TEMPLATE` renders the identical string
but wraps each assistant answer *and its closing* `<|eot_id|>` in `{% generation %}` markers, so
`return_assistant_tokens_mask=True` marks exactly the tokens the model must learn to produce,
including the end-of-turn token (otherwise the tuned model never learns to stop).
"""

from __future__ import annotations

from pathlib import Path

LLAMA3_SPECIAL_TOKENS = {
    "bos": "<|begin_of_text|>",
    "eos": "<|end_of_text|>",
    "start_header": "<|start_header_id|>",
    "end_header": "<|end_header_id|>",
    "eot": "<|eot_id|>",
    # Llama 3.1 reserves this one for right padding; it is distinct from every end-of-sequence token.
    "pad": "<|finetune_right_pad_id|>",
}

# Official Meta Llama 3 Instruct template (one line in tokenizer_config.json).
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Same rendering, with {% generation %} around what the assistant writes (answer + <|eot_id|>).
LLAMA3_TRAINING_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% generation %}{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def render_llama3(messages: list[dict], add_generation_prompt: bool = False, bos_token: str = "<|begin_of_text|>") -> str:
    """Render `messages` as the official template does, in plain Python (the reference the tests compare to)."""
    out = [bos_token]
    for m in messages:
        out.append(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>")
    if add_generation_prompt:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


# Llama 3.1 with tools (`chat_template: llama3.1`): one .jinja source with {% generation %} markers for
# training; the template saved with a model has them removed (other runtimes do not know the tag).
LLAMA31_TRAINING_CHAT_TEMPLATE = (Path(__file__).with_name("llama3_1_chat_template.jinja")).read_text(encoding="utf-8")
LLAMA31_CHAT_TEMPLATE = (LLAMA31_TRAINING_CHAT_TEMPLATE.replace("{% generation %}", "")
                         .replace("{% endgeneration %}", ""))
# Tokens a Llama 3.1 tokenizer has and a Llama 3 (3.0) one holds only as reserved ids.
LLAMA31_TOOL_TOKENS = ("<|eom_id|>", "<|python_tag|>")
# An assistant turn ends with one of these: <|eot_id|> after an answer, <|eom_id|> after a tool call.
END_OF_TURN_TOKENS = ("<|eot_id|>", "<|eom_id|>")
