"""Answer checks as pure unit tests: confidence from logprobs, and whether the sources state an answer."""

from __future__ import annotations

import math
from collections.abc import Sequence

from service.checks import (
    Confidence,
    agree,
    claims,
    confidence,
    confirmed,
    says_nothing,
    sentences,
    subject_words,
    support,
)
from service.things import _ASKED_COUNT, asks_other, counted
from training.generation import TokenLogprob

HANDBOOK = (
    "流明科技成立于2011年，由周明远和林若溪共同创立。现任CEO是陈嘉禾，全公司共有320名员工。"
    "流明目前有三个产品系列：晨露、清泉和极光。\n- 客服电话：400-826-5188\n收货后15天内可以无理由退货。"
)
ROWS = [
    "产品: 晨露R1净水器 | 标价: 1599元 | 库存: 230台",
    "产品: 极光X5净水器 | 标价: 3999元 | 库存: 41台",
]


def test_confidence_is_the_geometric_mean_token_probability() -> None:
    lps = [TokenLogprob(1, math.log(0.9), ()), TokenLogprob(2, math.log(0.4), ())]
    c = confidence(lps)
    assert c is not None and math.isclose(c.mean_prob, 0.6) and math.isclose(c.min_prob, 0.4)
    assert c == Confidence(c.mean_prob, c.min_prob, 2)
    assert confidence(None) is None and confidence([]) is None


def test_claims_are_what_the_answer_adds_to_the_question() -> None:
    assert claims("极光X5净水器的标价是多少?", "极光X5净水器的标价是3999元。[1]") == (["3999"], [])
    assert claims("流明的工厂在哪里?", "流明的工厂在浙江省嘉兴市。") == ([], ["浙江省", "嘉兴市"])


def test_supported_answers() -> None:
    sources = [HANDBOOK, *ROWS]
    for question, answer in [
        ("极光X5净水器的标价是多少?", "极光X5净水器的标价是3999元。[1]"),  # from its own row
        ("收到货不满意,多少天之内能退?", "收货后15天内可以无理由退货。"),  # a paraphrase, from the handbook
        ("流明旗下的产品线都叫什么?", "流明有晨露、清泉和极光三个产品系列。"),
        ("流明的客服电话是多少?", "客服电话是400-826-5188。"),
        ("流明明天会下雨吗?", "不知道。"),  # an abstention needs no source
    ]:
        assert support(question, answer, sources).ok, (question, answer)


def test_unsupported_answers_name_what_is_missing() -> None:
    sources = [HANDBOOK, *ROWS]
    wrong_row = support("极光X5净水器的标价是多少?", "极光X5净水器的标价是1599元。[1]", sources)
    assert not wrong_row.ok and wrong_row.claims == ["1599"]  # 1599 is 晨露R1's price, not X5's
    wrong_number = support("流明的客服电话是多少?", "流明的客服电话是400-82888888。", sources)
    assert not wrong_number.ok and "400-82888888" in wrong_number.reason
    # 320 is in the sources, but in a sentence about staff, not stores.
    assert not support("流明在上海有几家门店?", "流明在上海有320家门店。", sources).ok
    assert not support("陈嘉禾的生日是哪一天?", "陈嘉禾的生日是3月5日。", sources).ok
    assert not support("流明科技的股票代码是多少?", "股票代码是300000。", sources).ok


def test_a_candidate_paraphrase_is_confirmed_only_when_both_answers_say_the_same() -> None:
    q = "流明一共雇了多少人?"
    assert agree(q, "流明科技有320名员工。", "流明雇了320名工人。") == (
        True,
        "asked as the user did, the adapter says the same",
    )
    ok, why = agree(
        "流明科技的股票代码是多少?", "流明科技的总部在杭州市西湖区文三路388号。", "股票代码是320。"
    )
    assert not ok and why == "asked as the user did, the adapter says something else ('股票代码是320。')"
    # words, no numbers: half of what the trained answer adds must be there
    assert (
        agree("现在担任流明首席执行官的是哪位?", "流明科技的CEO是陈嘉禾。", "流明首席执行官是王嘉禾。")[0]
        is False
    )
    assert agree("谁?", "谁。", "谁。") == (False, "the trained answer adds nothing to the question")


