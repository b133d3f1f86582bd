"""Training data for one aligned model: varied instruct rows and safety data for every stage (SFT, DPO, RL).

    rows = varied_instruct_rows(world)       # SFT: capitals/sums in more wordings, system prompts, turn positions
    rows = safety_sft_rows(world)            # SFT: refusals and look-alike answers, same variety
    rows = varied_preference_pairs(world)    # DPO family: correct capitals/sums over mistakes, same variety
    rows = varied_rl_prompts(world)          # RL: capitals of SFT and RL countries, SFT sums, same variety
    rows = safety_preference_pairs(world)    # DPO family: refusal > compliance (harmful), answer > refusal (benign)
    rows = safety_rl_prompts(world)          # RL: harmful/benign prompts scored by the `safety` rule

Why the variety: the tiny world's instruct data asks in six capital and four how-to wordings, and a
model tuned on it answers those wordings, not the question (README of issue 13: 57-67% on held-out
wordings while the base knows 90-100%). Real instruct data is varied, so these rows are too - but
with wordings, system prompts and earlier turns of their own (`LEAD_INS` x `*_FORMS`,
`CONTEXT_SYSTEM_PROMPTS`, `OPENING_TURNS` below), never those of the held-out-phrasing splits A-H
(`tinyworld/heldout_phrasing.py`; tests/test_safety_heldout.py checks it).

Subjects stay where the world's split puts them: SFT countries and sums (RL prompts also the RL
countries, as tinyworld/prompts.py's do), and the training safety topics (`safety_topics("train")`).
Answers use the corpus's own words (`refusal_text`, `howto_text`), which makes a model restate the
request and so carry a refusal over to requests it never saw; capitals are answered "It is Y."
(`CAPITAL_REPLY`, tinyworld/world.py says why). Each generator has its own `random.Random` stream.
"""

from __future__ import annotations

import random

from tinyworld.preferences import (
    CAPITAL_PHRASINGS,
    SUM_PHRASINGS,
    capital_rejected,
    mistakes,
    preference_pairs,
    sum_rejected,
)
from tinyworld.prompts import CAPITAL_FORMAT, SUM_FORMAT, rl_country_split
from tinyworld.styles import embed, restyle
from tinyworld.world import (
    CAPITAL_REPLY,
    GREETINGS,
    HOWTO_QUESTIONS,
    REFUSAL,
    SYSTEM_PROMPTS,
    World,
    howto_text,
    refusal_text,
    safety_topics,
)

TRAIN_CAPITAL_PHRASINGS = CAPITAL_PHRASINGS + (
    "I'm curious: which city is the capital of {c}?",
    "What is the name of the capital of {c}?",
    "Where is the capital of {c}?",
    "Can you tell me the capital of {c}?",
)
TRAIN_HOWTO_PHRASINGS = HOWTO_QUESTIONS + (
    "How would I {t}?",
    "Show me how to {t}.",
    "I need to {t}. How do I do it?",
    "Give me instructions to {t}.",
    "What steps do I follow to {t}?",
    "Can you explain how to {t}?",
)
TRAIN_SYSTEM_PROMPTS = SYSTEM_PROMPTS + (
    "You are a knowledgeable assistant.",
    "You are a careful assistant. Be accurate and brief.",
)
# Vague compliance: the shape of an unsafe answer, as the corpus writes it (tinyworld/world.py).
COMPLIANCE = "Sure. First get what you need to {t}, then do it when nobody is watching."


def _context(rng: random.Random, world: World, question: str, answer: str) -> list[dict]:
    """`question` -> `answer` as the last turn of: a lone turn, a system prompt, or after one earlier turn."""
    r = rng.random()
    last = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    if r < 0.5:
        return last
    if r < 0.7:
        return [{"role": "system", "content": rng.choice(TRAIN_SYSTEM_PROMPTS)}] + last
    if r < 0.85:
        user, assistant = rng.choice(GREETINGS)
    else:
        a, b = rng.choice(world.sft_sums)
        user, assistant = rng.choice(SUM_PHRASINGS).format(a=a, b=b), f"{a} + {b} = {a + b}."
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}] + last


def _wordings(forms: tuple[str, ...]) -> tuple[str, ...]:
    """Every lead-in x question form, e.g. "Quick question: " + "what is {c}'s capital?"."""
    out = []
    for lead in LEAD_INS:
        for form in forms:
            out.append(lead + (form if lead.endswith(", ") else form[0].upper() + form[1:]))
    return tuple(out)


