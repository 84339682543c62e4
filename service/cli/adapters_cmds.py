"""`imprint adapters list --service-url URL | promote NAME VERSION | rollback NAME` — the adapter registry
of a running service (``GET /v1/adapters``, ``POST /v1/adapters/{name}/promote|rollback``), through the openai
SDK's HTTP client (same keys as any client; promote and rollback need the ``load_adapters`` right).

    imprint adapters list --service-url http://127.0.0.1:8000
    imprint adapters promote family 2 --reason "reviewed"
    imprint adapters rollback family --reason "wrong prices in v3"
    imprint stale --adapter .imprint/adapters/family --kb family [--json]   # or --adapter NAME --service-url
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from service.cli._app import EXIT_PROBLEMS, adapters_app, app, reports_errors
from service.cli.jobs_cmds import API_KEY, SERVICE_URL, api_errors, sdk


def call(service_url: str, api_key: str | None, method: str, path: str, body: Any = None) -> Any:
    import httpx

    client = sdk(service_url, api_key)
    fn = client.get if method == "get" else client.post
    kwargs = {} if method == "get" else {"body": body or {}}
    response: httpx.Response = fn(path, cast_to=httpx.Response, **kwargs)  # type: ignore[operator]
    return response.json()


def print_registry(listing: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="adapter registry")
    for col in ("name", "version", "promoted", "served here", "created (UTC)", "job", "data", "scores"):
        table.add_column(col)
    for a in listing["data"]:
        for v in a["versions"]:
            table.add_row(
                a["name"],
                str(v["version"]),
                "yes" if v["promoted"] else "",
                "yes" if a["served_version"] == v["version"] else "",
                _utc(v["created_at"]),
                v["fine_tuning_job_id"] or "",
                (v["data_sha256"] or "")[:12],
                " ".join(f"{k}={s}" for k, s in sorted(v["scores"].items())),
            )
    Console().print(table)


def _utc(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@api_errors
def show_registry(service_url: str, api_key: str | None) -> None:
    print_registry(call(service_url, api_key, "get", "/adapters"))


@adapters_app.command("promote")
@api_errors
def adapters_promote(
    name: str = typer.Argument(..., help="Registry name (imprint-adapter:NAME)."),
    version: int = typer.Argument(..., help="The version to serve."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the promotion history)."),
    service_url: str = SERVICE_URL,
    api_key: str = API_KEY,
) -> None:
    """Serve VERSION of NAME on every replica (hot, no restart)."""
    a = call(
        service_url, api_key, "post", f"/adapters/{name}/promote", {"version": version, "reason": reason}
    )
    typer.echo(f"{a['name']}: version {a['promoted_version']} promoted")


@adapters_app.command("rollback")
@api_errors
def adapters_rollback(
    name: str = typer.Argument(..., help="Registry name."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the promotion history)."),
    service_url: str = SERVICE_URL,
    api_key: str = API_KEY,
) -> None:
    """Serve NAME's previously promoted version again."""
    a = call(service_url, api_key, "post", f"/adapters/{name}/rollback", {"reason": reason})
    typer.echo(f"{a['name']}: rolled back to version {a['promoted_version']}")


@app.command("stale")
@reports_errors
def stale_cmd(
    adapter: str = typer.Option(
        ..., "--adapter", help="An adapter folder, or a name served by --service-url."
    ),
    kb: str = typer.Option(..., "--kb", help="The knowledge base to check against (`imprint index`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    service_url: str = SERVICE_URL,
    api_key: str = API_KEY,
) -> None:
    """Which trained facts do documents modified after training contradict? (exit 1 when some do)"""
    import json

    if Path(adapter).is_dir():
        report = local_staleness(Path(adapter), kb)
    else:
        report = api_errors(call)(service_url, api_key, "get", f"/adapters/{adapter}/staleness?kb={kb}")
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print_staleness(report)
    if report["stale"]:
        raise typer.Exit(EXIT_PROBLEMS)


def local_staleness(adapter: Path, kb: str) -> dict[str, Any]:
    """The report on this machine: the serving pipeline of `imprint eval` (embedded engine) over DIR + KB."""
    import asyncio

    from eval.modes import EvalSession
    from service.lifecycle.staleness import staleness

    pipeline = EvalSession(adapter=adapter, kb=kb).pipeline()
    info = next(iter(pipeline.adapters.values()))
    return asyncio.run(staleness(pipeline, info, pipeline.kb, kb_name=kb, model="imprint-adapter"))


def print_staleness(report: dict[str, Any]) -> None:
    typer.echo(
        f"{report['adapter']} against {report['kb']}: {report['checked']} trained questions, "
        f"{len(report['stale'])} stale, {report['consistent']} consistent, {report['unclear']} unclear"
    )
    for s in report["stale"]:
        src = s["source"]
        typer.echo(f"  STALE {s['question']}")
        typer.echo(f"    trained:  {s['trained_answer']}")
        typer.echo(f"    document: {s['document_answer']}  ({src['source']}, modified {src['modified']})")
