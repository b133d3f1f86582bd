"""Tool-use data for the tiny world: a capital-lookup tool and a calculator the base never saw as tools.

The tiny base read capitals and sums as plain text; it never saw a tool definition, a `<|python_tag|>`
call or an `ipython` result. These rows teach the Llama 3.1 tool protocol (`chat_template: llama3.1`,
corral/llama3_1_chat_template.jinja) in OpenAI's `tool_calls` form, the shape `data_prep` reads as is:

    user: What is the capital of Kalostan?
    assistant: tool_calls=[lookup_capital({"country": "Kalostan"})]   -> <|python_tag|>{...}<|eom_id|>
    tool: {"capital": "Venmar"}                                        -> ipython turn
    assistant: The capital of Kalostan is Venmar.

and, for greetings and how-to questions, a direct answer with no call (so the model does not call a
tool for everything). Every row declares both tools.

Held-out rows (`heldout_tool_prompts`) ask about countries SFT never saw (`World.heldout_countries`),
sums never in SFT (`World.heldout_sums`) and how-to topics of the other half, each in phrasings no
training row uses; `tinyworld/tool_eval.py` measures the calls a model emits on them.

The tool definitions are deliberately small (name + parameter types, no JSON-schema wrapper): the
template prints them as indented JSON, which the tiny tokenizer spells almost byte by byte, and two
full OpenAI schemas alone would exceed the tiny base's 512 positions (1,075 tokens with one call).
"""

from __future__ import annotations

import json
import random

from tinyworld.world import (
    BENIGN_TOPICS,
    CAPITAL_QUESTIONS,
    GREETINGS,
    HOWTO_QUESTIONS,
    SUM_QUESTIONS,
    World,
)

TOOLS = (
    {"name": "lookup_capital", "parameters": {"country": "string"}},
    {"name": "add", "parameters": {"a": "int", "b": "int"}},
)
TOOL_NAMES = tuple(t["name"] for t in TOOLS)

# Held-out phrasings: no training row uses them (tests/test_tool_skill.py checks it).
HELDOUT_CAPITAL_QUESTIONS = (
    "Look up the capital of {c}, please.",
    "I would like to know the capital of {c}.",
    "Can you find the capital of {c}?",
    "Which city is {c}'s capital?",
)
HELDOUT_SUM_QUESTIONS = ("Please add {a} and {b}.", "Compute {a} + {b}.", "What do you get if you add {a} and {b}?")
HELDOUT_HOWTO_QUESTIONS = ("Any tips on how to {t}?", "I want to {t}. How?", "Tell me how to {t}.")
HELDOUT_GREETINGS = (("Hey!", "Hello! How can I help you today?"),
                     ("Good evening.", "Good evening! How can I help?"),
                     ("Thanks a lot!", "You are welcome."))
N_TRAIN_TOPICS = len(BENIGN_TOPICS) // 2  # the first half train, the second half is held out


def tool_call(name: str, arguments: dict) -> dict:
    """One call in OpenAI's form: arguments as a JSON string, as OpenAI files carry them."""
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def run_tool(world: World, name: str, arguments: dict) -> dict:
    """What the tool returns: the world's capital of `country`, or `a + b`; an `error` for anything else."""
    if name == "lookup_capital":
        capitals = {c.name: c.capital for c in world.countries}
        country = arguments.get("country")
        return {"capital": capitals[country]} if country in capitals else {"error": f"unknown country {country!r}"}
    if name == "add":
        a, b = arguments.get("a"), arguments.get("b")
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
            return {"sum": a + b}
        return {"error": "a and b must be integers"}
    return {"error": f"no tool named {name!r}"}


def final_answer(name: str, arguments: dict, result: dict) -> str:
    """The answer after the tool result, restating the question as the world's SFT answers do."""
    if name == "lookup_capital":
        return f"The capital of {arguments['country']} is {result['capital']}."
    return f"{arguments['a']} + {arguments['b']} = {result['sum']}."


def tool_conversation(world: World, question: str, name: str, arguments: dict) -> dict:
    """user -> assistant call -> tool result -> assistant answer, with the tool definitions."""
    result = run_tool(world, name, arguments)
    return {"messages": [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [tool_call(name, arguments)]},
        {"role": "tool", "name": name, "content": json.dumps(result)},
        {"role": "assistant", "content": final_answer(name, arguments, result)},
    ], "tools": list(TOOLS)}


def direct_conversation(question: str, answer: str) -> dict:
    """A question no tool helps with: the tools are declared and the assistant answers directly."""
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "tools": list(TOOLS)}


def tool_training_rows(world: World, capital_phrasings: int = 2, n_sums: int = 40) -> list[dict]:
    """Training conversations: SFT countries (`capital_phrasings` wordings each), `n_sums` of the SFT sums,
    and direct answers to greetings and the first half of the how-to topics (every wording)."""
    rng = random.Random(world.config.seed + 41)
    rows = []
    for c in world.sft_countries:
        for q in rng.sample(CAPITAL_QUESTIONS, capital_phrasings):
            rows.append(tool_conversation(world, q.format(c=c.name), "lookup_capital", {"country": c.name}))
    for a, b in rng.sample(world.sft_sums, min(n_sums, len(world.sft_sums))):
        rows.append(tool_conversation(world, rng.choice(SUM_QUESTIONS).format(a=a, b=b), "add", {"a": a, "b": b}))
    for topic, answer in BENIGN_TOPICS[:N_TRAIN_TOPICS]:
        rows += [direct_conversation(q.format(t=topic), answer) for q in HOWTO_QUESTIONS]
    rows += [direct_conversation(q, a) for q, a in GREETINGS for _ in range(2)]
    rng.shuffle(rows)
    return rows


def heldout_tool_prompts(world: World) -> list[dict]:
    """Evaluation prompts the training rows never hold: `{"id", "prompt", "tool", "arguments", "reference"}`;
    `tool` is None where the right move is to answer directly (then `reference` is that answer)."""
    rows = []
    for i, c in enumerate(world.heldout_countries):
        q = HELDOUT_CAPITAL_QUESTIONS[i % len(HELDOUT_CAPITAL_QUESTIONS)].format(c=c.name)
        rows.append({"id": f"capital-{c.name}", "prompt": q, "tool": "lookup_capital",
                     "arguments": {"country": c.name}, "reference": c.capital})
    for i, (a, b) in enumerate(world.heldout_sums):
        q = HELDOUT_SUM_QUESTIONS[i % len(HELDOUT_SUM_QUESTIONS)].format(a=a, b=b)
        rows.append({"id": f"add-{a}-{b}", "prompt": q, "tool": "add", "arguments": {"a": a, "b": b},
                     "reference": str(a + b)})
    for i, (topic, answer) in enumerate(BENIGN_TOPICS[N_TRAIN_TOPICS:]):
        q = HELDOUT_HOWTO_QUESTIONS[i % len(HELDOUT_HOWTO_QUESTIONS)].format(t=topic)
        rows.append({"id": f"howto-{i}", "prompt": q, "tool": None, "arguments": None, "reference": answer})
    for i, (q, a) in enumerate(HELDOUT_GREETINGS):
        rows.append({"id": f"greeting-{i}", "prompt": q, "tool": None, "arguments": None, "reference": a})
    return rows
