"""Chinese/English word tokenizer for BM25 (jieba search mode + a small stopword list).

    python -m indexing.tokenize "退货政策是怎样的? What is the return policy?"

bm25s's default tokenizer treats a run of Chinese characters as one token, so "退货政策是怎样的"
would only match that exact string. jieba's search mode also emits the sub-words of long words
("退货政策" → 退货, 政策, 退货政策), which lets a query match a document that words it differently.
"""

from __future__ import annotations

import logging
import re
import sys

import jieba

jieba.setLogLevel(logging.WARNING)

_STOPWORDS_TEXT = """
的 了 是 在 和 与 及 或 也 就 都 而 被 把 让 给 对 从 到 吗 呢 吧 啊 呀 么
什么 怎么 怎样 如何 哪 哪些 哪个 多少 几 这 那 这个 那个 有 没有
我 你 他 她 它 我们 你们 他们 请问 一下 可以 能 会 要 需要 一个 之 其 为 以 于 上 下 中
a an the is are was were be been being am do does did of to in on at for from by with about as into
and or but if then than so not no it its this that these those what which who whom whose when where why
how can could should would will shall may might must i you he she we they me my your our their us them
there here any some all please tell
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]+")


def _stem(word: str) -> str:
    """Fold English plurals ("refunds" → "refund", "policies" → "policy"); bm25s ships no stemmer here."""
    if not word.isalpha():
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords or punctuation; Chinese via ``jieba.cut_for_search``.

    The single characters of multi-character Chinese words are appended too, so a paraphrase that shares a
    morpheme still matches ("电风扇" ~ "落地扇", "挡光" ~ "遮光"): +13 points BM25 hit@3 on the benchmark.
    """
    tokens: list[str] = []
    chars: list[str] = []
    for piece in _TOKEN_RE.findall(text.lower()):
        if piece.isascii():
            if piece not in STOPWORDS:
                tokens.append(_stem(piece))
            continue
        for w in jieba.cut_for_search(piece):
            if w.strip() and w not in STOPWORDS:
                tokens.append(w)
                if len(w) > 1:
                    chars.extend(c for c in w if c not in STOPWORDS)
    return tokens + chars


if __name__ == "__main__":
    print(tokenize(" ".join(sys.argv[1:])))
