"""Defect 2 (generation cannot be stopped) and the request bounds that go with it, on the real app over a
real model whose answers never end by themselves (``chatty_base``: 20,000 tokens take minutes on CPU).

A dropped stream, a client that disconnects, the request timeout and SIGTERM must each stop the
generation within a token or two: the proof is that the NEXT request is answered at once instead of
waiting minutes behind the abandoned one (the engine has one worker). Also: ``max_tokens`` above the
configured limit is a 400 naming the field, and overlong stop strings are a 400 naming ``stop``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from tests.service.factories import start_serve

LONG = 20_000  # new tokens: minutes of work for the one engine worker if nothing stops it
QUICK_TIMEOUT_S = 20.0  # the next request waits behind a runaway generation far longer than this


def chat_body(max_tokens: int, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "imprint-adapter:alpha",
        "messages": [{"role": "user", "content": "Tell me everything."}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }


def abort_stream_after_first_content(url: str) -> None:
    """Open a long stream, read until the model has produced text, then hang up."""
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json=chat_body(LONG, stream=True), timeout=30
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {") and streamed_text(line):
                return


def streamed_text(line: str) -> str:
    choices = json.loads(line.removeprefix("data: ")).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


def next_request_is_answered(url: str) -> httpx.Response:
    """A short request after the abandoned one: answered only if the engine is free again."""
    r = httpx.post(url + "/v1/chat/completions", json=chat_body(2), timeout=QUICK_TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r


def test_defect2_dropped_streams_stop_generating(serve_chatty):
    """Five streams dropped mid-answer each used to keep the engine busy until max_tokens."""
    with serve_chatty() as (url, engine):
        for _ in range(5):
            abort_stream_after_first_content(url)
        next_request_is_answered(url)
        assert not engine.busy and engine.queued == 0


def test_defect2_client_disconnect_stops_a_plain_generation(serve_chatty):
    with serve_chatty() as (url, _):
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
            httpx.post(url + "/v1/chat/completions", json=chat_body(LONG), timeout=1.5)
        next_request_is_answered(url)
        metrics = httpx.get(url + "/metrics").text
    assert 'imprint_requests_total{route="adapter",status="499"} 1.0' in metrics


def test_defect2_request_timeout_stops_the_generation(serve_chatty):
    with serve_chatty(request_timeout_s=1.0) as (url, _):
        for stream in (False, True):
            r = httpx.post(url + "/v1/chat/completions", json=chat_body(LONG, stream=stream), timeout=60)
            if stream:  # headers went out already: the timeout is reported in-band
                assert r.status_code == 200 and '"code": "timeout"' in r.text, r.text[-300:]
            else:
                assert r.status_code == 504 and r.json()["error"]["code"] == "timeout", r.text
            next_request_is_answered(url)


def test_defect2_max_tokens_is_bounded_by_the_configured_limit(serve):
    with serve(max_tokens_limit=100) as url:
        for field in ("max_tokens", "max_completion_tokens"):
            for stream in (False, True):
                body = {
                    "model": "imprint-adapter:alpha",
                    "messages": [{"role": "user", "content": "hi"}],
                    field: 101,
                    "stream": stream,
                }
                r = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
                assert r.status_code == 400, r.text
                err = r.json()["error"]
                assert err["param"] == field and "100" in err["message"], err
        body["max_completion_tokens"] = 100
        body["stream"] = False
        assert httpx.post(url + "/v1/chat/completions", json=body, timeout=30).status_code == 200


STOPS = [("x" * 65, False), (["ok", "y" * 500], False), (["a", "b", "c", "d", "e"], False), ("z" * 64, True)]


def test_defect10_long_stop_strings_are_refused(serve):
    """Each long stop string used to cost seconds of engine time (transformers builds tables over the
    whole vocabulary for it); now they are bounded: 4 strings of at most 64 characters."""
    body = {
        "model": "imprint-adapter:alpha",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
    }
    with serve() as url:
        for stop, ok in STOPS:
            r = httpx.post(url + "/v1/chat/completions", json={**body, "stop": stop}, timeout=60)
            if ok:
                assert r.status_code == 200, r.text
            else:
                assert r.status_code == 400 and r.json()["error"]["param"] == "stop", (stop, r.text)


def test_defect2_sigterm_stops_the_server_during_a_long_generation(chatty_base, tmp_path):
    """SIGTERM (systemd, Kubernetes) with a 20,000-token stream running: in-flight requests get the grace
    period, then their generations stop and the process exits — it used to run on for minutes."""
    env = {"IMPRINT_HOME": str(tmp_path / "home"), "IMPRINT_MAX_TOKENS_LIMIT": "50000"}
    env["IMPRINT_SHUTDOWN_GRACE_S"] = "1"
    proc, url = start_serve(["--base-model", chatty_base.path], tmp_path, env)
    streaming = threading.Event()

    def client() -> None:
        body = {**chat_body(LONG, stream=True), "model": "imprint-base"}
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r,
        ):
            for _ in r.iter_lines():
                streaming.set()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        assert streaming.wait(60), "the stream never started"
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    thread.join(10)
    assert not thread.is_alive()  # the server closed the stream
