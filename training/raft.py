"""Retrieval-aware training examples (RAFT, arXiv 2403.10131) + a synthetic READING curriculum.

A small model only learns to *read* a context from examples whose answers exist nowhere but in that context
(see training/calibration-notes.md): so besides RAFT examples built from the user's QA pairs and knowledge
base (question + golden chunk + fictional distractors → answer citing the chunk; question + distractors only →
abstain), this generates hundreds of made-up documents — price/stock tables, promotion lists, delivery prose,
team contacts; Chinese and English — with random values, questions whose answers sit in one of them, and
unanswerable questions. Every example is a chat in EXACTLY the inference prompt format (training.prompting).
Deterministic for a given seed. Retrieval comes in as a plain function (``search``: question → hits with
``.text``, ``.title``, ``.heading``), built by the caller from a knowledge base: training never imports one.

    python -m training.raft 5     # prints five generated reading examples
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from training.prompting import ContextSource, render_context_prompt, table_row_text
from training.text import ABSTAIN_TEXT, Language, detect_language, lexical_coverage

Chat = list[dict[str, Any]]


class HitLike(Protocol):
    """What RAFT needs from a retrieved chunk (``indexing.kb.Hit`` has it)."""

    text: str
    title: str | None
    heading: str | None


Search = Callable[[str], list[HitLike]]

ZH_ADJ = [
    "星光",
    "云朵",
    "竹影",
    "北极",
    "晨曦",
    "青石",
    "橙光",
    "银河",
    "松风",
    "海盐",
    "琥珀",
    "雪松",
    "暖阳",
    "蓝鲸",
]
ZH_NOUN = [
    "台灯",
    "枕头",
    "毛巾",
    "水杯",
    "背包",
    "雨伞",
    "键盘",
    "耳机",
    "茶壶",
    "围巾",
    "拖鞋",
    "闹钟",
    "花瓶",
]
EN_ADJ = [
    "Aurora",
    "Cedar",
    "Nimbus",
    "Pebble",
    "Harbor",
    "Maple",
    "Comet",
    "Willow",
    "Juniper",
    "Sierra",
    "Tundra",
    "Basil",
    "Quartz",
    "Saffron",
]
EN_NOUN = [
    "lamp",
    "pillow",
    "towel",
    "mug",
    "backpack",
    "umbrella",
    "keyboard",
    "headphones",
    "teapot",
    "scarf",
    "slippers",
    "clock",
    "vase",
]
ZH_CITY = ["杭州", "成都", "西安", "青岛", "厦门", "昆明", "南京", "长沙", "大连", "苏州", "武汉", "沈阳"]
EN_CITY = ["Lisbon", "Oslo", "Quito", "Perth", "Dakar", "Leeds", "Tartu", "Cusco", "Malmo", "Bergen", "Split"]
ZH_TEAM = ["售后组", "仓储组", "设计组", "采购组", "客服组", "物流组", "财务组", "市场组"]
EN_TEAM = [
    "returns desk",
    "warehouse team",
    "design team",
    "purchasing team",
    "support desk",
    "logistics team",
]
ZH_PERSON = ["林晓", "周航", "陈默", "王珂", "赵一然", "孙悦", "吴桐", "郑乔", "冯远", "何畅"]
EN_PERSON = ["Mira Holt", "Ivan Reyes", "Tessa Lind", "Omar Vance", "Lena Park", "Hugo Brandt", "Nia Okafor"]


@dataclass(frozen=True)
class Fact:
    """One answerable question about a generated document."""

    question: str
    answer: str


@dataclass(frozen=True)
class Doc:
    source: ContextSource
    facts: list[Fact]
    entities: list[str]  # names the document talks about (to build unanswerable questions)


def _names(rng: random.Random, lang: Language, n: int) -> list[str]:
    adj, noun = (ZH_ADJ, ZH_NOUN) if lang == "zh" else (EN_ADJ, EN_NOUN)
    pool = [f"{a}{b}" if lang == "zh" else f"{a} {b}" for a in adj for b in noun]
    return rng.sample(pool, n)


def price_table(rng: random.Random, lang: Language, names: list[str], _: set[str]) -> Doc:
    # Rows as ``column: value`` lines — the form retrieval indexes table rows in and the context shows them.
    rows = [(n, rng.randrange(9, 999), rng.randrange(0, 500)) for n in names]
    if lang == "zh":
        text = "\n".join(table_row_text(["商品", "价格", "库存"], [n, f"{p}元", str(s)]) for n, p, s in rows)
        facts = [
            f
            for n, p, s in rows
            for f in (
                Fact(f"{n}多少钱?", f"{n}的价格是{p}元。"),
                Fact(f"{n}还有多少库存?", f"{n}的库存是{s}件。"),
            )
        ]
        title = "价格表"
    else:
        header = ["Product", "Price", "Stock"]
        text = "\n".join(table_row_text(header, [n, f"{p} yuan", str(s)]) for n, p, s in rows)
        facts = [
            f
            for n, p, s in rows
            for f in (
                Fact(f"How much is the {n}?", f"The {n} costs {p} yuan."),
                Fact(f"How many {n} units are in stock?", f"There are {s} {n} units in stock."),
            )
        ]
        title = "Price list"
    return Doc(ContextSource(text, title=title), facts, names)


def promotion_list(rng: random.Random, lang: Language, names: list[str], _: set[str]) -> Doc:
    rows = [
        (n, rng.choice([5, 10, 15, 20, 25, 30, 40]), rng.randrange(1, 13), rng.randrange(1, 29))
        for n in names
    ]
    if lang == "zh":
        text = "\n".join(
            f"- {n}：打{10 - d // 10 if d % 10 == 0 else round(10 - d / 10, 1)}折（立减{d}%），"
            f"活动截止{m}月{day}日"
            for n, d, m, day in rows
        )
        facts = [
            f
            for n, d, m, day in rows
            for f in (
                Fact(f"{n}的促销什么时候结束?", f"{n}的活动截止{m}月{day}日。"),
                Fact(f"{n}现在优惠多少?", f"{n}立减{d}%。"),
            )
        ]
        title = "促销活动"
    else:
        months = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ]
        text = "\n".join(f"- {n}: {d}% off until {months[m - 1]} {day}" for n, d, m, day in rows)
        facts = [
            f
            for n, d, m, day in rows
            for f in (
                Fact(
                    f"When does the {n} promotion end?", f"The {n} promotion ends on {months[m - 1]} {day}."
                ),
                Fact(f"What is the discount on the {n}?", f"The {n} is {d}% off."),
            )
        ]
        title = "Promotions"
    return Doc(ContextSource(text, title=title), facts, names)


def delivery_prose(rng: random.Random, lang: Language, _: list[str], exclude: set[str]) -> Doc:
    cities = _fresh(rng, ZH_CITY if lang == "zh" else EN_CITY, exclude)
    days = [rng.randrange(1, 9) for _c in cities]
    if lang == "zh":
        text = (
            "".join(f"发往{c}的订单通常{d}天内送达。" for c, d in zip(cities, days, strict=True))
            + f"其他地区需要{max(days) + rng.randrange(1, 4)}天左右。"
        )
        facts = [
            Fact(f"发往{c}的订单几天送达?", f"发往{c}的订单{d}天内送达。")
            for c, d in zip(cities, days, strict=True)
        ]
        title = "配送说明"
    else:
        text = " ".join(
            f"Orders to {c} usually arrive within {d} days." for c, d in zip(cities, days, strict=True)
        )
        facts = [
            Fact(f"How long does delivery to {c} take?", f"Orders to {c} arrive within {d} days.")
            for c, d in zip(cities, days, strict=True)
        ]
        title = "Delivery"
    return Doc(ContextSource(text, title=title), facts, cities)


def team_contacts(rng: random.Random, lang: Language, _: list[str], exclude: set[str]) -> Doc:
    teams = _fresh(rng, ZH_TEAM if lang == "zh" else EN_TEAM, exclude)
    people = rng.sample(ZH_PERSON if lang == "zh" else EN_PERSON, len(teams))
    exts = [rng.randrange(100, 999) for _t in teams]
    rows = list(zip(teams, people, exts, strict=True))
    if lang == "zh":
        text = "\n".join(f"{t}负责人：{p}，分机{e}。" for t, p, e in rows)
        facts = [
            f
            for t, p, e in rows
            for f in (
                Fact(f"{t}的负责人是谁?", f"{t}的负责人是{p}。"),
                Fact(f"{t}的分机号是多少?", f"{t}的分机是{e}。"),
            )
        ]
        title = "通讯录"
    else:
        text = "\n".join(f"{t.capitalize()}: lead {p}, extension {e}." for t, p, e in rows)
        facts = [
            f
            for t, p, e in rows
            for f in (
                Fact(f"Who leads the {t}?", f"The {t} is led by {p}."),
                Fact(f"What is the extension of the {t}?", f"The {t} is on extension {e}."),
            )
        ]
        title = "Contacts"
    return Doc(ContextSource(text, title=title), facts, teams)


SHAPES: list[Callable[[random.Random, Language, list[str], set[str]], Doc]] = [
    price_table,
    promotion_list,
    delivery_prose,
    team_contacts,
]


class _Exhausted(Exception):
    pass


def _fresh(rng: random.Random, pool: list[str], exclude: set[str], k: int = 3) -> list[str]:
    """Up to ``k`` entities no other document in the example mentions (so every question has ONE answer)."""
    free = [x for x in pool if x not in exclude]
    if len(free) < 2:
        raise _Exhausted
    return rng.sample(free, min(k, len(free)))


def _doc(rng: random.Random, lang: Language, shape: Callable[..., Doc], exclude: set[str]) -> Doc:
    names = [n for n in _names(rng, lang, 8) if n not in exclude][: rng.randrange(2, 5)]
    try:
        return shape(rng, lang, names, exclude)
    except _Exhausted:  # every team/city is taken by the other documents: a table never runs out
        return price_table(rng, lang, names, exclude)


def _unanswerable(rng: random.Random, lang: Language, docs: list[Doc]) -> str:
    """A question in the same shape as the documents, about something none of them mentions."""
    known = {e for d in docs for e in d.entities}
    cities = [c for c in (ZH_CITY if lang == "zh" else EN_CITY) if c not in known]
    if rng.random() < 0.5 or not cities:
        name = next(n for n in _names(rng, lang, 20) if n not in known)
        return f"{name}多少钱?" if lang == "zh" else f"How much is the {name}?"
    city = rng.choice(cities)
    return f"发往{city}的订单几天送达?" if lang == "zh" else f"How long does delivery to {city} take?"


def chat(question: str, sources: list[ContextSource], answer: str) -> Chat:
    return [
        {"role": "user", "content": render_context_prompt(question, sources)},
        {"role": "assistant", "content": answer},
    ]


def cite(answer: str, n: int) -> str:
    return f"{answer}[{n}]" if detect_language(answer) == "zh" else f"{answer} [{n}]"


def reading_example(rng: random.Random, *, unanswerable: bool, lang: Language | None = None) -> Chat:
    """One synthetic example: 1–3 made-up documents; the answer is in exactly one of them, or in none."""
    lang = lang or rng.choice(["zh", "en"])
    n_docs = rng.randrange(1, 4)
    docs: list[Doc] = []
    for _ in range(n_docs):
        docs.append(_doc(rng, lang, rng.choice(SHAPES), {e for d in docs for e in d.entities}))
    sources = [d.source for d in docs]
    if unanswerable:
        return chat(_unanswerable(rng, lang, docs), sources, ABSTAIN_TEXT[lang])
    golden = rng.randrange(n_docs)
    fact = rng.choice(docs[golden].facts)
    return chat(fact.question, sources, cite(fact.answer, golden + 1))


def made_up_questions(n: int, *, lang: Language, seed: int) -> list[str]:
    """``n`` questions in the curriculum's shapes about made-up products, cities and teams: nothing anyone
    trained on, so an adapter's answer to them is invented (the memorisation check calibrates on them)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        doc = _doc(rng, lang, rng.choice(SHAPES), set())
        out += [f.question for f in doc.facts][: n - len(out)]
    return out


