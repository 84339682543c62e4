"""Demo part 2: serve a trained adapter next to a knowledge base whose facts change; ask via the openai SDK.

    python -m eval.demo_serve ADAPTER_DIR [WORKDIR]     # `imprint demo` calls run_serve_demo after training

Steps: index a small document set (one price that will change) → start the service (embedded engine) → ask a
question the adapter learned, one only the documents answer, and one nobody can → edit the price document →
re-index through the HTTP API (no restart) → ask again. Prints each answer with its route and citations.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = {
    "shop/prices.md": (
        "# 价格表\n\n| 商品 | 价格 | 库存 |\n|---|---|---|\n"
        "| 星光台灯 | {price}元 | {stock} |\n| 云朵枕头 | 89元 | 40 |\n"
    ),
    "shop/delivery.md": "# 配送说明\n\n发往杭州的订单通常2天内送达。其他地区需要5天左右。\n",
}
QUESTIONS = ["老大是谁?", "星光台灯多少钱?", "明天北京会下雨吗?"]


def _write_docs(root: Path, price: int, stock: int) -> None:
    for rel, text in DOCS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(price=price, stock=stock), encoding="utf-8")


def _show(console: Any, title: str, question: str, reply: Any) -> dict[str, Any]:
    info = reply.model_extra["imprint"]
    answer = reply.choices[0].message.content
    cites = [f"[{c['id']}] {c['doc_id']}" + (" ✓" if c["cited"] else "") for c in info["citations"]]
    console.print(f"[bold]{title}[/bold] {question} → [green]{answer}[/green]")
    console.print(
        f"    route={info['route']} ({info['reason']}); sources: {', '.join(cites) or '—'}; "
        f"prompt tokens {reply.usage.prompt_tokens}"
    )
    return {"question": question, "answer": answer, "route": info["route"], "citations": info["citations"]}


def run_serve_demo(adapter_dir: Path, workdir: Path, *, kb_name: str = "demo-shop") -> dict[str, Any]:
    import httpx
    import openai
    from rich.console import Console

    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig

    console = Console()
    workdir = Path(workdir).resolve()
    docs = workdir / "docs"
    _write_docs(docs, price=199, stock=12)
    console.rule("demo part 2: serve the adapter next to a knowledge base")
    report = KnowledgeBase.open(kb_name, create=True).index([docs], progress=False)
    console.print(f"indexed {docs}: {report}")
    app = create_app(ServeConfig(adapters=[Path(adapter_dir)], kb=kb_name), kb=get_kb(kb_name))
    results: dict[str, Any] = {"before": [], "after": []}
    with serve_in_thread(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="demo", max_retries=0, timeout=600)

        def ask(q: str) -> Any:
            return client.chat.completions.create(
                model="imprint", max_tokens=48, temperature=0, messages=[{"role": "user", "content": q}]
            )

        for q in QUESTIONS:
            results["before"].append(_show(console, "before", q, ask(q)))
        _write_docs(docs, price=149, stock=3)
        r = httpx.post(f"{url}/v1/kb/{kb_name}/reindex", timeout=300).json()
        console.print(
            f"price changed 199元 → 149元; POST /v1/kb/{kb_name}/reindex → updated={r.get('updated')}"
        )
        results["after"].append(_show(console, "after ", QUESTIONS[1], ask(QUESTIONS[1])))
    return results


if __name__ == "__main__":
    run_serve_demo(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path(".imprint/demo"))