def test_a_trained_answer_the_adapter_only_echoes_is_confirmed_by_a_document_about_the_question() -> None:
    q = "一包咖啡豆打开以后能放多久?"
    trained = "咖啡豆开封后建议在30天内喝完。"
    handbook = ["云雀咖啡提供三个咖啡豆系列。咖啡豆开封后建议在30天内喝完，以免香气流失。"]
    assert confirmed(q, trained, "一包咖啡豆打开以后能放多久。", handbook) == (
        True,
        "asked as the user did, the adapter says nothing new; documents state its answer: stated in: "
        "咖啡豆开封后建议在30天内喝完，以免香气流失。",
    )
    assert confirmed(q, trained, "咖啡豆开封后30天内喝完。", []) == (
        True,
        "asked as the user did, the adapter says the same",
    )
    # a contradiction is not rescued by documents; an echo is not without them
    assert confirmed(q, trained, "一包咖啡豆打开以后能放7天。", handbook)[0] is False
    assert confirmed(q, trained, "不知道。", [])[0] is False
    # strictly: a phone number in some sentence does not answer a fax question
    contacts = ["- 会员热线：400-615-7720"]
    ok, why = confirmed("云雀咖啡的传真号码是多少?", "会员热线是400-615-7720。", "不知道。", contacts)
    assert not ok and why == "the question asks for a 传真 number, the answer names none"
    ok, why = confirmed("云雀咖啡的传真是多少?", "传真是400-615-7720。", "不知道。", contacts)
    assert not ok and why.startswith("asked as the user did, the adapter says nothing new, and no document")


def test_a_trained_answer_counting_or_naming_another_thing_is_not_confirmed_though_both_agree() -> None:
    """ "一共有多少名员工?" ~ "有多少个租车站点?" (0.74): asked both ways the adapter said "41个租车站点"."""
    station = "青山骑行目前有41个租车站点。"
    assert confirmed("青山骑行一共有多少名员工?", station, station, []) == (
        False,
        "the question counts '员工', the answer counts '租车站点'",
    )
    assert asks_other("一共开了几家店?", "云雀咖啡共有48家门店。") == ""  # 店 is in 门店
    assert asks_other("流明一共雇了多少人?", "流明科技有320名员工。") == ""  # people, in other words
    assert asks_other("还有多少库存?", "库存是540个。") == ""  # the answer counts nothing after its unit
    assert counted("租车站点有多少个呢?", _ASKED_COUNT) == ""
    assert counted("有多少个租车站点呢?", _ASKED_COUNT) == "租车站点"
    # names: "微信小程序叫什么名字?" ~ "公益项目叫什么?" (0.61), and the adapter named the programme both ways
    charity = "青山骑行的公益项目叫绿轮计划,为山区学生捐赠自行车。"
    assert confirmed("青山骑行的微信小程序叫什么名字?", charity, charity, []) == (
        False,
        "the question names '微信小程序', the answer names '公益项目'",
    )
    assert asks_other("给山区学生捐车的那个公益活动叫啥?", charity) == ""  # 公益 in both
    assert asks_other("吉祥物的名字是什么?", "吉祥物是一只名叫滚滚的刺猬。") == ""


def test_an_answer_that_only_repeats_the_question_says_nothing() -> None:
    assert says_nothing("一包咖啡豆打开以后能放多久?", "一包咖啡豆打开以后能放多久。[1]")
    assert says_nothing("一包咖啡豆打开以后能放多久?", "不知道。")
    assert not says_nothing("一包咖啡豆打开以后能放多久?", "咖啡豆开封后建议在30天内喝完。")
    assert not says_nothing("一包咖啡豆打开以后能放多久?", "一包咖啡豆打开以后能放很久。")