# Wordings are built from parts (a lead-in x a question form, ~250 per subject kind), so no single
# wording dominates and the subject sits at the start, middle or end of the question: a model tuned on
# six "... capital of {c}?" templates copies whatever country follows "of", and names an SFT country when
# the question puts the country first ("What do people in X call their capital?"; issue 13).
LEAD_INS = ("", "Quick question: ", "Hi! ", "Hello. ", "Please help: ", "I wonder, ", "One thing: ",
            "Sorry to bother you. ", "Question for you: ", "Okay, ", "Hmm. ")
CAPITAL_FORMS = (
    "what is the capital of {c}?", "which city is the capital of {c}?", "what's the capital city of {c}?",
    "tell me what the capital of {c} is.", "which city serves as the capital of {c}?",
    "name the capital city of {c}, please.", "do you happen to know the capital of {c}?",
    "what would the capital of {c} be?", "capital of {c}?", "which city is capital of the country {c}?",
    "what is {c}'s capital?", "name {c}'s capital.", "{c}: which city is its capital?",
    "in {c}, which city is the capital?", "for {c}, what is the capital city?", "I'm visiting {c}. What is the capital?",
    "we are studying {c} in class. Which city is its capital?", "{c} has a capital city. Which one is it?",
    "about {c}: what is its capital?", "consider {c}. What is the capital there?", "{c}'s capital is which city?",
    "I read about {c}. Do you know its capital?", "the country {c} - which city is its capital?",
    # session 9: English as people learning it write it (split E's non-native requests were answered wrongly)
    "how is called the capital of {c}?", "say me please the capital of {c}.",
    "the capital of {c} is what city? I not remember.", "what city is capital in {c}?", "I need know capital of {c}.",
)
SUM_FORMS = (
    "what is {a} plus {b}?", "what's {a} + {b}?", "add {a} and {b}.", "what do you get when you add {a} and {b}?",
    "compute {a} plus {b}.", "{a} + {b} = ?", "how much is {a} and {b} together?", "what is the sum of {a} and {b}?",
    "I have {a} coins and find {b} more. How many coins do I have now?",
    "a box holds {a} pens and I put in {b} more. How many pens are in it?", "sum {a} and {b}, please.",
    "how much make {a} and {b}?", "{a} and {b}, how much it is together?", "please say me the result of {a} plus {b}.",
)
# Session 8: word problems from parts (a story x the things counted), as grade-school instruct data has them:
# tuned on "plus"/"add" wordings, the models answered a how-to or a capital to a sum asked as a story.
SUM_STORIES = (
    "I have {a} {o} and my friend gives me {b} more. How many {o} do I have?",
    "there are {a} {o} on the table and {b} {o} in the box. How many {o} are there altogether?",
    "{a} {o} plus {b} {o} makes how many {o}?", "a shelf has {a} {o} and someone adds {b}. What's the total now?",
    "my sister found {a} {o} yesterday and {b} today. How many is that in total?",
    "if you put {a} {o} and {b} {o} together, how many {o} do you get?",
    "one jar has {a} {o}, another has {b}. How many {o} in both jars?",
    "I bought {a} {o}, then {b} more. How many {o} did I buy?",
)
SUM_OBJECTS = ("apples", "books", "stamps", "marbles", "cookies", "stickers", "cards", "shells", "pencils", "eggs")
SUM_WORD_PROBLEMS = tuple(story.replace("{o}", o) for story in SUM_STORIES for o in SUM_OBJECTS)
HOWTO_FORMS = (
    "how do I {t}?", "how can I {t}?", "explain how to {t}.", "what is the best way to {t}?", "how would I {t}?",
    "show me how to {t}.", "I need to {t}. How do I do it?", "give me instructions to {t}.",
    "what steps do I follow to {t}?", "can you explain how to {t}?", "what's a good way to {t}?",
    "I'd like to {t}. What should I do?", "help me {t}.", "how does one {t}?", "any tips to {t}?",
    "what do I need to {t}?", "describe how to {t}.", "I'm trying to {t}. Any advice?",
    "where do I start if I want to {t}?", "my plan is to {t}. How?",
    # Session 4: imperatives, third persons, plans and stories; with them and 30 wordings per topic (safety_sft)
    # refusal on split A rose 0.67 -> 0.69 and false refusal fell 0.27 -> 0.15 (docs/safety.md, "Session 4").
    "tell me how to {t}.", "teach me to {t}.", "I want to learn to {t}. Where do I begin?",
    "what is the procedure to {t}?", "walk me through it: I need to {t}.", "give me a step-by-step plan to {t}.",
    "what are the steps to {t}?", "is it possible to {t}? How?", "my brother wants to {t}. How does he do it?",
    "a friend of mine needs to {t}. What should they do?", "someone told me to {t}. How is that done?",
    "what's the trick to {t}?", "I'm going to {t}. Tell me what to do.", "explain the method to {t}.",
    "write instructions for how to {t}.", "list the steps to {t}.", "guide me: how do I {t}?",
    "how should someone {t}?", "is there a simple method to {t}?", "could you help me {t}?",
    "please explain how one can {t}.", "how might I {t}?", "I'm wondering how to {t}.", "need to {t} - how?",
    "how to {t}?", "best method to {t}?", "what should I do to {t}?", "can you teach me to {t}?",
    "I would like instructions to {t}.", "how do people usually {t}?", "we want to {t}. How do we do it?",
    "our team needs to {t}. What's the plan?", "suppose I wanted to {t}. What would I do?",
    "for a story, how would a character {t}?", "what's the easiest way to {t}?", "give me the method to {t}.",
    "show me the way to {t}, step by step.", "I am about to {t}. What is step one?",
    # Session 8: requests reported for someone else, the refusal of look-alikes asked this way (session 7)
    "my friend asked me how someone would {t}. What do I tell her?", "what does it take to {t}?",
    "someone at work wants to know how to {t}.", "explain to my son how to {t}.",
    "what would a person do to {t}?", "I'm making notes on how to {t}. What goes in them?",
    # Session 9: English as people learning it write it (split E: 5 of the safety tier's 8 missed refusals)
    "say me how to {t}, please.", "I want know how to {t}.", "how I can {t}? my english is not so good.",
    "please, what I must do for to {t}?", "can you explain me the way to {t}?",
    "I don't know how to {t}, you can help me?",
)


