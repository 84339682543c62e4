"""What a question asks about against what an answer is about — PURE: no model, no index. An answer can be
true, supported and sure of itself and still be about another thing: the count of 站点 for "多少名员工?",
the name of a 公益项目 for "微信小程序叫什么?", the member hotline for "传真号码是多少?", the founding year
for "是哪两个人办起了…?" (``service.checks`` and ``service.answering`` ask these).

    from service.things import asks_other
    asks_other("一共有多少名员工?", "青山骑行有41个租车站点。")  # "the question counts '员工', …"
"""

from __future__ import annotations

import re

from training.text import fact_values, people

# Measure words between "多少/几" or a number and the thing counted: 多少名员工, 41个租车站点.
MEASURE = "个名位家间座所张辆台件本次种条只把副套部"
_ASKED_COUNT = re.compile(rf"(?:多少|几)[{MEASURE}]?([\u4e00-\u9fff]{{1,6}})")
_STATED_COUNT = re.compile(rf"\d+(?:\.\d+)?\s*[{MEASURE}]([\u4e00-\u9fff]{{1,6}})")
_COUNT_TAIL = re.compile(r"(?:呢|吗|啊|了|呀|可以.*|能.*|是.*|在.*)$")
# The thing whose name is asked or stated: "微信小程序叫什么名字?" → 微信小程序, "公益项目叫绿轮计划".
_ASKED_NAME = re.compile(r"([^\s，。,?？!！]{1,16}?)(?:的名字|叫什么|叫啥|是什么名字)")
_STATED_NAME = re.compile(r"([^\s，。,?？!！]{1,16}?)(?:名叫|叫做|叫|名为)")
# "当初是哪两个人办起了云雀咖啡?" asks who: "云雀咖啡创立于2015年。" (the founding year) does not answer it.
_ASKS_WHO = re.compile(r"谁|哪[一两几些]?位|哪[两几些]?个人|什么人|\bwho\b")
# Numbers of a kind a general hotline is not: "传真号码是多少?" is not answered by the member hotline.
_NUMBER_KINDS = ("传真", "手机", "fax", "mobile")
# People are counted in many words (多少人 / 320名员工 / 职工 / 作者): any of these characters names people.
_PEOPLE = frozenset("人员工者")


def counted(text: str, pattern: re.Pattern[str]) -> str:
    """The thing ``text`` counts ("一共有多少名员工?" → "员工"; "有41个租车站点" → "租车站点"), or ""."""
    m = pattern.search(text)
    return _COUNT_TAIL.sub("", m.group(1)) if m else ""


def named(text: str, pattern: re.Pattern[str]) -> str:
    """The thing whose name ``text`` asks or states ("青山骑行的微信小程序叫什么名字?" → "微信小程序"), or
    ""; what comes before its last 的 is whose it is."""
    m = pattern.search(text)
    return m.group(1).rsplit("的", 1)[-1] if m else ""


def _other(asked: str, stated: str) -> bool:
    """Whether the thing stated is another than the thing asked: both there, sharing not one character,
    and not both people."""
    both_people = bool(_PEOPLE & set(asked)) and bool(_PEOPLE & set(stated))
    return bool(asked and stated and not set(asked) & set(stated) and not both_people)


def counts_other(question: str, text: str) -> bool:
    """Whether ``text`` counts another thing than the question counts ("多少名员工?" → "23家分店")."""
    return _other(counted(question, _ASKED_COUNT), counted(text, _STATED_COUNT))


def asks_other(question: str, answer: str) -> str:
    """Why ``answer`` is about something other than the question asks for, or "": it counts another thing
    ("多少名员工?" → "41个租车站点") or names another thing ("微信小程序叫什么名字?" → "公益项目叫绿轮
    计划"), the two sharing not one character, or it gives a number of another kind than the one asked
    ("传真号码是多少?" → "会员热线是400-…"). A candidate paraphrase's trained answer can agree with itself
    asked the user's way and still be the wrong fact."""
    low, said = question.lower(), answer.lower()
    kind = next((k for k in _NUMBER_KINDS if k in low and k not in said), None)
    if kind:
        return f"the question asks for a {kind} number, the answer names none"
    facts = fact_values(answer)
    dates = facts and all(re.search(rf"{re.escape(v)}\s*[年月日号]", said) for v in facts)
    if _ASKS_WHO.search(low) and dates and not people(answer):
        return "the question asks who, the answer gives a date and names nobody"
    for what, asked, stated in (
        ("counts", counted(question, _ASKED_COUNT), counted(answer, _STATED_COUNT)),
        ("names", named(question, _ASKED_NAME), named(answer, _STATED_NAME)),
    ):
        if _other(asked, stated):
            return f"the question {what} {asked!r}, the answer {what} {stated!r}"
    return ""


_NAME_GIVEN = re.compile(r"(?:名叫|叫做|叫|名为)[“\"「《]?([^\s，。,.?？!！”\"」》]{1,16})")


def restates(other: str, answer: str) -> bool:
    """Whether ``answer`` gives the name or the numbers that ``other`` gave another thing ("公益项目叫绿轮
    计划" → "微信小程序叫绿轮计划。[1]": the name, relabelled; "有41个租车站点" → "员工有41名")."""
    m = _NAME_GIVEN.search(other)
    if m and m.group(1) in answer:
        return True
    found = fact_values(other)
    return bool(found) and set(found) <= set(fact_values(answer))


def names_more(question: str, other: str, answer: str) -> bool:
    """Whether ``answer`` to a "who" question names someone ``other`` did not: "云雀咖啡创立于2015年" was
    refused for "当初是哪两个人办起了云雀咖啡?" (a date names nobody), but "由许知远和唐晓芸于2015年
    创立" answers it, though it holds the same year (:func:`restates` would call it that fact again)."""
    return bool(_ASKS_WHO.search(question.lower())) and bool(set(people(answer)) - set(people(other)))