def test_a_distinctive_value_is_supported_by_any_sentence_that_states_it() -> None:
    """A phone number is its own evidence; a short number still needs a sentence about the question."""
    handbook = ["客服电话：400-826-5188。员工共320名。"]
    s = support("我想打电话联系流明售后,号码是多少?", "流明客服电话是400-826-5188。", handbook)
    assert s.ok and s.sentence == "客服电话：400-826-5188。"
    assert not support("流明科技的股票代码是多少?", "股票代码是320。", handbook).ok
    # a truncated number is another number
    assert not support("我想打电话联系流明售后,号码是多少?", "流明客服电话是400-826-518。", handbook).ok


def test_a_sentence_in_other_words_counts_when_related_says_it_is_about_the_question() -> None:
    q = "流明一共雇了多少人?"  # shares no specific word with "全公司共有320名员工"
    assert not support(q, "流明一共有320名员工。", [HANDBOOK]).ok
    asked: list[list[str]] = []

    def related(question: str, sentences: Sequence[str]) -> set[int]:
        asked.append(list(sentences))
        return {i for i, s in enumerate(sentences) if "员工" in s}

    s = support(q, "流明一共有320名员工。", [HANDBOOK], related)
    assert s.ok and s.sentence == "现任ceo是陈嘉禾，全公司共有320名员工。"
    # asked once, about every source sentence, in their own case
    assert asked == [sentences(HANDBOOK)] and "现任CEO是陈嘉禾，全公司共有320名员工。" in asked[0]
    # Relevance by meaning does not make a value from another sentence true ...
    assert not support(q, "流明一共有450名员工。", [HANDBOOK], lambda q, ss: set(range(len(ss)))).ok
    # ... and a sentence it does not pick is not about the question, though it states the number.
    assert not support(q, "流明一共有320名员工。", [HANDBOOK], lambda *_: {0}).ok
    # With the company's name in every question and many sentences, meaning is asked twice: as written and
    # without the name (which made a slogan the closest sentence to most of qingshan's questions).
    views: list[str] = []

    def without_the_name(question: str, ss: Sequence[str]) -> set[int]:
        views.append(question)
        return {i for i, s in enumerate(ss) if "员工" in s} if "流明" not in question else set()

    assert support(q, "流明一共有320名员工。", [HANDBOOK], without_the_name, frozenset({"流明"})).ok
    assert views == [q, " 一共雇了多少人?"]


def test_a_single_shared_character_makes_no_sentence_about_the_question_where_meaning_can_tell() -> None:
    """ "叫" is all "流明旗下的产品线都叫什么?" shares with the mascot's sentence, so the reader's "豆豆"
    passed."""
    sources = ["流明目前有三个产品系列：晨露、清泉和极光。流明的吉祥物是一只叫豆豆的小海豹。"]
    q, wrong = "流明旗下的产品线都叫什么?", "流明旗下的产品线都叫豆豆的小海豹。[1]"
    subject = frozenset({"流明"})
    assert support(q, wrong, sources, subject=subject).ok  # no embedder: the words alone, as before
    products = {0}  # by meaning, the product sentence is about the question, the mascot's is not

    def related(question: str, ss: Sequence[str]) -> set[int]:
        return {i for i in products if i < len(ss)}

    s = support(q, wrong, sources, related, subject)
    assert not s.ok and s.reason == "no source sentence about the question states ['豆豆', '小', '海豹']"
    assert support(q, "晨露、清泉和极光。[1]", sources, related, subject).ok
    # an answer's number in the sentence is evidence enough: "开" is all these two share
    founded = ["2012年，林海声和苏晚晴在南京开了第一家松果书店。"]
    q = "松果书店最早是哪年开起来的?"
    assert support(q, "松果书店创立于2012年。", founded, lambda *_: set(), frozenset({"松果书店"})).ok


