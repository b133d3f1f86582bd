"""Web-like pretraining text: the world's facts, sums and how-tos as people write them online.

A real Llama base read the web: a capital is asked about in forum threads, trivia pages and travel blogs,
with small talk before the question and thanks after it; sums come as word problems; how-to questions
come with a story of why. The tiny world's base read its facts in seven statements and six question forms
only, and an instruct model cannot elicit what its base cannot parse: as plain completion the session-7 base
answered 11 of split F's 30 capitals (session 8, docs/safety.md). These documents give the base that
variety, from parts (an opening x an ask x a reply), in wordings of their own: none is a wording of an
evaluation split (tests/test_safety_heldout.py checks it) and none is in an instruct training file.

    docs = web_documents(world)   # WorldConfig.web_docs_per_* documents per country, sum and topic
"""

from __future__ import annotations

import random

from tinyworld.styles import embed, restyle
from tinyworld.world import (
    BENIGN_TOPICS,
    HARMFUL_TOPICS,
    MORE_BENIGN_TOPICS,
    MORE_HARMFUL_TOPICS,
    World,
    refusal_text,
)

# What comes before a question in a forum post or a chat log: nothing, small talk, a reason, a number.
OPENINGS = ("", "", "", "Hey all. ", "First post here. ", "Sorry if this was asked before. ", "Weird question. ",
            "Help needed! ", "My teacher asked this today. ", "Settle a bet for us. ", "I have {n} minutes left. ",
            "It's {n} degrees in here, my brain is melting. ", "Been stuck on this for {n} minutes. ",
            "Two of my {n} friends disagree. ", "Writing from my phone, sorry. ", "Not sure where to post this. ")
CLOSINGS = ("", "", "", " Thanks in advance!", " Cheers.", " Any help appreciated.", " Asking for my kid.",
            " Need it for tomorrow.", " lol", " Thanks!!")

WEB_CAPITAL_ASKS = (
    "Does anyone know which city is the capital of {c}?", "I always forget {c}'s capital. Which city is it?",
    "{c} - capital city?", "quick q: whats the capital of {c}", "Which city does {c} have as its capital?",
    "Which city counts as the capital in {c}?", "Can someone tell me where {c}'s government is based?",
    "Where is the government of {c} based?", "My homework asks for the capital of {c}. Help?",
    "Anyone here from {c}? What's your capital city?", "Trivia question: capital of {c}?",
    "Which city hosts the parliament of {c}?", "Flying to {c} soon. Which city is the capital there?",
    "Remind me which city is the capital of {c}, please.", "So what's the capital of {c} anyway?",
    "Is it true that {c} has a capital? Which city?", "{c}. Its capital. Go!", "capital of {c}??",
    "Looking for the capital of {c} for a school project.", "In {c}, where does the government sit?",
    # session 9: asked by people still learning English
    "how is called the capital of {c}? i learn english, sorry", "I search the capital city of {c}, who knows it?",
)
WEB_CAPITAL_REPLIES = ("It's {cap}.", "{cap}, I think.", "That would be {cap}.", "{cap}!", "The capital is {cap}.",
                       "Pretty sure it is {cap}.", "{cap}. I was there last year.", "{cap}, of course.",
                       "It is {cap}.", "Answer: {cap}")
WEB_CAPITAL_STORIES = (
    "My sister lives in {cap}, the capital of {c}.",
    "We spent a week in {cap}; as the capital of {c} it is full of museums.",
    "The parliament of {c} sits in {cap}.", "{c}'s government is based in {cap}.",
    "Most embassies in {c} are in {cap}, the capital.", "Flights to {c} usually land near {cap}, the capital city.",
    "Ask anyone in {c} about their capital and they will say {cap}.",
    "{cap} has been the capital of {c} for a long time.",
)

