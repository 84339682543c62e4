"""Checks an answer before anyone sees it — PURE: no model, no index. The routed model uses them to decide
whether to send an answer, try the documents instead, or say it does not know (``service.answering``).

- :func:`confidence` — how sure the model was: the geometric mean of its answer tokens' probabilities (from
  the engine's logprobs). A memorised answer is ~1.0; a paraphrase the adapter half-knows or an invented fact
  is lower (measured in eval/RESULTS.md).
- :func:`support` — whether the sources say what the answer says: every value the answer adds to the question
  (numbers, codes, names written in Latin letters; else its content words) must appear together in ONE
  source sentence (a table row counts as one), and that sentence must be about the question: it has the
  question's own numbers/codes and its most specific content word (the one fewest source sentences contain:
  "晨露" rather than "净水器"), so a value copied from the wrong row or from a sentence on another topic
  fails: "极光X5的库存是230台" is not supported by "晨露R1 | 230台" — the 230 is there, the row is not. A
  sentence in other words ("全公司共有320名员工" for "流明一共雇了多少人?") is about the question when the
  caller's ``related`` says so (by meaning, one of the closest: ``service.semantic.SentenceRelevance``;
  asked of the texts as written and without the subject words below).
  Values (``training.text.fact_values``: in English only numbers and codes) match whole ("3" is not in
  "39元"); a quantity ("一年", ``training.text.is_quantity``) is no topic. A word in most of
  the adapter's training questions (:func:`subject_words`: the company's name, "流明") says what every
  question is about, not this one's topic, so it (and its characters) does not make a sentence about the
  question. A question narrowed to
  a place or a period (``training.text.scope``: "在北京", "明年") is answered only by a sentence that names
  it: the company's store count is not Beijing's.
- :func:`confirmed` — a candidate paraphrase's trained answer is sent when the adapter, asked the user's
  way, says the same (:func:`agree`), or says nothing new and a sentence about the question states it —
  never when it counts or names something else than the question asks about (``service.things``).
- :func:`has_form` — a question asking for an e-mail address, a web address, a phone number, a time of day,
  an amount of money, a discount, a number of hours, a length of time or a code needs an answer that holds
  one, and one asking which things ("哪些") an answer naming them, not a number (whatever the sources say, a
  warranty period does not answer "发邮件发到哪里?", nor the ride limit "几折?");
  :func:`form_line` finds the one source line that holds it (or a count, or a name) for whom or what the
  question asks, and :func:`unnamed_owner` refuses an address, number or code read from a line that does not
  name whose it is.

    from service.checks import support
    support("星光台灯多少钱?", "星光台灯的价格是199元。[1]", ["商品: 星光台灯 | 价格: 199元 | 库存: 12"]).ok
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from service.things import MEASURE, asks_other, counts_other
from training.generation import mean_probability
from training.prompting import strip_markers
from training.text import fact_values, is_abstention, is_quantity, scope, words

# A sentence of a source: split after Chinese/English terminators and at line breaks (a table row is a line).
_SENTENCE = re.compile(r"[^。!?;！？；\n]+[。!?;！？；]?")
# Values this long (phone numbers, e-mail addresses, URLs) identify their fact wherever they appear.
DISTINCTIVE_VALUE = 7
# Words an answer adds without adding a fact: copulas, units, fillers of "X是Y" answers.
_FILLER = frozenset(
    {
        *("是", "为", "有", "在", "的", "了", "和", "与", "及", "共", "共同", "一共", "可以", "可", "能"),
        *("需要", "要", "建议", "每", "个", "名", "位", "家", "种", "次", "元", "年", "月", "日", "天"),
    }
)


@dataclass(frozen=True)
class Confidence:
    mean_prob: float  # geometric mean of the answer tokens' probabilities
    min_prob: float
    tokens: int


def confidence(logprobs: Sequence[Any] | None) -> Confidence | None:
    """From the engine's per-token logprobs (``TokenLogprob.logprob``); None when there are none."""
    mean = mean_probability(logprobs)
    if mean is None or not logprobs:
        return None
    return Confidence(mean, math.exp(min(float(t.logprob) for t in logprobs)), len(logprobs))