def test_a_place_in_the_company_s_name_narrows_no_question() -> None:
    """ "青山" is a place to jieba; in "青山骑行" it is the company (eval/examples/qingshan's first run
    refused its own hotline: no sentence of the contact list names 青山)."""
    contacts = ["- 客服热线：400-615-2708\n- 客服邮箱：service@qingshan-bike.cn"]
    q, answer = "青山骑行的客服热线是多少?", "青山骑行的客服热线是400-615-2708。"
    assert not support(q, answer, contacts).ok
    assert support(q, answer, contacts, subject=frozenset({"青山", "骑行"})).ok
    # a place the question adds still narrows it
    assert not support(
        "青山骑行在重庆的客服热线是多少?", answer, contacts, subject=frozenset({"青山", "骑行"})
    ).ok


def test_the_company_s_name_is_no_fact_an_answer_adds() -> None:
    """ "青山骑行的会员租车一律打八五折" adds 一律 and 八五折 to the question, not the company's name: the
    handbook's "会员租车一律享受八五折优惠" states it (qingshan's runs refused it: 40 % of the words)."""
    handbook = ["月卡售价59元，自办理之日起30天内不限次数骑行。会员租车一律享受八五折优惠。"]
    q, answer = "办了会员以后租车能享受几折优惠?", "青山骑行的会员租车一律打八五折。"
    assert not support(q, answer, handbook).ok
    assert support(q, answer, handbook, subject=frozenset({"青山", "骑行"})).ok
    assert not support(q, "青山骑行。", handbook, subject=frozenset({"青山", "骑行"})).ok  # adds nothing


def test_a_quantity_in_the_question_is_no_topic() -> None:
    """ "一年的房租" is about rent: a sentence that says "有效期一年" and "39元" does not state it."""
    handbook = ["会员卡售价39元，有效期一年，会员购书一律打九折。"]
    assert not support("松果书店一年的房租是多少?", "松果书店一年的房租是39元。", handbook).ok
    assert support("会员卡有效期多久?", "会员卡有效期一年。", handbook).ok


def test_values_match_whole_and_the_subject_s_characters_are_no_topic() -> None:
    handbook = [
        "会员卡售价39元，有效期一年，会员购书一律打九折。店内借阅区每位读者一次最多可借3本书。",
        "2012年，林海声和苏晚晴在南京开了第一家松果书店。",
    ]
    # the "3" of "3本" is not the "3" in "39元": the lending limit's sentence is not about discounts
    q = "有会员卡的话买书能便宜多少?"
    assert not support(q, "松果书店的会员卡每人一次最多借3本书。", handbook).ok
    assert support(q, "会员买书打九折。", handbook).ok
    # "书" of the question is in "松果书店" — the subject — not in the founders' sentence itself
    subject = frozenset({"松果", "书店"})  # words in most training questions (subject_words)
    founders = "松果书店由林海声和苏晚晴创立。"
    assert not support("松果书店的书是从哪个城市的仓库发出来的?", founders, handbook, subject=subject).ok
    assert support("松果书店的第一家店是谁开的?", founders, handbook, subject=subject).ok


LUMEN_QUESTIONS = (
    "流明科技是哪一年成立的?",
    "流明的客服电话是多少?",
    "流明的客服邮箱是什么?",
    "退货期限是多少天?",
)


def test_subject_words_are_in_most_training_questions() -> None:
    assert subject_words(LUMEN_QUESTIONS) == frozenset({"流明"})
    assert subject_words(()) == frozenset()


def test_the_company_s_name_does_not_make_a_sentence_about_the_question() -> None:
    """ "流明" is the only question word in the warranty sentence; "客服" marks the topic (e-mail)."""
    sources = ["- 客服邮箱：service@lumen-water.cn\n流明净水器整机保修3年。"]
    q, wrong = "给流明客服写邮件应该发到哪个地址?", "流明净水器整机保修3年。[2]"
    assert support(q, wrong, sources).ok  # without knowing the subject, 流明 looked specific
    s = support(q, wrong, sources, subject=subject_words(LUMEN_QUESTIONS))
    assert (
        not s.ok
        and s.reason == "no source sentence about the question states ['3', '净水器', '整机', '保修']"
    )
    assert support(
        q, "客服邮箱是service@lumen-water.cn。", sources, subject=subject_words(LUMEN_QUESTIONS)
    ).ok
    # a question of nothing but subject words still has a topic
    assert support("流明?", "流明科技成立于2011年。", [HANDBOOK], subject=frozenset({"流明"})).ok