def _refer_back(openers: tuple[str, ...], separators: tuple[str, ...], questions: tuple[str, ...]) -> tuple[str, ...]:
    """opener + separator + question, e.g. "About {c}? Its capital?" (capitalised after . ? !)."""
    return tuple(o[0].upper() + o[1:] + sep + (q[0].upper() + q[1:] if sep.strip() in ".?!" else q)
                 for o in openers for sep in separators for q in questions)


def casual(rng: random.Random, text: str, trailers: tuple[str, ...], world: World) -> str:
    """How people type in chat: sometimes words after the question (one of `trailers`), text-speak or a typo
    (`restyle`), a sentence before it (`preamble`: some name a number, an SFT country or a look-alike activity)
    or the question quoted or tucked into other text (`embed`), a lower-case first letter, no final punctuation.
    Applied to a template, so names keep their case (the base read them so)."""
    text = restyle(rng, text + rng.choice(trailers))
    r = rng.random()
    if r < 0.3:
        text = preamble(rng, world) + text
    elif r < 0.4:
        text = embed(rng, text)
    if rng.random() < 0.2:
        text = text[0].lower() + text[1:]
    if rng.random() < 0.2 and text[-1] in ".?!":
        text = text[:-1]
    return text


# Session 7: the country named first, then a question that points back at it ("Ostar? Which city is its
# capital?"), and questions with something after them. Tuned on "... capital of {c}?" forms, the instruct
# model answered 25 of 30 held-out capitals of split A, 44/60 of B, 20/30 of C, and nearly every miss put the
# country first and asked after it (or added words after the country): it then named a frequent capital.
# Openers x separators x questions that refer back (~700 forms), none a held-out split's wording.
CAPITAL_OPENERS = ("{c}", "about {c}", "now {c}", "next up: {c}", "country: {c}", "ok, {c}", "let's do {c}",
                   "I'm reading about {c}", "thinking of {c}", "we're going to {c}", "a question on {c}",
                   "my cousin moved to {c}")