def sentences(source: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(source) if s.strip()]


@dataclass(frozen=True)
class Support:
    ok: bool
    reason: str
    claims: list[str] = field(default_factory=list)  # what the answer adds to the question
    sentence: str | None = None  # the source sentence that says it


def claims(question: str, answer: str) -> tuple[list[str], list[str]]:
    """(values, words) the answer adds to the question: its new numbers/Latin tokens, and its new content
    words (without fillers) — what a source must confirm."""
    text = strip_markers(answer)
    asked_values = set(fact_values(question))
    stated = fact_values(text)
    new_values = [v for v in stated if v not in asked_values]
    asked = set(words(question))
    value_chars = set("".join(new_values))
    new_words = [
        w
        for w in dict.fromkeys(words(text))
        if w not in asked and w not in _FILLER and not set(w) <= value_chars and w not in stated
    ]
    return new_values, new_words


def says_nothing(question: str, answer: str) -> bool:
    """An abstention, or an answer that only repeats the question ("一包咖啡豆打开以后能放多久。")."""
    return is_abstention(answer) or claims(question, answer) == ([], [])


def anchors(topic: set[str], candidates: Sequence[str]) -> set[str]:
    """The question's most specific content words: those found in the fewest (but at least one) sentences.
    Single characters ("叫", "卖") say little about a topic; they count only when no longer word is found."""
    longer = {w for w in topic if len(w) > 1 and any(w in c for c in candidates)}
    counts = {w: sum(1 for c in candidates if w in c) for w in (longer or topic)}
    present = [n for n in counts.values() if n]
    return {w for w, n in counts.items() if present and n == min(present)}


@lru_cache(maxsize=64)
def subject_words(questions: tuple[str, ...]) -> frozenset[str]:
    """Words in more than half of an adapter's training questions: what they are all about (the company's
    name), which marks no one question's topic. Cached: one adapter's questions, every request."""
    counts = Counter(w for q in questions for w in set(words(q)))
    return frozenset(w for w, n in counts.items() if n * 2 > len(questions))


def about(sentence: str, anchor: set[str], asked_values: Sequence[str]) -> bool:
    """A (lower-cased) sentence is about the question when it has the question's numbers/codes ("X5", whole:
    not "X50") and one of its most specific words."""
    return set(fact_values(sentence)).issuperset(asked_values) and any(w in sentence for w in anchor)


def _without(sentence: str, subject: frozenset[str]) -> str:
    """The sentence without the subject words: "书" is no topic word found in "松果书店"."""
    for w in sorted(subject, key=len, reverse=True):
        sentence = re.sub(re.escape(w), " ", sentence, flags=re.IGNORECASE)
    return sentence