def reading_curriculum(n: int, *, seed: int, unanswerable_share: float = 0.2) -> list[Chat]:
    rng = random.Random(seed)
    return [reading_example(rng, unanswerable=rng.random() < unanswerable_share) for _ in range(n)]


def _qa_pairs(examples: list[Chat]) -> list[tuple[str, str]]:
    pairs = []
    for messages in examples:
        for i, m in enumerate(messages[:-1]):
            nxt = messages[i + 1]
            if m["role"] == "user" and nxt["role"] == "assistant":
                pairs.append((str(m["content"]), str(nxt["content"])))
    return pairs


NEW_NAMES = ["TOM", "KEN", "LUCY", "AMY", "BEN", "LEO", "MAX", "ZOE", "NINA", "OSCAR", "RUBY", "IVY"]
DEFAULT_READING_WITH_KB = 64
RAFT_UPDATES = 2  # changed-fact updates per QA pair (a job starting from training/reader.py needs one)
UPDATE_TITLE: dict[Language, str] = {"zh": "最新信息", "en": "Latest update"}
_NUMBER = re.compile(r"\d+")
_LATIN_NAME = re.compile(r"(?<![A-Za-z])[A-Za-z]{2,}(?![A-Za-z])")  # not \b: CJK counts as a word char


def counterfactual(answer: str, rng: random.Random) -> str | None:
    """The answer with its distinctive values changed (numbers → other numbers, Latin names → other names), or
    None when nothing can be changed safely. Trains "the document wins over what you memorised"."""
    changed = _NUMBER.sub(lambda m: str(int(m.group()) + rng.randrange(1, 9)), answer)

    def rename(m: re.Match[str]) -> str:
        word = m.group()
        new = rng.choice([n for n in NEW_NAMES if n.lower() != word.lower()])
        return new if word.isupper() else new.capitalize() if word[0].isupper() else new.lower()

    changed = _LATIN_NAME.sub(rename, changed)
    return changed if changed != answer else None


