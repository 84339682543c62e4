"""What an answer must hold when the question asks for a form of value (an address, a number, a time of
day, a length of time, an amount, a discount, a code…), and the one source line holding it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.checks import expected_form, form_line, has_form, unnamed_owner
from service.things import asks_other


def test_the_one_line_holding_the_asked_address_or_number_for_whom_it_is_asked() -> None:
    contacts = ["- 客服热线：400-615-2700\n- 会员热线：400-615-7720\n- 客服邮箱：hello@yunque.cn"]
    handbook = ["公司由总经理韩亦舟负责日常经营。", *contacts]
    subject = frozenset({"云雀", "咖啡"})
    assert form_line("我想打电话问会员的事,该拨哪个号码?", handbook, subject) == (
        1,
        "- 会员热线：400-615-7720",
    )
    assert form_line("给云雀咖啡写邮件应该发到哪个地址?", handbook, subject) == (
        1,
        "- 客服邮箱：hello@yunque.cn",
    )
    assert form_line("云雀咖啡的电话是多少?", handbook, subject) is None  # two numbers: whose?
    assert form_line("云雀咖啡的传真号码是多少?", handbook, subject) is None  # no line says 传真
    assert form_line("云雀咖啡总经理的手机号是多少?", handbook, subject) is None  # nor 总经理's number
    assert form_line("云雀咖啡的客服热线几点上班?", handbook, subject) is None  # asks no number
    assert form_line("有问题想发邮件给云雀咖啡,发到哪里?", handbook, subject) == (
        1,
        "- 客服邮箱：hello@yunque.cn",
    )  # 问题 says why one writes, not to whom


def test_the_one_line_holding_the_asked_time_amount_count_discount_hours_or_name() -> None:
    """Not a contact: the line holds the form and the question's most specific word found in the sources
    (qingshan's paraphrases the adapter answered with a neighbouring sentence of the same paragraph)."""
    handbook = [
        "# 租车须知\n\n- 营业时间：各站点每天 7:00 至 22:00\n\n"
        "第一次租车须缴纳押金200元，结清费用、还车后退还。每次租车最长可连续骑8小时，到时间后需要回到任意站点"
        "重新办理。12岁以下的骑行者必须佩戴头盔。会员租车一律享受八五折优惠。",
        "# 本月活动\n\n- 周末特惠：周六、周日租电助力车满2小时送1小时。\n\n"
        "青山骑行的吉祥物是一只名叫滚滚的刺猬。青山骑行发起了名为“绿轮计划”的公益项目，把修好的自行车送给山区学生。",
    ]
    subject = frozenset({"青山", "骑行"})
    assert form_line("早上最早几点能去青山骑行的站点租到车?", handbook, subject) == (
        0,
        "- 营业时间：各站点每天 7:00 至 22:00",
    )
    assert form_line("租一辆车最长能骑几个小时就必须还?", handbook, subject) == (
        0,
        "每次租车最长可连续骑8小时，到时间后需要回到任意站点重新办理。",
    )  # not the weekend offer's hours: it has no 最长
    discount = form_line("办了会员以后租车能享受几折优惠?", handbook, subject)
    assert discount == (0, "会员租车一律享受八五折优惠。")
    assert form_line("青山骑行给山区学生捐车的那个公益活动叫啥?", handbook, subject) == (
        1,
        "青山骑行发起了名为“绿轮计划”的公益项目，把修好的自行车送给山区学生。",
    )
    assert form_line("青山骑行的微信小程序叫什么名字?", handbook, subject) is None  # nothing the sources name
    assert form_line("第一次在青山骑行租车,押金得交多少钱?", handbook, subject) == (
        0,
        "第一次租车须缴纳押金200元，结清费用、还车后退还。",
    )
    stations = ["公司目前由总经理韩亦舟负责日常经营，共设有41个租还车站点。", *handbook]
    assert form_line("青山骑行一共有几个可以借车还车的点?", stations, subject) == (0, stations[0])
    assert form_line("青山骑行在重庆有几个站点?", stations, subject) is None  # the count is not Chongqing's
    assert form_line("总经理手下一共有多少名员工?", stations, subject) is None  # 41 counts stations
    assert form_line("总经理几点上班?", ["公司由总经理韩亦舟负责日常经营。", *handbook], subject) is None
    assert form_line("周末租车有几折?", handbook, subject) is None  # the weekend line holds no discount
    assert has_form("办了会员以后租车能享受几折优惠?", "每次租车最长可连续骑8小时。[1]") == (
        False,
        "the question asks for a discount; the answer has none",
    )
    assert has_form("最长能骑几个小时?", "押金200元。") == (
        False,
        "the question asks for a number of hours; the answer has none",
    )
    assert has_form("最长能骑几个小时?", "最长可连续骑八个小时。")[0]
    assert has_form("会员打几折?", "会员打8.5折。")[0]
    assert has_form("有会员卡的话买书能便宜多少?", "会员购书一律打九折。")[0]
    assert has_form("有会员卡的话买书能便宜多少?", "每单便宜10元。")[0]
    assert not has_form("有会员卡的话买书能便宜多少?", "每位读者一次最多可借3本书。")[0]
    songguo = ["会员卡售价39元，有效期一年，会员购书一律打九折。店内借阅区每位读者一次最多可借3本书。"]
    assert form_line("有会员卡的话买书能便宜多少?", songguo, frozenset({"松果", "书店"})) == (
        0,
        "会员卡售价39元，有效期一年，会员购书一律打九折。",
    )
    assert has_form("吉祥物叫什么名字?", "是滚滚。")[0]  # a name needs no "叫": not checked
    assert has_form("能得几个积分?", "积1分。")[0]  # nor a count: "1分" counts in 分
    assert has_form("押金得交多少钱?", "不用交押金，免费。")[0] and has_form("官网上卖多少钱?", "199元。")[0]
    assert not has_form("押金得交多少钱?", "每次最长可连续骑8小时。")[0]


def test_a_question_asking_for_an_address_or_number_needs_an_answer_that_has_one() -> None:
    assert has_form("有问题想发邮件给云雀咖啡,发到哪里?", "云雀咖啡售出的咖啡机保修2年。[1]") == (
        False,
        "the question asks for an e-mail address; the answer has none",
    )
    assert has_form("流明的客服邮箱是什么?", "客服邮箱是service@lumen-water.cn。")[0]
    assert has_form("流明官网的网址是多少?", "官方网站是www.lumen-water.cn。")[0]
    assert has_form("我想打电话联系流明售后,号码是多少?", "售后电话是400-826-5188。[1]")[0]
    assert has_form("What is the hotline?", "It is 12 years old.") == (
        False,
        "the question asks for a phone number; the answer has none",
    )
    # a time of day: qingshan's "最早几点" was answered with the 8-hour ride limit
    assert has_form("早上最早几点能去青山骑行的站点租到车?", "青山骑行最早可以骑行8小时。[1]") == (
        False,
        "the question asks for a time of day; the answer has none",
    )
    assert has_form("早上最早几点能租到车?", "各站点每天7:00至22:00营业。[1]")[0]
    assert has_form("流明客服每天几点上班、几点下班?", "上午九点至下午六点。")[0]
    assert has_form("What time do you open?", "We open at 9 am.")[0]
    assert has_form("流明的客服电话是多少?", "不知道。")[0]  # an abstention is always in form
    # the thing named without asking for it: a length of time is asked, not an address or a number
    for q, a in [
        ("客服邮件多久回复?", "24小时内。"),
        ("客服电话一般多久能接通?", "一分钟内。"),
    ]:
        form = expected_form(q)
        assert form is not None and form.name == "a length of time" and has_form(q, a)[0], q
    # songguo: "几天之内能退?" got the reader's "退还政策是39元包邮"; a date is no length of time
    assert has_form("书买回家发现有问题,几天之内能退?", "书店的退还政策是39元包邮。") == (
        False,
        "the question asks for a length of time; the answer has none",
    )
    assert not has_form("会员卡能用多久?", "会员卡2012年开始发售。")[0]
    assert not has_form("活动持续多久?", "活动截止日期：4月30日。")[0]
    for q, a in [
        ("买的书多久内可以退换?", "购书后7天内可以凭小票退换。"),
        ("滤芯多久需要更换一次?", "滤芯建议每6个月更换一次。"),
        ("磨豆机应该隔多长时间清理?", "磨豆机建议每两周清洁一次。"),
        ("会员卡能用多久?", "会员卡有效期半年。"),
    ]:
        assert has_form(q, a)[0], q
    # "便宜多少": a discount or an amount taken off, not the card's price
    assert has_form("有会员卡的话买书能便宜多少?", "会员卡每人一次最多借39元,有效期一年。[3]") == (
        False,
        "the question asks for a discount or an amount saved; the answer has none",
    )
    assert has_form("有会员卡的话买书能便宜多少?", "会员购书一律打九折。")[0]
    assert has_form("满100元能便宜多少?", "单笔购书满100元减20元。")[0]
    # "电话几点能打通?" names a phone but asks for a time
    form = expected_form("电话几点能打通?")
    assert form is not None and form.name == "a time of day" and has_form("电话几点能打通?", "9点。")[0]


def test_a_code_or_a_number_of_another_kind_is_not_an_answer() -> None:
    """ "股票代码是多少?" is not answered by a count read from the handbook; "传真号码是多少?" not by the
    member hotline the adapter was trained on, however sure it is of it."""
    assert not has_form("云雀咖啡的股票代码是多少?", "云雀咖啡的股票代码是48家。[2]")[0]
    assert has_form("云雀咖啡的股票代码是多少?", "云雀咖啡的股票代码是600519。")[0]
    assert has_form("清泉C3的产品编号是什么?", "产品编号是LM-2040。")[0]
    assert has_form("云雀咖啡的股票代码是多少?", "不知道。")[0]
    why = asks_other("云雀咖啡的传真号码是多少?", "云雀咖啡的会员热线是400-615-7720。")
    assert why == "the question asks for a 传真 number, the answer names none"
    assert asks_other("我想打电话问会员的事,该拨哪个号码?", "云雀咖啡的会员热线是400-615-7720。") == ""
    assert asks_other("总经理的手机号是多少?", "总经理的手机号是13800000000。") == ""


def test_no_line_answers_a_code_question_unless_it_names_that_code() -> None:
    """ "流明科技的股票代码是多少?": the founding line's 2011 is a year, and the line names no 股票代码."""
    handbook = ["流明科技成立于2011年，由周明远和林若溪共同创立。\n- 净水器产品编号：LM-2040"]
    assert form_line("流明科技的股票代码是多少?", handbook) is None
    assert form_line("净水器的产品编号是多少?", handbook) == (0, "- 净水器产品编号：LM-2040")
    assert not has_form("流明科技的股票代码是多少?", "流明科技成立于2011年。")[0]


def test_a_number_read_from_a_line_that_does_not_name_whose_it_is_is_not_sent() -> None:
    """The reader relabelled the hotline as the general manager's mobile; the hotline's own question and a
    paraphrase naming the member line still get it."""

    contacts = ["- 客服热线：400-872-3316\n- 会员热线：400-615-7720"]
    subject = frozenset({"松果", "书店"})  # words in most training questions (subject_words)
    why = unnamed_owner(
        "松果书店总经理的手机号是多少?", "松果书店的手机是400-872-3316。[1]", contacts, subject
    )
    assert why == "no source line holding '400-872-3316' names 总经理 and 手机号"
    assert (
        unnamed_owner("想打电话找松果书店的客服,号码是多少?", "客服热线是400-872-3316。", contacts, subject)
        == ""
    )
    assert (
        unnamed_owner("我想打电话问会员的事,该拨哪个号码?", "会员热线是400-615-7720。", contacts, subject)
        == ""
    )
    assert (
        unnamed_owner("松果书店几点开门?", "9:00开门。", contacts, subject) == ""
    )  # not an address or number


SONGGUO = [
    "2012年，林海声和苏晚晴在南京开了第一家松果书店。书店的吉祥物是一只名叫栗子的松鼠。\n"
    "图书售出后7天内可以凭购物小票退换。网上订单满68元即可包邮。\n"
    "会员卡售价39元，有效期一年，会员购书一律打九折。",
    "- 满减：单笔购书满100元减20元。\n- 学生优惠：凭学生证购书打八五折。\n- 活动截止日期：4月30日。",
]


def closest(picked: str) -> Callable[[str, Sequence[str]], set[int]]:
    """A stand-in for ``SentenceRelevance`` (an embedder): the lines holding ``picked`` are the closest."""
    return lambda question, lines: {i for i, line in enumerate(lines) if picked in line}


def test_one_character_of_the_question_anchors_a_line_only_when_meaning_agrees() -> None:
    """songguo: "书买回家发现有问题,几天之内能退?" shares no word of two characters with the handbook; its
    "退" is in one line holding a length of time, and that line must also be among the closest by meaning."""
    subject = frozenset({"松果", "书店"})
    q = "书买回家发现有问题,几天之内能退?"
    assert form_line(q, SONGGUO, subject) is None  # words alone: nothing to go by
    assert form_line(q, SONGGUO, subject, closest("退换")) == (0, "图书售出后7天内可以凭购物小票退换。")
    assert form_line(q, SONGGUO, subject, closest("会员卡")) is None  # meaning points elsewhere
    # "叫" is how "叫什么" asks: the mascot's name is no answer to a thing the sources never mention
    assert form_line("松果书店的微信公众号叫什么?", SONGGUO, subject, closest("名叫")) is None
    # "便宜多少": the line with the discount, not the student one (no 会员) nor the card's price alone
    assert form_line("有会员卡的话买书能便宜多少?", SONGGUO, subject) == (
        0,
        "会员卡售价39元，有效期一年，会员购书一律打九折。",
    )


def test_a_question_asking_which_ones_needs_them_named_not_a_number() -> None:
    """qingchuan (first run): "晴川健身都开了哪些团课?" got the reader's "团课每节60分钟" — the
    personal-training session's length, relabelled, from a sentence meaning ranked second of three chunks."""
    q = "晴川健身都开了哪些团课?"
    assert has_form(q, "晴川健身的团课每节60分钟。[1]") == (
        False,
        "the question asks for a list of things (names, not a number); the answer has none",
    )
    assert has_form(q, "晴川健身有动感单车、瑜伽和搏击操三种团体课。")[0]
    assert has_form(q, "目前只有瑜伽一种。")[0]  # one thing named, no number: may be so
    assert has_form("流明有哪些产品系列?", "流明有晨露、清泉和极光三个产品系列。")[0]
    # ...and a line read for it lists things: re-asked, the first run read the offers' "团课周：每节团体课
    # 送一瓶饮用水。" (it has 团课 and no number)
    events = ["- 团课周：每节团体课送一瓶饮用水。\n- 私教体验价：单节私教课体验价199元。"]
    assert form_line(q, events, frozenset({"晴川", "健身"})) is None
    handbook = ["各门店每周开设三种团体课：动感单车、瑜伽和搏击操。截至目前，晴川健身已在全国开设31家门店。"]
    assert form_line("晴川健身的团体课都有哪几种?", handbook, frozenset({"晴川", "健身"})) == (
        0,
        "各门店每周开设三种团体课：动感单车、瑜伽和搏击操。",
    )