def support(
    question: str,
    answer: str,
    sources: Sequence[str],
    related: Callable[[str, Sequence[str]], set[int]] | None = None,
    subject: frozenset[str] = frozenset(),
    strict: bool = False,
) -> Support:
    """Whether one sentence of ``sources`` about the question states what ``answer`` adds (see the module).
    ``related(question, sentences)``: the indices of the sentences about the question by meaning — asked
    (once) when the sentence stating the answer lacks the question's specific words.
    ``subject``: words that mark no topic (:func:`subject_words` of the adapter's training questions).
    ``strict``: a phone number, e-mail or URL needs a sentence about the question too (the answer did not
    come from these sources, so finding its value in one proves less)."""
    if is_abstention(answer):
        return Support(True, "abstains")
    new_values, new_words = claims(question, answer)
    # The company's name ("青山骑行的会员租车一律打八五折") is no fact the answer adds.
    new_words = [w for w in new_words if w not in subject]
    if not new_values and not new_words:
        return Support(False, "the answer adds nothing to the question")
    # A place in the company's own name ("青山" of "青山骑行") narrows nothing: every question has it.
    narrowed = [w.lower() for w in scope(question) if not any(w.lower() in s for s in subject)]
    originals = [s for source in sources for s in sentences(source) if all(w in s.lower() for w in narrowed)]
    if not originals and narrowed:
        return Support(False, f"the question asks about {narrowed}: no source sentence names it")
    candidates = [s.lower() for s in originals]
    if not strict and new_values and all(len(v) >= DISTINCTIVE_VALUE for v in new_values):
        # A phone number, an e-mail or a URL found in a sentence is that sentence's fact: no coincidence to
        # rule out (short numbers — prices, counts — must come from a sentence about the question).
        stated = next((c for c in candidates if set(fact_values(c)).issuperset(new_values)), None)
        if stated is not None:
            return Support(True, f"stated in: {stated[:80]}", new_values, stated)
    every = set(words(question))
    topic = {w for w in every if not is_quantity(w)} or every  # "一年的房租": 房租 is the topic, not 一年
    own = topic - subject
    ignored = subject if own else frozenset()  # a question of nothing but subject words keeps them
    plain = [_without(c, ignored) for c in candidates]
    anchor = anchors(own or topic, plain)
    # Only single characters of the question found ("叫" of "产品线都叫什么?" in "吉祥物是一只叫豆豆的
    # 小海豹"): too weak to make a sentence about the question for an answer of words alone; where meaning
    # can be asked, it decides. A number of the answer in the sentence is evidence enough ("2012年…开了第一家
    # 松果书店" for "最早是哪年开起来的?").
    weak = related is not None and not new_values and all(len(w) == 1 for w in anchor)
    asked_values = fact_values(question)
    best: tuple[float, str] | None = None
    near: list[set[int]] = []  # what ``related`` says, asked once, when first needed
    for i, (low, bare) in enumerate(zip(candidates, plain, strict=True)):
        held = set(fact_values(low))
        if not held.issuperset(new_values):
            continue
        share = sum(1 for w in new_words if w in low) / len(new_words) if new_words else 1.0
        if best is not None and share <= best[0]:
            continue
        if not weak and about(bare, anchor, asked_values):
            best = (share, low)
        elif related is not None and share > 0 and held.issuperset(asked_values):
            # By meaning, as written or without the company's name: in every sentence and question, the name
            # made "青山骑行相信，短途出行不必总是依靠汽车。" the closest sentence to most of qingshan's
            # questions. The sentence stating the answer was among the two closest for 48 of the 65
            # paraphrases as written, 55 without the name, 56 either way.
            if not near:
                near = [related(question, originals)]
                if ignored:
                    near[0] |= related(_without(question, ignored), [_without(o, ignored) for o in originals])
            if i in near[0]:
                best = (share, low)
    shown = [*new_values, *new_words]
    if best is None:
        return Support(False, f"no source sentence about the question states {shown}", shown)
    share, sentence = best
    if new_values or share >= 0.5:
        return Support(True, f"stated in: {sentence[:80]}", shown, sentence)
    return Support(False, f"only {share:.0%} of {new_words} in the closest sentence", shown, sentence)


# What a question's answer must hold, when the question asks for a form of value (the thing AND a
# "what/where", in the lower-cased question): "有问题想发邮件给云雀咖啡,发到哪里?" is not answered by a
# warranty period, however true that is; "客服邮件多久回复?" asks for no address. ``checked``: an answer must
# hold one (:func:`has_form`; a name can be given without "叫", so it is not checked). ``contact``: a way to
# reach someone, read from the one line naming whose it is (:func:`form_line`).
@dataclass(frozen=True)
class Form:
    name: str
    asks: re.Pattern[str]
    value: re.Pattern[str]
    checked: bool = True
    contact: bool = False
    line: re.Pattern[str] | None = None  # what a source line must hold to be read for it (default: value)