def _with_golden(
    rng: random.Random, question: str, golden: ContextSource, answer: str, lang: Language
) -> Chat:
    distractors = [_doc(rng, lang, rng.choice(SHAPES), set()).source for _ in range(rng.randrange(1, 3))]
    pos = rng.randrange(len(distractors) + 1)
    sources = [*distractors[:pos], golden, *distractors[pos:]]
    return chat(question, sources, cite(answer.rstrip(), pos + 1))


def raft_examples(
    pairs: list[tuple[str, str]], search: Search | None, *, seed: int, updates: int = RAFT_UPDATES
) -> list[Chat]:
    """RAFT from the user's QA pairs, always among FICTIONAL distractors (real documents never are: the model
    must not learn to ignore the very documents it will need when they change):

    - the golden KB chunk holding the answer (when a KB is given) → the answer citing it;
    - ``updates`` counterfactual "latest update" documents stating a CHANGED answer → the changed answer,
      cited: fresh documents beat what the adapter memorised (the router only attaches context to a question
      the adapter knows when a newer document exists, so this is exactly the case it meets).

    No "known question + irrelevant context → I don't know" examples: they teach the model to refuse known
    questions whenever context is present (see training/calibration-notes.md); the curriculum's unanswerable
    examples teach abstaining instead."""
    rng = random.Random(seed)
    out: list[Chat] = []
    for question, answer in pairs:
        lang = detect_language(question)
        if search is not None:
            hit = next((h for h in search(question) if lexical_coverage(answer, h.text) >= 0.6), None)
            if hit is not None:
                golden = ContextSource(hit.text, hit.title, hit.heading)
                out.append(_with_golden(rng, question, golden, answer, lang))
        for _ in range(updates):
            changed = counterfactual(answer, rng)
            if changed is None:
                break
            out.append(
                _with_golden(rng, question, ContextSource(changed, title=UPDATE_TITLE[lang]), changed, lang)
            )
    return out