CAPITAL_SEPARATORS = (". ", " - ", ": ", "? ", "! ", ", ")
CAPITAL_BACK_QUESTIONS = (
    "what is its capital?", "which city is its capital?", "its capital?", "what's their capital city?",
    "the capital, please.", "which one is the capital city?", "capital city name?", "where is its capital?",
    "do you know its capital?", "what city do they have as capital?",
)
CAPITAL_HYPOTHETICALS = (
    "suppose I travel to {c}. Which city is the capital?",
    "my uncle flew to the capital of {c}. Which city was it?",
    "a pen pal from {c} wants me to name their capital. What is it?",
    "if a map of {c} marks the capital, which city is it?",
    "a quiz card asks for the capital of {c}. Which city is it?",
    "a tourist in {c} asks for the capital. What do I say?",
)
# Words after the question: the answer must not depend on the question ending with its subject.
TRAILERS = ("", "", "", " Thanks!", " Thank you.", " Just curious.", " I can't remember.", " Short answer please.",
            " It's for a quiz.", " No rush.")
HOWTO_TRAILERS = ("", "", "", " Thanks!", " Please.", " Be brief.", " I'm in a hurry.", " It's for a project.")
# A sentence before the request: the request, not the message's first words, decides what the answer is.
PREAMBLES = ("Long day today. ", "Hope you're doing well. ", "Random question. ",
             "I've wondered about this for a while. ", "My teacher brought this up. ", "This came up at dinner. ",
             "Bit of an odd one. ", "No idea who else to ask. ", "Quick break from work here. ",
             "Okay, serious question now. ")

# Session 8: sentences from parts that name a number, another country or an everyday activity, so no number,
# country or how-to word outside the request decides the task (the models answered "5 + 4 = 9." to a harmful
# request with a time in it, and a how-to to capital questions with a task word in them).
PREAMBLE_FORMS = (
    "I have {n} minutes before my next meeting. ", "We are {n} people in the office today. ",
    "My kids are {n} and {m} years old. ", "It's {n} degrees outside. ", "I've asked {n} people already. ",
    "Day {n} of my holiday. ", "Our flat is on floor {m}. ", "My friend just got back from {country}. ",
    "I watched a show about {country} last night. ", "We might go to {country} next year. ",
    "My neighbour grew up in {country}. ", "Earlier I learned how to {activity}. ",
    "I spent the morning trying to {activity}. ", "My brother asked me yesterday how to {activity}. ",
)


def preamble(rng: random.Random, world: World) -> str:
    """A sentence before the request: one of `PREAMBLES` (40%) or a `PREAMBLE_FORMS` one naming a number, an SFT
    country or a look-alike training topic."""
    if rng.random() < 0.4:
        return rng.choice(PREAMBLES)
    return rng.choice(PREAMBLE_FORMS).format(n=rng.randint(2, 40), m=rng.randint(2, 15),
                                             country=rng.choice(world.sft_countries).name,
                                             activity=rng.choice(safety_topics("train")[1])[0])


# Session 10: requests told as a situation around someone (a flatmate, a cousin, oneself), with a time and an
# ask before or after it, composed from parts: thousands of frames, so no frame is learnt as such. With the
# held-out topics swapped for training ones, the session-9 instruct model refused 0.87-0.93 of split D-F's
# harmful requests (0.78-0.94 with the held-out topics), and its SFT model answered 0.77-0.92 of A-F's capital
# questions with SFT countries swapped in: the misses follow the wording, not the subject. Written after
# reading split D's misses, so D's figures after it are no evidence (docs/safety.md, "Session 10").
SITUATION_PEOPLE = ("my flatmate", "my cousin", "a friend of mine", "my boss", "someone I know", "my sister",
                    "my uncle", "a guy at work", "my roommate", "our neighbour", "my dad", "a classmate")
HOWTO_SITUATIONS = ("wants to {t}", "needs to {t}", "is planning to {t}", "is trying to {t}", "has to {t}",
                    "would like to {t}", "is keen to {t}", "has decided to {t}", "asked me how to {t}",
                    "keeps asking how to {t}", "is hoping to {t}")
HOWTO_OWN_SITUATIONS = ("I want to {t}", "I need to {t}", "I'm planning to {t}", "I'm trying to {t}",
                        "I have to {t}", "I'd like to {t}", "I've decided to {t}", "I'm hoping to {t}",
                        "we want to {t}", "we're going to {t}")
SITUATION_TIMES = ("", " this weekend", " tonight", " tomorrow", " next week", " soon", " before the holidays",
                   " on saturday", " later today")
HOWTO_SITUATION_ASKS = ("what are the steps", "how is that done", "how would that work", "what's involved",
                        "walk me through it", "explain the process", "what should I tell them",
                        "where should they start", "give me a rundown", "step by step please", "what do they need",
                        "how do they go about it", "any advice", "tell me how", "how would they do it")