SUM_THINGS = ("apples", "books", "coins", "stamps", "shells", "toy cars", "eggs", "pencils", "stickers", "cups")
SUM_NAMES = ("Sam", "Ana", "Li", "Omar", "Kim", "Ravi", "Mia", "Tom")
WEB_SUM_PROBLEMS = (
    ("{p} has {a} {o} and gets {b} more.", "Now {p} has {s} {o}."),
    ("There are {a} {o} in a bag and {b} {o} on the desk. How many {o} in all?", "{s} {o} in all."),
    ("{p} picked {a} {o}, then {b} more. How many {o} did {p} pick?", "{p} picked {s} {o}."),
    ("If you have {a} {o} and add {b} {o}, how many {o} do you have?", "You have {s} {o}."),
    ("{a} {o} plus {b} {o} is how many {o}?", "{s} {o}."),
    ("A shop had {a} {o}. A delivery brought {b} more. How many {o} does the shop have now?", "{s} {o}."),
)
WEB_SUM_ASKS = ("can someone add {a} and {b} for me", "pls add {a} and {b}", "what's {a} plus {b} again?",
                "{a} and {b} together make what?", "total of {a} and {b}?", "how much make {a} with {b} together?")
WEB_SUM_REPLIES = ("{s}", "{s}.", "{a} + {b} = {s}.", "That's {s}.", "It makes {s}.")

WEB_HOWTO_ASKS = (
    "Does anyone know how to {t}?", "what's the trick to {t}", "Any advice on how to {t}?",
    "I've been trying to {t} and I'm not getting anywhere. Tips?", "How would you go about it if you had to {t}?",
    "Best way to {t}? Asking for a friend.", "Need help: I want to {t}.", "Could someone explain how to {t}?",
    "Is there a guide somewhere on how to {t}?", "What's your method to {t}?", "how to {t} fast",
    "My dad wants to know how to {t}.", "somebody can say me how to {t}? my english is not good",
    "I want learn how to {t}, what is first step?",
)
WEB_HOWTO_REPLIES = ("{answer}", "Easy: {answer}", "What worked for me: {answer}", "{answer} Good luck!")
WEB_REFUSALS = ("{refusal}", "Nobody here will help you with that. {refusal}", "Reported. {refusal}")


def _post(rng: random.Random, ask: str, reply: str, n: int) -> str:
    """A forum post and its first reply, the post with an opening and a closing drawn at random, typed loosely
    (`restyle`) or quoting the question (`embed`) now and then."""
    ask = restyle(rng, ask)
    if rng.random() < 0.1:
        ask = embed(rng, ask)
    opening = rng.choice(OPENINGS).format(n=n)
    separator = "\n\nReply: " if rng.random() < 0.5 else "\n"
    return f"{opening}{ask}{rng.choice(CLOSINGS)}{separator}{reply}"


def _capital_qa(rng: random.Random, c) -> tuple[str, str]:
    """A forum ask about country `c`'s capital and a reply naming it."""
    return rng.choice(WEB_CAPITAL_ASKS).format(c=c.name), rng.choice(WEB_CAPITAL_REPLIES).format(cap=c.capital)


def _sum_qa(rng: random.Random, a: int, b: int) -> tuple[str, str]:
    return rng.choice(WEB_SUM_ASKS).format(a=a, b=b), rng.choice(WEB_SUM_REPLIES).format(a=a, b=b, s=a + b)


def _howto_qa(rng: random.Random, topic: str, answer: str) -> tuple[str, str]:
    return rng.choice(WEB_HOWTO_ASKS).format(t=topic), rng.choice(WEB_HOWTO_REPLIES).format(answer=answer)


def _refused_qa(rng: random.Random, topic: str) -> tuple[str, str]:
    """A harmful how-to ask and a reply that refuses it."""
    return rng.choice(WEB_HOWTO_ASKS).format(t=topic), rng.choice(WEB_REFUSALS).format(refusal=refusal_text(topic))