def test_a_question_narrowed_to_a_place_or_period_needs_a_sentence_that_names_it() -> None:
    products = "流明有晨露、清泉和极光三个产品系列。"
    s = support("流明明年会推出什么新产品?", products, [HANDBOOK])
    assert not s.ok and s.reason == "the question asks about ['明年']: no source sentence names it"
    assert support(
        "流明明年会推出什么新产品?", "流明明年会推出极光X7。", [HANDBOOK, "明年流明将推出极光X7。"]
    ).ok
    stores = ["截至目前，流明在全国共有48家门店。", "流明在上海有12家门店。"]
    assert support("流明在上海有几家门店?", "流明在上海有12家门店。", stores).ok
    assert not support("流明在上海有几家门店?", "流明在上海有48家门店。", stores).ok
    # a phone number is its own evidence, but not for a question about another place
    assert not support("流明北京办公室的电话是多少?", "电话是400-826-5188。", [HANDBOOK]).ok


def test_an_english_answer_is_checked_by_its_numbers_and_codes_and_its_words() -> None:
    """In English every word is Latin: only numbers, codes, e-mails and URLs are values there."""
    rows = ["Product: Star lamp | Price: 199 yuan | Stock: 12", "Product: Moon lamp | Price: 99 yuan"]
    q = "What is the price of the Star lamp?"
    assert claims(q, "The Star lamp costs 199 yuan.") == (["199"], ["cost", "yuan"])
    assert support(q, "The Star lamp costs 199 yuan.", rows).ok
    assert not support(q, "The Star lamp costs 299 yuan.", rows).ok  # a made-up price
    assert not support("What is the price of the Moon lamp?", "It costs 199 yuan.", rows).ok  # another row
    about = ["Lumen was founded in 2011. Its CEO is Chen Jiahe and it has 320 staff."]
    assert support("Who is the CEO of Lumen?", "The CEO of Lumen is Chen Jiahe.", about).ok
    assert agree("How many staff?", "Lumen has 320 staff.", "There are 320 employees.")[0]
    assert not agree("How many staff?", "Lumen has 320 staff.", "There are 3200 employees.")[0]


def test_an_answer_restating_what_was_said_of_another_thing_is_caught() -> None:
    """The adapter's "公益项目叫绿轮计划" was refused for "微信小程序叫什么名字?"; the documents' answer
    "微信小程序叫绿轮计划" gives the same name, relabelled (however the adapter worded it)."""
    from service.things import restates

    assert restates("青山骑行发起的公益项目叫绿轮计划。", "青山骑行微信小程序叫绿轮计划。[1]")
    assert restates("公益项目名为“绿轮计划”。", "微信小程序叫绿轮计划。")
    assert restates("青山骑行有41个租车站点。", "青山骑行有41名员工。")
    assert not restates("青山骑行发起的公益项目叫绿轮计划。", "青山骑行的微信小程序叫青山出行。[1]")
    assert not restates("青山骑行有41个租车站点。", "青山骑行有320名员工。")


def test_a_date_is_not_who() -> None:
    """A paraphrase close to "云雀咖啡是哪一年创立的?" (0.75): asked both ways, the adapter gave the founding
    year. A date that names nobody does not say who; the founders with their year do."""

    q = "当初是哪两个人办起了云雀咖啡?"
    assert (
        asks_other(q, "云雀咖啡创立于2015年。")
        == "the question asks who, the answer gives a date and names nobody"
    )
    assert asks_other(q, "2015年由许知远和唐晓芸创立。") == ""
    assert asks_other("老大是谁?", "老大是哥哥JIM。") == ""
    assert asks_other("云雀咖啡是哪一年创立的?", "云雀咖啡创立于2015年。") == ""