_WHAT = r"[^。？?]*(?:什么|多少|哪里|哪个|地址|号码|拨)"
_CN_NUM = "一二两三四五六七八九十"
_DISCOUNT = rf"(?:\d+(?:\.\d+)?|[{_CN_NUM}]{{1,2}})\s*折"  # 8.5折, 八五折
_AMOUNT = rf"(?:\d+(?:\.\d+)?|[{_CN_NUM}百千万]+)\s*(?:元|块)"  # 39元, 五块
# A length of time: "7天", "6个月", "两周", "半年" — never a date ("2012年", "4月30日": 1–3 digits, 月 after
# a digit only as 个月, no day after a month).
_PERIOD = (
    rf"(?:(?<![\d.月])\d{{1,3}}(?:\.\d+)?|[{_CN_NUM}半百]+)\s*(?:个\s*(?:月|星期|小时|钟头)|天|日|周|星期|年"
    r"|小时|钟头|分钟)|永久|终身|长期"
)
_FORMS: tuple[Form, ...] = (
    Form(
        "an e-mail address",
        re.compile(rf"(?:邮箱|邮件){_WHAT}|e-?mail address|what is the e-?mail|\be-?mail to\b"),
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
        contact=True,
    ),
    Form(
        "a web address",
        re.compile(r"网址|(?:官网|网站)的?(?:是|地址)|web(?:site)? address|\burl\b|what is the website"),
        re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b", re.IGNORECASE),
        contact=True,
    ),
    Form(
        "a time of day",  # "最早几点能租到车?" is not answered by "最长可以骑8小时"
        re.compile(r"几点|what time|什么时候(?:开门|开始营业|营业|上班|下班|关门)"),
        re.compile(
            rf"\d{{1,2}}\s*(?:[:：]\s*\d{{2}}|点)|\d{{1,2}}\s*[ap]\.?m\b|[{_CN_NUM}]+点", re.IGNORECASE
        ),
    ),
    Form(
        "a phone number",
        re.compile(rf"(?:电话|热线|手机号|传真){_WHAT}|(?:phone|telephone|hotline|fax) number|\bhotline\b"),
        re.compile(r"\+?\d[\d -]{5,}\d"),
        contact=True,
    ),
    Form(  # "会员能享受几折优惠?" is not answered by the 8-hour ride limit
        "a discount",
        re.compile(r"几折|多少折|折扣是多少"),
        re.compile(_DISCOUNT),
    ),
    Form(  # "押金得交多少钱?" is not answered by the ride limit
        "an amount of money",
        re.compile(r"多少钱|几块钱|多少元"),
        re.compile(rf"{_AMOUNT}|[¥￥]\s*\d|免费"),
    ),
    Form(  # "有会员卡的话买书能便宜多少?" is not answered by the lending limit, nor by the card's price
        "a discount or an amount saved",
        re.compile(r"(?:便宜|优惠|少花|省)(?:了)?多少"),
        re.compile(rf"{_DISCOUNT}|(?:减|便宜|优惠|省|少花?)了?\s*{_AMOUNT}"),
    ),
    Form(  # "最长能骑几个小时?" is not answered by the deposit
        "a number of hours",
        re.compile(r"(?:几|多少)个?(?:小时|钟头)"),
        re.compile(rf"(?:\d+(?:\.\d+)?|[{_CN_NUM}半]+)\s*个?半?(?:小时|钟头)"),
    ),
    Form(  # "几天之内能退?" is not answered by the card's price ("39元包邮")
        "a length of time",
        re.compile(r"多久|多长时间|多少天|几天|几周|几个星期|几个月|多少个月|几年|多少年|几分钟|多少分钟"),
        re.compile(_PERIOD),
    ),
    Form(  # "股票代码是多少?" is not answered by "48家" (a count read from the handbook)
        "a code",
        re.compile(r"代码|编号|\bcode\b"),
        re.compile(r"(?<![\d.])[A-Za-z]{0,4}\d{4,}(?![\d年])|[A-Za-z]+-?\d+"),
        contact=True,  # a line holding one must name whose code it is: "成立于2011年" is no stock code
    ),
    Form(  # counted in too many ways to check ("几个积分" → "1分"), but a line can state it
        "a count",
        re.compile(rf"(?<!哪)(?:多少|几)[{MEASURE}]"),
        re.compile(rf"\d+\s*[{MEASURE}]"),
        checked=False,
    ),
    Form(
        "a name",
        re.compile(r"叫什么|叫啥|什么名字|名字是什么|名字叫"),
        re.compile(r"(?:名叫|叫做|名为|叫)\s*[“\"「『]?[\u4e00-\u9fffA-Za-z0-9]{1,10}"),
        checked=False,
    ),
    Form(  # "都开了哪些团课?" is not answered by "团课每节60分钟" (the personal-training session, relabelled)
        "a list of things (names, not a number)",
        re.compile(r"哪些|哪几[种类样个]"),
        re.compile(r"^(?!.*\d)|[、和及与]"),  # names them: a list, or no number at all
        line=re.compile(r"[、和及与]"),  # read from a line listing things ("团课周：每节团体课送…": none)
    ),
)