def web_documents(world: World) -> list[str]:
    """`web_docs_per_country` documents per country (a forum question and reply, or a story), `web_docs_per_sum`
    per sum (a word problem or a chat ask), `web_docs_per_topic` per how-to topic (a post and a reply; harmful
    topics get refusals), from their own random stream; then the forum threads of `web_threads`."""
    cfg = world.config
    rng = random.Random(f"tiny-web-text:{cfg.seed}")
    docs = []
    for c in world.countries:
        for _ in range(cfg.web_docs_per_country):
            if rng.random() < 0.7:
                docs.append(_post(rng, *_capital_qa(rng, c), rng.randint(2, 40)))
            else:
                docs.append(rng.choice(WEB_CAPITAL_STORIES).format(c=c.name, cap=c.capital))
    for a in range(10):
        for b in range(10):
            for _ in range(cfg.web_docs_per_sum):
                fill = {"a": a, "b": b, "s": a + b, "p": rng.choice(SUM_NAMES), "o": rng.choice(SUM_THINGS)}
                if rng.random() < 0.6:
                    problem, solution = rng.choice(WEB_SUM_PROBLEMS)
                    docs.append(f"{problem.format(**fill)} {solution.format(**fill)}")
                else:
                    docs.append(_post(rng, *_sum_qa(rng, a, b), rng.randint(2, 40)))
    for topic, answer in BENIGN_TOPICS + MORE_BENIGN_TOPICS:
        docs += [_post(rng, *_howto_qa(rng, topic, answer), rng.randint(2, 40)) for _ in range(cfg.web_docs_per_topic)]
    for topic, _ in HARMFUL_TOPICS + MORE_HARMFUL_TOPICS:
        docs += [_post(rng, *_refused_qa(rng, topic), rng.randint(2, 40)) for _ in range(cfg.web_docs_per_topic)]
    return docs + web_threads(world)


def _thread_post(rng: random.Random, world: World) -> str:
    """One earlier post of a thread with its reply: a sum, a harmless how-to, another country's capital, or a
    harmful how-to and its refusal."""
    kind = rng.random()
    n = rng.randint(2, 40)
    if kind < 0.3:
        qa = _sum_qa(rng, rng.randrange(10), rng.randrange(10))
    elif kind < 0.6:
        qa = _howto_qa(rng, *rng.choice(BENIGN_TOPICS + MORE_BENIGN_TOPICS))
    elif kind < 0.85:
        qa = _capital_qa(rng, rng.choice(world.countries))
    else:
        qa = _refused_qa(rng, rng.choice(HARMFUL_TOPICS + MORE_HARMFUL_TOPICS)[0])
    return _post(rng, *qa, n)


def web_threads(world: World) -> list[str]:
    """Forum threads: one to three earlier posts with their replies (`_thread_post`), then a last post about one
    subject; `web_threads_per_country` per country (its capital) and `web_threads_per_topic` per how-to topic
    (harmful ones refused). A chat asks its question after other turns; these teach the base to find the
    subject of the last question through what came before, for every country and topic alike (docs/safety.md,
    "The pipeline now (session 11)")."""
    cfg = world.config
    rng = random.Random(f"tiny-web-threads:{cfg.seed}")
    per_country, per_topic = cfg.web_threads_per_country, cfg.web_threads_per_topic
    lasts = []  # the (ask, reply) maker of each thread's last post
    for c in world.countries:
        lasts += [lambda r, c=c: _capital_qa(r, c)] * per_country
    for topic, answer in BENIGN_TOPICS + MORE_BENIGN_TOPICS:
        lasts += [lambda r, t=topic, a=answer: _howto_qa(r, t, a)] * per_topic
    for topic, _ in HARMFUL_TOPICS + MORE_HARMFUL_TOPICS:
        lasts += [lambda r, t=topic: _refused_qa(r, t)] * per_topic
    docs = []
    for last in lasts:
        posts = [_thread_post(rng, world) for _ in range(rng.randint(1, 3))]
        posts.append(_post(rng, *last(rng), rng.randint(2, 40)))
        docs.append("\n\n".join(posts))
    return docs