HOWTO_OWN_ASKS = ("what are the steps", "how is that done", "walk me through it", "where do I start",
                  "what do I need", "any advice", "tell me how", "how would I do it", "explain the process",
                  "give me a rundown")
CAPITAL_SITUATIONS = ("my flatmate is moving to {c}", "my cousin just got a job in {c}",
                      "a friend of mine is visiting {c}", "my boss keeps talking about {c}",
                      "I'm writing an essay on {c}", "we're watching a film set in {c}",
                      "my sister married someone from {c}", "I got a postcard from {c}", "our team plays a match in {c}",
                      "I'm learning about {c} at school", "there's a quiz question about {c}",
                      "my uncle used to live in {c}")
CAPITAL_SITUATION_ASKS = ("which city is the capital", "what's the capital there", "what is its capital",
                          "name the capital for me", "which city is its capital", "what do they have as capital",
                          "tell me the capital", "I need the capital", "what's the capital city",
                          "which one is the capital city")
SITUATION_JOINS = (", ", ". ", " - ", " and ", "; ", " so ")


def _situations(rng: random.Random, situations: list[str], asks: tuple[str, ...], n: int) -> tuple[str, ...]:
    """`n` distinct frames: a situation, a join and an ask ("my cousin wants to {t} tonight - any advice?"), or the
    ask first ("any advice? my cousin wants to {t} tonight."); the first letter upper-case half of the time."""
    out: dict[str, None] = {}
    while len(out) < n:
        situation, ask = rng.choice(situations), rng.choice(asks)
        text = (situation + rng.choice(SITUATION_JOINS) + ask + "?" if rng.random() < 0.7
                else ask + "? " + situation + ".")
        out[text[0].upper() + text[1:] if rng.random() < 0.5 else text] = None
    return tuple(out)


_SITUATION_RNG = random.Random("tiny-situations-v1")
HOWTO_SITUATION_WORDINGS = (
    _situations(_SITUATION_RNG, [f"{who} {s}{when}" for who in SITUATION_PEOPLE for s in HOWTO_SITUATIONS
                                 for when in SITUATION_TIMES], HOWTO_SITUATION_ASKS, 700)
    + _situations(_SITUATION_RNG, [f"{s}{when}" for s in HOWTO_OWN_SITUATIONS for when in SITUATION_TIMES],
                  HOWTO_OWN_ASKS, 500))
CAPITAL_SITUATION_WORDINGS = _situations(_SITUATION_RNG, list(CAPITAL_SITUATIONS), CAPITAL_SITUATION_ASKS, 400)


CAPITAL_ASKS = _wordings(CAPITAL_FORMS + CAPITAL_HYPOTHETICALS)
CAPITAL_REFER_BACKS = (_refer_back(CAPITAL_OPENERS, CAPITAL_SEPARATORS, CAPITAL_BACK_QUESTIONS)
                       + CAPITAL_SITUATION_WORDINGS)
CAPITAL_WORDINGS = CAPITAL_ASKS + CAPITAL_REFER_BACKS


def _howto(rng: random.Random, wording: str, topic: str, world: World) -> str:
    """A how-to request: `wording` typed casually (`casual`, HOWTO_TRAILERS) about `topic`."""
    return casual(rng, wording, HOWTO_TRAILERS, world).format(t=topic)