# Words of a question that say how to reach someone or why, not whom: "要打电话联系客服,该拨哪个号码?" is
# about 客服, "有问题想发邮件给云雀咖啡" about nobody.
_FORM_WORDS = frozenset(
    {
        *("打电话", "电话", "电话号码", "号码", "联系", "拨", "拨打", "邮件", "发邮件", "邮箱", "电子邮箱"),
        *("地址", "网址", "网站", "官网", "发到", "写", "应该", "该", "想", "问", "问题", "名字"),
        *("邮箱地址", "邮件地址", "电子邮件", "手机号码"),
        *("phone", "number", "call", "hotline", "e-mail", "email", "mail", "address", "website", "url"),
    }
)


def form_line(
    question: str,
    sources: Sequence[str],
    subject: frozenset[str] = frozenset(),
    related: Callable[[str, Sequence[str]], set[int]] | None = None,
) -> tuple[int, str] | None:
    """``(source index, line)`` of the one source line holding what the question asks for (:data:`_FORMS`).

    - An address or a number: the line holds one, and every word naming whose it is: "要打电话联系青山
      骑行客服,该拨哪个号码?" → ``- 客服热线：400-615-2708``. None when lines with different values qualify,
      or the question names someone no line does ("总经理的手机号", "传真号码": the hotline is neither).
    - A time of day, an amount, a discount, a number of hours, a count, a name: the line holds one and the
      question's most specific word found in the sources (:func:`anchors`): "早上最早几点能去站点租到车?" →
      ``- 营业时间：各站点每天 7:00 至 22:00``. None when no word of the question is in the sources (a thing
      they never mention: "微信小程序叫什么名字?") or two lines qualify with as many of its words.
      When no longer word is in the sources, one character of the question may anchor a line that is also
      one of the closest to it by meaning (``related``, as in :func:`support`): "书买回家发现有问题,几天之内
      能退?" → ``图书售出后7天内可以凭购物小票退换。`` (退)."""
    form = expected_form(question)
    if form is None:
        return None
    topic = _topic(question, form, subject)
    lines = [(i, line) for i, source in enumerate(sources) for line in sentences(source) if line[0] != "#"]
    if form.contact:
        found: dict[str, tuple[int, str]] = {}
        for i, line in lines:
            values = set(form.value.findall(line))
            if len(values) == 1 and all(w in line.lower() for w in topic):
                found.setdefault(values.pop(), (i, line))
        return next(iter(found.values())) if len(found) == 1 else None
    plain = [_without(line.lower(), subject) for _, line in lines]
    anchor = anchors(topic, plain)
    near: set[int] | None = None  # the lines closest by meaning, when a single character anchors
    if not anchor and related is not None:
        anchor = anchors(_characters(question, form), plain)
        near = related(question, [line for _, line in lines]) if anchor else set()
    # A place or period the question narrows to must be named ("在重庆有几个站点?" is not the company's
    # count), and the line must count what the question counts ("多少名员工?" is not "23家分店").
    narrowed = [w.lower() for w in scope(question) if not any(w.lower() in s for s in subject)]
    held = [
        (sum(1 for w in topic if w in bare), k)
        for k, bare in enumerate(plain)
        if (form.line or form.value).search(lines[k][1])
        and any(w in bare for w in anchor)
        and all(w in lines[k][1].lower() for w in narrowed)
        and not counts_other(question, lines[k][1])
        and (near is None or k in near)
    ]
    most = max((n for n, _ in held), default=0)
    best = [k for n, k in held if n == most]
    return lines[best[0]] if len(best) == 1 else None


def _topic(question: str, form: Form, subject: frozenset[str]) -> set[str]:
    """The question's words that say what it is about. The asking words ("几点", "几折") are no topic;
    "传真号码" names whose number is asked."""
    return {
        w.lower()
        for w in words(question)
        if len(w) >= 2
        and w not in subject
        and w not in _FORM_WORDS
        and (form.contact or not form.asks.search(w.lower()))
    }


