"""Text rules shared by every package: the one word tokenizer (Chinese + English), the one stopword list, the
language of a question, and the one list of phrases that mean "I don't know". Pure, no models.

    python -m training.text "退货政策是怎样的? What is the return policy?"

Two views of the same tokenizer:
- :func:`words` — content words (jieba's precise mode for Chinese runs, Latin words and numbers, lower-cased,
  plural-folded, stopwords dropped). The router compares questions with these (``question_similarity``) and
  checks that a chunk covers a question (``lexical_coverage``); RAFT uses that test to find a golden chunk.
- :func:`index_terms` — what BM25 indexes: jieba's search mode (also the sub-words of long words:
  "退货政策" → 退货, 政策, 退货政策) plus the single characters of multi-character Chinese words, so a
  paraphrase sharing a morpheme still matches ("电风扇" ~ "落地扇": +13 points BM25 hit@3 on the retrieval
  benchmark).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal

Language = Literal["zh", "en"]

# Question words, particles, pronouns: they carry no topic, so they must not make two different questions
# ("老大是谁" / "老二是谁") look alike, nor make an off-topic chunk look relevant.
_STOPWORDS_TEXT = """
的 了 是 在 和 与 及 或 也 就 都 而 被 把 让 给 对 从 到 吗 呢 吧 啊 呀 么
什么 怎么 怎样 如何 为什么 哪 哪个 哪些 哪里 哪儿 谁 几 几个 多少 多少钱 钱 什么时候 这 那 这个 那个 有 没有
我 你 他 她 它 我们 你们 他们 请 请问 告诉 一下 可以 能 会 要 需要 一个 之 其 为 以 于 现在 目前 还
a an the is are was were be been being am do does did of to in on at for from by with about as into
and or but if then than so not no it its this that these those what which who whom whose when where why
how much many can could should would will shall may might must i you he she we they me my your our their
us them his her there here any some all please tell
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_SPACE = re.compile(r"\s+")
# Numbers (prices, phone numbers, dates, versions) and Latin-letter tokens (names, codes, e-mail, URLs).
_VALUE = re.compile(r"\d+(?:[.:/-]\d+)*|[a-z][a-z0-9]*(?:[._@-][a-z0-9]+)*")

# ── abstention: the one list ──────────────────────────────────────────────────────────────────────────────
ABSTAIN_TEXT: dict[Language, str] = {"zh": "不知道。", "en": "I don't know."}
# Phrases that mean "I can't answer this". Each ABSTAIN_TEXT must contain one (a test checks it).
ABSTENTION_PHRASES: tuple[str, ...] = (
    "不知道",
    "不清楚",
    "无法回答",
    "无法确定",
    "没有相关信息",
    "没有找到相关",
    "资料中没有",
    "i don't know",
    "i do not know",
    "i'm not sure",
    "cannot answer",
    "can't answer",
    "no information",
    "not enough information",
)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _stem(word: str) -> str:
    """Fold English plurals ("refunds" → "refund", "policies" → "policy")."""
    if not word.isalpha():
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _pieces(text: str) -> Iterable[str]:
    return _TOKEN_RE.findall(text.lower())


def all_words(text: str) -> list[str]:
    """Every word token, stopwords included (precise mode for Chinese)."""
    out: list[str] = []
    for piece in _pieces(text):
        if piece.isascii():
            out.append(_stem(piece))
        else:
            out.extend(w for w in _jieba().lcut(piece) if w.strip())
    return out


def words(text: str) -> list[str]:
    """Content words; falls back to every word when a text is nothing but stopwords."""
    toks = all_words(text)
    return [t for t in toks if t not in STOPWORDS] or toks


def index_terms(text: str) -> list[str]:
    """BM25 terms: search-mode words minus stopwords, then the characters of multi-character Chinese words."""
    terms: list[str] = []
    chars: list[str] = []
    for piece in _pieces(text):
        if piece.isascii():
            if piece not in STOPWORDS:
                terms.append(_stem(piece))
            continue
        for w in _jieba().cut_for_search(piece):
            if w.strip() and w not in STOPWORDS:
                terms.append(w)
                if len(w) > 1:
                    chars.extend(c for c in w if c not in STOPWORDS)
    return terms + chars


@lru_cache(maxsize=8192)
def word_set(text: str) -> frozenset[str]:
    """Cached: an adapter's training questions are compared with every request."""
    return frozenset(words(text))


def lexical_coverage(question: str, text: str) -> float:
    """Share of the question's content words found in ``text`` (substring match: Chinese has no spaces)."""
    ws = word_set(question)
    if not ws:
        return 0.0
    low = text.lower()
    return sum(1 for w in ws if w in low) / len(ws)


def question_similarity(a: str, b: str, weight: Callable[[str], float] | None = None) -> float:
    """Dice coefficient of two questions' content-word sets (1.0 = same content words), each word counted
    with ``weight`` (default 1)."""
    sa, sb = word_set(a), word_set(b)
    if not sa or not sb:
        return 0.0
    w = weight or (lambda _: 1.0)
    return 2 * sum(w(x) for x in sa & sb) / (sum(w(x) for x in sa) + sum(w(x) for x in sb))


def best_match(question: str, known: Sequence[str]) -> tuple[float, str | None]:
    """The known question most similar to ``question``, with its score: Dice over content words, each
    weighted by its inverse document frequency among ``known`` (1 + ln((N+1)/(df+1)), as scikit-learn's
    smoothed idf). Words every training question shares (the company's name) count little; a word none of
    them has counts most: "流明科技的股票代码是多少?" is not "流明科技的创始人是谁?" (0.48 among lumen's
    16 training questions; plain Dice 0.67)."""
    df = _document_frequency(tuple(known))
    n = len(known)

    def weight(word: str) -> float:
        return 1.0 + math.log((n + 1) / (df.get(word, 0) + 1))

    best, best_q = 0.0, None
    for k in known:
        s = question_similarity(question, k, weight)
        if s > best:
            best, best_q = s, k
    return best, best_q


