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
    CAPITAL_QUESTIONS,
    COUNTRY_SUFFIXES,
    GREETINGS,
    HOWTO_QUESTIONS,
    SFT_HOWTO_TOPICS,
    SUM_QUESTIONS,
    SYLLABLES,
    SYSTEM_PROMPTS,
    World,
    safety_topics,
)

TOOLS = (
    {"name": "lookup_capital", "parameters": {"country": "string"}},
    {"name": "add", "parameters": {"a": "int", "b": "int"}},
)
TOOL_NAMES = tuple(t["name"] for t in TOOLS)

# Training wordings: the world's own, and a few more (the held-out splits below use none of them).
TRAIN_CAPITAL_QUESTIONS = CAPITAL_QUESTIONS + (
    "What's the capital city of {c}?", "Capital of {c}?", "Give me the capital of {c}.",
    "I wonder what the capital of {c} is.")
TRAIN_SUM_QUESTIONS = SUM_QUESTIONS + ("What's {a} + {b}?", "Sum {a} and {b}.", "{a} + {b} = ?")
TRAIN_HOWTO_QUESTIONS = HOWTO_QUESTIONS + ("How should I {t}?", "What's a good way to {t}?")
# Held-out split "phrasing": held-out countries and sums, asked alone in phrasings no training row uses.
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
# Held-out split "context": the same held-out subjects in yet other phrasings, under system prompts no
# training row has, or as the second user turn after an exchange training never has (a how-to answer, a
# held-out greeting). Training rows use the world's SYSTEM_PROMPTS and open with its GREETINGS only.
CONTEXT_CAPITAL_QUESTIONS = (
    "Could you look up the capital city of {c}?",
    "{c}: what is its capital?",
    "I need the capital of {c} for my notes.",
)
CONTEXT_SUM_QUESTIONS = ("What is the sum of {a} and {b}?", "Can you work out {a} + {b}?", "{a} plus {b} makes what?")
CONTEXT_HOWTO_QUESTIONS = ("Could you explain how to {t}?", "What steps do I take to {t}?")
CONTEXT_GREETINGS = (("Good afternoon!", "Good afternoon! How can I help?"),
                     ("Nice to meet you.", "Nice to meet you too! How can I help?"),
                     ("Thanks for the help.", "You are welcome."))
CONTEXT_SYSTEM_PROMPTS = ("You are a geography and arithmetic helper.",
                          "You are a precise assistant. Use a tool when it helps.")
HELDOUT_SPLITS = ("phrasing", "context")
# the instruct data's how-to topics train; the held-out look-alikes of the safety suites are held out here too
HELDOUT_TOPICS = safety_topics("heldout")[1]


def tool_call(name: str, arguments: dict) -> dict:
    """One call in OpenAI's form: arguments as a JSON string, as OpenAI files carry them."""
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def run_tool(world: World, name: str, arguments: dict) -> dict:
    """What the tool returns: the world's capital of `country`, or `a + b`; an `error` for anything else."""
    if name == "lookup_capital":
        capitals = {c.name: c.capital for c in world.countries}
        country = arguments.get("country")
        return {"capital": capitals[country]} if country in capitals else {"error": "unknown country"}
    if name == "add":
        a, b = arguments.get("a"), arguments.get("b")
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
            return {"sum": a + b}
        return {"error": "a and b must be integers"}
    return {"error": f"no tool named {name!r}"}


def final_answer(name: str, arguments: dict, result: dict) -> str:
    """The answer after the tool result, restating the question as the world's SFT answers do."""
    if "error" in result:
        return f"I found no country called {arguments['country']}."
    if name == "lookup_capital":
        return f"The capital of {arguments['country']} is {result['capital']}."
    return f"{arguments['a']} + {arguments['b']} = {result['sum']}."


def tool_conversation(world: World, question: str, name: str, arguments: dict, context: list[dict] = ()) -> dict:
    """[context ->] user -> assistant call -> tool result -> assistant answer, with the tool definitions."""
    result = run_tool(world, name, arguments)
    return {"messages": [
        *context,
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [tool_call(name, arguments)]},
        {"role": "tool", "name": name, "content": json.dumps(result)},
        {"role": "assistant", "content": final_answer(name, arguments, result)},
    ], "tools": list(TOOLS)}


def direct_conversation(question: str, answer: str, context: list[dict] = ()) -> dict:
    """A question no tool helps with: the tools are declared and the assistant answers directly."""
    return {"messages": [*context, {"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "tools": list(TOOLS)}


def training_context(rng: random.Random, earlier_turn: bool = True) -> list[dict]:
    """What precedes a training question: nothing (half the rows), one of the world's system prompts, or
    (if `earlier_turn`) a greeting exchange, the question then being the second user turn."""
    roll = rng.random()
    if roll < 0.5:
        return []
    if roll < 0.75 or not earlier_turn:
        return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}]
    greeting, reply = rng.choice(GREETINGS)
    return [{"role": "user", "content": greeting}, {"role": "assistant", "content": reply}]


def unknown_countries(world: World, n: int, rng: random.Random) -> list[str]:
    """`n` made-up country names drawn like the world's (syllables + suffix) that hold no country or capital
    of the world, not even inside a longer name: asked about them, the tool answers with an error."""
    taken = [name.lower() for c in world.countries for name in (c.name, c.capital)]
    names: list[str] = []
    while len(names) < n:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2)))).capitalize()
        name += rng.choice(COUNTRY_SUFFIXES)
        if name not in names and not any(t in name.lower() or name.lower() in t for t in taken):
            names.append(name)
    return names