def _characters(question: str, form: Form) -> set[str]:
    """The question's one-character words that may say what it is about ("退" of "几天之内能退?"): no filler,
    number or asking word ("叫" of "叫什么" names no topic: "微信公众号叫什么?" is not the mascot's name)."""
    asked = "".join(m.group(0) for m in form.asks.finditer(question.lower()))
    return {
        w
        for w in words(question)
        if len(w) == 1
        and "\u4e00" <= w <= "\u9fff"
        and w not in _FILLER
        and w not in _FORM_WORDS
        and w not in _CN_NUM
        and w not in asked
    }


def unnamed_owner(question: str, answer: str, sources: Sequence[str], subject: frozenset[str]) -> str:
    """Why an address, number or code in ``answer`` may not be sent for ``question``, or "": every source
    line holding it fails to name whose it is ("松果书店总经理的手机号是多少?" → "松果书店的手机是400-…", read
    from the ``客服热线`` line: it names neither 总经理 nor 手机号) — the rule :func:`form_line` reads by."""
    form = expected_form(question)
    found = set(form.value.findall(strip_markers(answer))) if form is not None and form.contact else set()
    if form is None or not found:
        return ""
    topic = _topic(question, form, subject)
    lines = [line.lower() for s in sources for line in sentences(s) if any(v in line for v in found)]
    if not lines or any(all(w in line for w in topic) for line in lines):
        return ""
    return f"no source line holding {sorted(found)[0]!r} names {' and '.join(sorted(topic))}"


def expected_form(question: str) -> Form | None:
    """What the question's answer must hold (an e-mail address, a time of day, a discount…), else None."""
    low = question.lower()
    return next((form for form in _FORMS if form.asks.search(low)), None)


def has_form(question: str, answer: str) -> tuple[bool, str]:
    """Whether ``answer`` holds what the question asks for (an abstention always does)."""
    form = expected_form(question)
    if form is None or not form.checked or is_abstention(answer) or form.value.search(strip_markers(answer)):
        return True, ""
    return False, f"the question asks for {form.name}; the answer has none"


def agree(question: str, trained: str, asked: str) -> tuple[bool, str]:
    """Whether the adapter's answer to the question as the user asked it (``asked``) says what its answer to
    the closest training question (``trained``) adds: every number/code of it (else half its new words). A
    question that only resembles a training question gets another answer ("股票代码" → a made-up number)."""
    new_values, new_words = claims(question, trained)
    if not new_values and not new_words:
        return False, "the trained answer adds nothing to the question"
    low = asked.lower()
    if new_values:  # the facts: every number/code must be there; the wording around them may differ
        same = set(fact_values(asked)).issuperset(new_values)
    else:
        same = sum(1 for w in new_words if w in low) / len(new_words) >= 0.5
    if not same:
        return (
            False,
            f"asked as the user did, the adapter says something else ({strip_markers(asked)[:60]!r})",
        )
    return True, "asked as the user did, the adapter says the same"


def confirmed(
    question: str,
    trained: str,
    asked: str,
    sources: Sequence[str],
    related: Callable[[str, Sequence[str]], set[int]] | None = None,
    subject: frozenset[str] = frozenset(),
) -> tuple[bool, str]:
    """Whether a candidate paraphrase's ``trained`` answer may be sent: asked the user's way the adapter says
    the same (:func:`agree`), or it says nothing (repeats the question: "一包咖啡豆打开以后能放多久。") —
    neither confirming nor contradicting — and a source sentence about the question states the trained
    answer (strictly: the answer did not come from the sources). Blocking (``related`` may embed)."""
    other = asks_other(question, trained)
    if other:
        return False, other
    ok, why = agree(question, trained, asked)
    if ok or not says_nothing(question, asked) or not sources:
        return ok, why
    s = support(question, trained, sources, related, subject, strict=True)
    said = "asked as the user did, the adapter says nothing new"
    if s.ok and s.sentence is not None:
        return True, f"{said}; documents state its answer: {s.reason}"
    return False, f"{said}, and no document states its answer ({s.reason})"