@lru_cache(maxsize=64)
def _document_frequency(known: tuple[str, ...]) -> dict[str, int]:
    """How many of the questions hold each word (cached: one adapter's questions, every request)."""
    return dict(Counter(w for k in known for w in word_set(k)))


# ── scope: the place or period a question narrows itself to ─────────────────────────────────────────────
# Periods other than the documents' present: what a source says is about now, not next year or last month.
# Matched in the raw text, since jieba cuts "流明明年" as 流 / 明明 / 年.
_PERIODS = (
    *("明年", "去年", "前年", "后年", "来年", "往年", "上半年", "下半年", "明天", "昨天", "前天", "后天"),
    *("上个月", "下个月", "上月", "下月", "上周", "下周", "上季度", "下季度", "上个季度", "下个季度"),
    *("将来", "未来"),
    *("next year", "last year", "next month", "last month", "next week", "last week", "next quarter"),
    *("last quarter", "tomorrow", "yesterday", "in the future"),
)
# Words jieba's dictionary tags as places that name no one place ("哪座城市", "上门安装", "东西").
_NOT_PLACES = frozenset(
    {"城市", "地方", "地区", "东西", "上门", "国家", "全国", "各地", "当地", "本地", "外地", "海外", "国外"}
    | {"国内", "网上", "线上", "线下", "南北", "东南", "西南", "东北", "西北", "爱国", "英雄", "太阳", "哥哥"}
)


@lru_cache(maxsize=4096)
def scope(text: str) -> tuple[str, ...]:
    """The places and periods ``text`` narrows itself to: "云雀咖啡在北京有几家门店?" → ("北京",),
    "流明明年会推出什么新产品?" → ("明年",). An answer to such a question must come from a source that names
    the same place or period: the company's store count is not Beijing's, today's products are not next
    year's. Places are what jieba tags ``ns`` (two characters or more, minus generic ones); periods come
    from a fixed list of periods other than now."""
    import jieba.posseg

    _jieba()
    low = text.lower()
    periods = [p for p in _PERIODS if p in low]
    places = [
        w
        for piece in _pieces(text)
        if not piece.isascii()
        for w, flag in jieba.posseg.cut(piece)
        if flag == "ns" and len(w) > 1 and w not in _NOT_PLACES
    ]
    return tuple(dict.fromkeys([*periods, *places]))


def people(text: str) -> tuple[str, ...]:
    """The people ``text`` names, as jieba tags them (``nr``): "由许知远和唐晓芸创立" → ("唐晓芸",) — jieba
    misses some names, so this tells that a text names someone, not whom it names."""
    import jieba.posseg

    _jieba()
    found = [
        w for piece in _pieces(text) if not piece.isascii() for w, f in jieba.posseg.cut(piece) if f == "nr"
    ]
    return tuple(dict.fromkeys(found))


def beyond(question: str, trained: str) -> list[str]:
    """What ``question`` asks about that the training question it resembles (``trained``) does not: its
    numbers and codes ("清泉C3净水器还有多少库存?" is not "流明净水器的保修期是多久?") and the places and
    periods it narrows itself to ("云雀咖啡在北京有几家门店?" is not "云雀咖啡有多少家门店?")."""
    low = trained.lower()
    codes = [v for v in values(question) if any(c.isdigit() for c in v)]
    return [w for w in dict.fromkeys([*codes, *(w.lower() for w in scope(question))]) if w not in low]


def values(text: str) -> list[str]:
    """The facts an answer can get exactly right or wrong: numbers and Latin-letter tokens, lower-cased, in
    order (no duplicates): "客服电话是400-826-5188" → ["400-826-5188"]."""
    return list(dict.fromkeys(_VALUE.findall(text.lower())))


def fact_values(text: str) -> list[str]:
    """The values the answer checks compare (``service.checks``): :func:`values`, except that in an English
    text only tokens that are not plain words count — numbers, codes ("x5"), e-mail addresses, URLs; "star"
    and "lamp" are words there, compared as words. A Chinese text's Latin tokens are names and codes."""
    found = values(text)
    return [v for v in found if not v.isalpha()] if detect_language(text) == "en" else found


# A numeral and a measure word ("一年", "几本", "每次"): how much of something, not what a question is on.
_QUANTITY = re.compile(r"[一二两三四五六七八九十百千万几半每]+[年月日天周次个家本位名种件台元块分点岁]")


def is_quantity(word: str) -> bool:
    return _QUANTITY.fullmatch(word) is not None


def detect_language(text: str) -> Language:
    """ "zh" when ≥ 30% of the letters are CJK ideographs, else "en" (the two languages we answer in)."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0:
        return "en"
    return "zh" if cjk / (cjk + latin) >= 0.3 else "en"


def abstain_text(question: str) -> str:
    """The fixed "I don't know" in the question's language."""
    return ABSTAIN_TEXT[detect_language(question)]


def normalize(text: str) -> str:
    """Lower-case, unify full-width/curly apostrophes, collapse runs of whitespace."""
    return _SPACE.sub(" ", text.replace("’", "'").replace("\u3000", " ")).strip().lower()


def is_abstention(answer: str) -> bool:
    """True when an answer says it cannot answer (either language)."""
    text = normalize(answer)
    return any(p in text for p in ABSTENTION_PHRASES)


if __name__ == "__main__":
    sample = " ".join(sys.argv[1:])
    print("words:      ", words(sample))
    print("scope:      ", list(scope(sample)))
    print("index_terms:", index_terms(sample))
    print("language:   ", detect_language(sample))