USER_REPEATS = 2


def build_retrieval_examples(
    examples: list[Chat], *, search: Search | None, n_reading: int, seed: int, updates: int = RAFT_UPDATES
) -> list[Chat]:
    """The COMPLETE training set: ``examples`` (``USER_REPEATS`` times), then RAFT chats built from
    them (with golden chunks from ``search`` when given), then ``n_reading`` synthetic reading examples.
    With a search and ``n_reading == 0`` a default of 64 reading examples is used (24 already taught the
    270M model to read; see eval/examples/shop)."""
    if search is not None:
        n_reading = n_reading or DEFAULT_READING_WITH_KB
    extra = []
    if search is not None or n_reading:
        extra = raft_examples(_qa_pairs(examples), search, seed=seed, updates=updates)
    extra += reading_curriculum(n_reading, seed=seed + 1)
    if not extra:
        return list(examples)
    # Mixed into ~4x as many context examples, the user's own pairs would be seen half as often as in a
    # QA-only run, and the 270M model then swaps near-identical facts (measured on the family data, 6 epochs:
    # 7/9 seen, "老二是哥哥JIM。"). Repeating them keeps their exposure.
    return [*examples * USER_REPEATS, *extra]


if __name__ == "__main__":
    for ex in reading_curriculum(int(sys.argv[1]) if len(sys.argv) > 1 else 3, seed=0):
        print(ex[0]["content"], "\n→", ex[1]["content"], "\n" + "─" * 60)