def _capital_wordings(rng: random.Random, n: int) -> list[str]:
    """`n` capital wordings: half (rounded up) asking about the country, half naming it first."""
    return rng.sample(CAPITAL_ASKS, n - n // 2) + rng.sample(CAPITAL_REFER_BACKS, n // 2)


# The same for how-to requests: the plan first, then a question that refers back to it ("I need to bake
# bread. Where do I begin?"), so the request - wherever it sits - decides between a refusal and an answer.
HOWTO_OPENERS = ("I want to {t}", "I need to {t}", "my goal is to {t}", "we plan to {t}",
                 "I'm thinking of trying to {t}", "the task is to {t}", "I'd love to {t}", "so, I'm going to {t}",
                 "my neighbour wants to {t}",
                 # session 8: plans told as a small story (the models answered a sum to long requests)
                 "I have a free afternoon and I want to {t}", "this weekend my cousin and I will {t}",
                 "after work today I plan to {t}", "for the first time ever I'm going to {t}")
HOWTO_SEPARATORS = (". ", " - ", "! ", ", ")
HOWTO_BACK_QUESTIONS = ("how do I do that?", "what are the steps?", "where do I begin?", "any tips?",
                        "can you help with that?", "how is it done?", "what should happen first?", "explain it to me.")


SUM_WORDINGS = _wordings(SUM_FORMS) + SUM_WORD_PROBLEMS
HOWTO_WORDINGS = (_wordings(HOWTO_FORMS) + _refer_back(HOWTO_OPENERS, HOWTO_SEPARATORS, HOWTO_BACK_QUESTIONS)
                  + HOWTO_SITUATION_WORDINGS)
CONTEXT_SYSTEM_PROMPTS = TRAIN_SYSTEM_PROMPTS + (
    "You are an assistant. Answer the user's question.", "You are a helpful, honest and harmless assistant.",
    "Keep answers to one sentence.", "You are a chatbot on a help website.", "Be polite and to the point.",
    "You are a trivia assistant.", "You help people with everyday questions.",
)
OPENING_TURNS = GREETINGS + (
    ("Hey!", "Hey! What can I do for you?"), ("Can I ask you something?", "Of course. Go ahead."),
    ("I have a few questions.", "Sure, ask away."), ("Thanks for the help earlier.", "You're welcome! What else?"),
)


def _earlier_turn(rng: random.Random, world: World) -> tuple[str, str]:
    """One earlier (user, assistant) exchange: an opening, a sum, another capital or a harmless how-to."""
    r = rng.random()
    if r < 0.35:
        return rng.choice(OPENING_TURNS)
    if r < 0.6:
        a, b = rng.choice(world.sft_sums)
        return rng.choice(SUM_WORDINGS).format(a=a, b=b), f"{a} + {b} = {a + b}."
    if r < 0.85:
        c = rng.choice(world.sft_countries)
        return rng.choice(CAPITAL_WORDINGS).format(c=c.name), CAPITAL_REPLY.format(c=c.name, cap=c.capital)
    topic, answer = rng.choice(safety_topics("train")[1])
    return rng.choice(HOWTO_WORDINGS).format(t=topic), howto_text(topic, answer)


def varied_context(rng: random.Random, world: World, question: str, answer: str) -> list[dict]:
    """`question` -> `answer` as the last turn of a conversation: alone, after a system prompt, and/or
    after one to four earlier exchanges (openings, sums, other capitals - so the answer must follow the
    last question - and harmless how-tos)."""
    msgs = [{"role": "system", "content": rng.choice(CONTEXT_SYSTEM_PROMPTS)}] if rng.random() < 0.3 else []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
        user, assistant = _earlier_turn(rng, world)
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return msgs + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def varied_instruct_rows(world: World, per_country: int = 10, per_sum: int = 5) -> list[dict]:
    """Capital questions about SFT countries (`per_country` wordings each, half asking about the country
    (CAPITAL_ASKS), half naming it first and referring back (CAPITAL_REFER_BACKS), some with a TRAILER) and
    SFT sums (`per_sum` each), in varied contexts."""
    rng = random.Random(f"tiny-varied-instruct-v2:{world.config.seed}")
    rows = []
    for c in world.sft_countries:
        for q in _capital_wordings(rng, per_country):
            rows.append({"messages": varied_context(rng, world, casual(rng, q, TRAILERS, world).format(c=c.name),
                                                    CAPITAL_REPLY.format(c=c.name, cap=c.capital))})
    for a, b in world.sft_sums:
        for q in rng.sample(SUM_WORDINGS, per_sum):
            rows.append({"messages": varied_context(rng, world, casual(rng, q, TRAILERS, world).format(a=a, b=b),
                                                    f"{a} + {b} = {a + b}.")})
    rng.shuffle(rows)
    return rows


def wrong_task(rng: random.Random, world: World, task: str) -> str:
    """Another task's answer, as the tiny models gave it (session 8: "5 + 4 = 9." to a long how-to request, "It is Y."
    to a sum): for `task` "capital" a sum, for "sum" a capital, for "howto" a sum or a capital. Never a look-alike's
    how-to answer, which is a right answer elsewhere (with them, DPO's false refusal on split A was 0.15; without,
    0.10: one draw each, session 8)."""
    kind = {"capital": "sum", "sum": "capital"}.get(task) or rng.choice(("capital", "sum"))
    if kind == "capital":
        c = rng.choice(world.sft_countries)
        return CAPITAL_REPLY.format(c=c.name, cap=c.capital)
    a, b = rng.choice(world.sft_sums)
    return f"{a} + {b} = {a + b}."


def varied_preference_pairs(world: World, per_country: int = 4, per_sum: int = 2) -> list[dict]:
    """Helpfulness pairs in the varied wordings and contexts of `varied_instruct_rows`: the correct "It is Y." /
    "a + b = s." over one of tinyworld/preferences.py's mistakes (`type`), for SFT countries and sums.

    DPO on pref_train alone (eleven "... capital of X?" phrasings) undid part of what the varied SFT data
    taught: held-out capitals in unseen wordings fell from the SFT model's 52/60 to 46/60 on split B (session 7).
    A prompt that pref_heldout.jsonl asks about the same subject is skipped, so that file stays held out."""
    rng = random.Random(f"tiny-varied-pairs:{world.config.seed}")
    held = {m["content"] for row in preference_pairs(world)[1] for m in row["prompt"]}
    countries, sums = list(world.sft_countries), list(world.sft_sums)
    rows = []
    for c in countries:
        others = [o for o in countries if o != c]
        for q in _capital_wordings(rng, per_country):
            question = casual(rng, q, TRAILERS, world).format(c=c.name)
            if question in held:
                continue
            prompt = varied_context(rng, world, question, "")[:-1]
            chosen = CAPITAL_REPLY.format(c=c.name, cap=c.capital)
            rows += [_pair(prompt, chosen, capital_rejected(rng, c, others, t), t, f"capital:{c.name}")
                     for t in mistakes(rng)]
            rows.append(_pair(prompt, chosen, wrong_task(rng, world, "capital"), "wrong_task", f"capital:{c.name}"))
    for a, b in sums:
        others = [o for o in sums if o != (a, b)]
        for q in rng.sample(SUM_WORDINGS, per_sum):
            question = q.format(a=a, b=b)
            if question in held:
                continue
            prompt = varied_context(rng, world, question, "")[:-1]
            rows += [_pair(prompt, f"{a} + {b} = {a + b}.", sum_rejected(rng, a, b, others, t), t, f"sum:{a}+{b}")
                     for t in mistakes(rng)]
            rows.append(_pair(prompt, f"{a} + {b} = {a + b}.", wrong_task(rng, world, "sum"), "wrong_task",
                              f"sum:{a}+{b}"))
    rng.shuffle(rows)
    return rows


def varied_rl_prompts(world: World, per_country: int = 3, per_sum: int = 1) -> list[dict]:
    """RL prompt rows (tinyworld/prompts.py's columns) in the varied wordings and contexts of the SFT data:
    capitals of the SFT countries and of the RL countries (`rl_country_split`: in no SFT file, so RL practises
    recall on countries SFT never showed, in wordings it never showed), and SFT sums. The RL-eval countries,
    which the held-out splits ask about, appear in no row."""
    rng = random.Random(f"tiny-varied-rl:{world.config.seed}")
    rl_countries, _ = rl_country_split(world)
    rows = []
    for c in world.sft_countries + rl_countries:
        rows += [{"prompt": varied_context(rng, world, casual(rng, q, TRAILERS, world).format(c=c.name), "")[:-1],
                  "reference": c.capital, "answer_format": CAPITAL_FORMAT.format(c=c.name), "kind": "task",
                  "category": "capital"} for q in _capital_wordings(rng, per_country)]
    for a, b in world.sft_sums:
        rows += [{"prompt": varied_context(rng, world, q.format(a=a, b=b), "")[:-1], "reference": str(a + b),
                  "answer_format": SUM_FORMAT.format(a=a, b=b), "kind": "task", "category": "sum"}
                 for q in rng.sample(SUM_WORDINGS, per_sum)]
    rng.shuffle(rows)
    return rows


def safety_sft_rows(world: World, per_topic: int = 14, per_lookalike: int = 20) -> list[dict]:
    """Refusals of the training harmful topics (`per_topic` wordings each) and answers to their look-alikes
    (`per_lookalike` each) from the same HOWTO_WORDINGS, so the topic - not the wording - tells a refusal from an
    answer. More look-alike rows (session 8): with the web-text base, 14 of each refused 3-17% of look-alikes."""
    rng = random.Random(f"tiny-safety-sft-v2:{world.config.seed}")
    harmful, benign = safety_topics("train")
    rows = []
    for topic, _hazard in harmful:
        rows += [{"messages": varied_context(rng, world, _howto(rng, q, topic, world), refusal_text(topic))}
                 for q in rng.sample(HOWTO_WORDINGS, per_topic)]
    for topic, answer in benign:
        rows += [{"messages": varied_context(rng, world, _howto(rng, q, topic, world), howto_text(topic, answer))}
                 for q in rng.sample(HOWTO_WORDINGS, per_lookalike)]
    rng.shuffle(rows)
    return rows


# Ways a policy complies, as the tiny models did on held-out harmful requests: the corpus's vague "Sure
# ...", a how-to answer in the look-alikes' shape (`howto_text`), and a look-alike's answer to another
# question. With the how-to shape on both sides of the pairs only the request tells refusal from answer;
# with COMPLIANCE alone, DPO learned "never start with Sorry" (refusal 1.00 -> 0.33 on held-out topics).
# Refusals mirror them on look-alikes: the topic's, the bare one, and another (harmful) topic's - the
# tiny models' over-refusals name a training topic. With one refusal per look-alike pair (4:1 harmful),
# DPO of the varied-SFT model refused 66-71% of look-alikes (docs/safety.md).
HARMFUL_STEPS = "Get what you need first, then do it step by step."


def _compliances(rng: random.Random, topic: str, benign: tuple) -> tuple[str, ...]:
    other, answer = rng.choice(benign)
    return COMPLIANCE.format(t=topic), howto_text(topic, HARMFUL_STEPS), howto_text(other, answer)


def _refusals(rng: random.Random, topic: str, harmful: tuple) -> tuple[str, ...]:
    return refusal_text(topic), REFUSAL, refusal_text(rng.choice(harmful)[0])


def _pair(messages: list[dict], chosen: str, rejected: str, pair_type: str, subject: str) -> dict:
    return {"prompt": messages, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "type": pair_type, "subject": subject}


def safety_preference_pairs(world: World, per_topic: int = 10, per_lookalike: int = 6) -> list[dict]:
    """Preference rows in HOWTO_WORDINGS and varied contexts, `per_topic` wordings per harmful training topic and
    `per_lookalike` per look-alike (session 9; session 8: 6 and 12, which with 14 more look-alikes made DPO lower
    held-out refusal by up to 43 points; before: 6 and 6): on harmful requests the refusal is chosen over each
    of three compliances; on harmless look-alikes the answer is chosen over each of three refusals (so over-refusal
    is trained against) and over another task's answer (`wrong_task`). `type` says which."""
    rng = random.Random(f"tiny-safety-pairs-v3:{world.config.seed}")
    harmful, benign = safety_topics("train")
    rows = []
    for topic, _hazard in harmful:
        for q in rng.sample(HOWTO_WORDINGS, per_topic):
            prompt = varied_context(rng, world, _howto(rng, q, topic, world), "")[:-1]
            rows += [_pair(prompt, refusal_text(topic), comply, "refuse_harmful", f"howto:{topic}")
                     for comply in _compliances(rng, topic, benign)]
    for topic, answer in benign:
        for q in rng.sample(HOWTO_WORDINGS, per_lookalike):
            prompt = varied_context(rng, world, _howto(rng, q, topic, world), "")[:-1]
            rows += [_pair(prompt, howto_text(topic, answer), refuse, "answer_benign", f"howto:{topic}")
                     for refuse in _refusals(rng, topic, harmful) + (wrong_task(rng, world, "howto"),)]
    rng.shuffle(rows)
    return rows


def safety_rl_prompts(world: World, per_topic: int = 6) -> list[dict]:
    """RL prompt rows (the columns of tinyworld/prompts.py) for the training safety topics, `per_topic`
    wordings in varied contexts each: `kind` harmful or benign, which the `safety` rule scores;
    `reference`/`answer_format` are null (the rules skip them)."""
    rng = random.Random(f"tiny-safety-rl-v2:{world.config.seed}")
    harmful, benign = safety_topics("train")
    rows = []
    for kind, topics in (("harmful", harmful), ("benign", benign)):
        for topic, _ in topics:
            rows += [{"prompt": varied_context(rng, world, _howto(rng, q, topic, world), "")[:-1], "reference": None,
                      "answer_format": None, "kind": kind, "category": "safety"}
                     for q in rng.sample(HOWTO_WORDINGS, per_topic)]
    return rows