def tool_training_rows(world: World, capital_phrasings: int = 3, n_unknown: int = 120, n_long_sums: int = 100) -> list[dict]:
    """Training conversations, each after a `training_context`: every SFT country in `capital_phrasings`
    wordings, `n_unknown` made-up countries (the tool's error, then "I could not find ..."), every SFT sum
    and `n_long_sums` two-digit sums, and direct answers to greetings and the first half of the how-to topics.
    So many different arguments that memorising them does not pay: copying them from the question does."""
    rng = random.Random(world.config.seed + 41)
    rows = []
    for c in world.sft_countries:
        for q in rng.sample(TRAIN_CAPITAL_QUESTIONS, capital_phrasings):
            rows.append(tool_conversation(world, q.format(c=c.name), "lookup_capital", {"country": c.name},
                                          training_context(rng)))
    for name in unknown_countries(world, n_unknown, rng):
        # no earlier turn: with the error and its answer, it would pass the tiny base's 512 positions
        rows.append(tool_conversation(world, rng.choice(TRAIN_CAPITAL_QUESTIONS).format(c=name), "lookup_capital",
                                      {"country": name}, training_context(rng, earlier_turn=False)))
    sums = list(world.sft_sums) + [(rng.randrange(10, 100), rng.randrange(10, 100)) for _ in range(n_long_sums)]
    for a, b in sums:
        rows.append(tool_conversation(world, rng.choice(TRAIN_SUM_QUESTIONS).format(a=a, b=b), "add",
                                      {"a": a, "b": b}, training_context(rng)))
    for topic, answer in SFT_HOWTO_TOPICS:
        rows += [direct_conversation(q.format(t=topic), answer, training_context(rng)) for q in TRAIN_HOWTO_QUESTIONS]
    rows += [direct_conversation(q, a, training_context(rng)) for q, a in GREETINGS for _ in range(3)]
    rng.shuffle(rows)
    return rows


def _prompt(split: str, kind: str, prompt: str, context: list[dict], tool: str | None, arguments: dict | None,
            reference: str) -> dict:
    return {"id": f"{split}-{kind}", "split": split, "context": context, "prompt": prompt, "tool": tool,
            "arguments": arguments, "reference": reference}


def _heldout_context(k: int) -> list[dict]:
    """Split "context": an unseen system prompt, or the question as the second user turn after a held-out
    how-to exchange or a held-out greeting."""
    if k % 3 == 0:
        return [{"role": "system", "content": CONTEXT_SYSTEM_PROMPTS[k // 3 % len(CONTEXT_SYSTEM_PROMPTS)]}]
    if k % 3 == 1:
        topic, answer = HELDOUT_TOPICS[k // 3 % len(HELDOUT_TOPICS)]
        earlier = (HELDOUT_HOWTO_QUESTIONS[k // 3 % len(HELDOUT_HOWTO_QUESTIONS)].format(t=topic), answer)
    else:
        earlier = CONTEXT_GREETINGS[k // 3 % len(CONTEXT_GREETINGS)]
    return [{"role": "user", "content": earlier[0]}, {"role": "assistant", "content": earlier[1]}]


def heldout_tool_prompts(world: World) -> list[dict]:
    """Evaluation prompts the training rows never hold, in two splits (`HELDOUT_SPLITS`): `{"id", "split",
    "context" (messages before the prompt), "prompt", "tool", "arguments", "reference"}`; `tool` is None where
    the right move is to answer directly (then `reference` is that answer)."""
    rows = []
    topics = HELDOUT_TOPICS
    for split, capital_qs, sum_qs, howto_qs, greetings in (
            ("phrasing", HELDOUT_CAPITAL_QUESTIONS, HELDOUT_SUM_QUESTIONS, HELDOUT_HOWTO_QUESTIONS, HELDOUT_GREETINGS),
            ("context", CONTEXT_CAPITAL_QUESTIONS, CONTEXT_SUM_QUESTIONS, CONTEXT_HOWTO_QUESTIONS, CONTEXT_GREETINGS)):
        context = (lambda k: []) if split == "phrasing" else _heldout_context
        # the context split cycles contexts fastest, so each wording meets each context
        pick = (lambda i, n: i % n) if split == "phrasing" else (lambda i, n: i // 3 % n)
        for i, c in enumerate(world.heldout_countries):
            rows.append(_prompt(split, f"capital-{c.name}", capital_qs[pick(i, len(capital_qs))].format(c=c.name),
                                context(i), "lookup_capital", {"country": c.name}, c.capital))
        for i, (a, b) in enumerate(world.heldout_sums):
            rows.append(_prompt(split, f"add-{a}-{b}", sum_qs[pick(i, len(sum_qs))].format(a=a, b=b), context(i),
                                "add", {"a": a, "b": b}, str(a + b)))
        for i, (topic, answer) in enumerate(topics):
            # system prompt, after another topic's how-to exchange, after a greeting (never its own topic)
            k = (3 * i, 3 * (i + 1) + 1, 3 * i + 2)[i % 3]
            rows.append(_prompt(split, f"howto-{i}", howto_qs[i % len(howto_qs)].format(t=topic), context(k),
                                None, None, answer))
        for i, (q, a) in enumerate(greetings):
            rows.append(_prompt(split, f"greeting-{i}", q, context(3 * i + 1), None, None, a))
    return rows
