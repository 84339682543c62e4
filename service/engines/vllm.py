"""vLLM engine: a vLLM OpenAI server over HTTP (httpx, async). An adapter is a vLLM LoRA module selected by
``model``; adapters the server does not have yet are hot-loaded with ``POST /v1/load_lora_adapter`` (the
server
needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). Prompts go to ``/v1/completions`` as the token ids the app
rendered with the adapter's chat template, so vLLM and the embedded engine see exactly the same input.

The OpenAI sampling parameters travel as vLLM's ``/v1/completions`` takes them: a JSON Schema as
``structured_outputs: {"json": schema}`` (vLLM's xgrammar backend — the same grammar the embedded engine
compiles), ``frequency_penalty``/``presence_penalty``/``logit_bias``, and ``logprobs: k`` with
``return_tokens_as_token_ids`` so tokens come back as ids (``token_id:N``) and map onto ``TokenLogprob``.

    engine = VLLMEngine("http://127.0.0.1:8000", adapters={"family": Path("adapters/family")})
    await engine.start()
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from service.engines.base import EngineBusy, EngineError, StreamDelta
from training.generation import GenerationRequest, GenerationResult, TokenLogprob

log = logging.getLogger("imprint.engine.vllm")


class VLLMEngine:
    kind = "vllm"

    def __init__(
        self,
        url: str,
        *,
        adapters: dict[str, Path] | None = None,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        max_concurrency: int = 64,
        stop_token_ids: list[int] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # End-of-turn tokens (Gemma's <end_of_turn>) need not be the model's EOS for vLLM; without them
        # generation runs on past the answer, unlike the embedded engine.
        self.stop_token_ids = list(stop_token_ids or [])
        self._initial = dict(adapters or {})
        self._names: list[str] = []
        self.base_model: str | None = None
        self.max_context: int | None = None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self._active = 0
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.url, headers=self._headers, timeout=httpx.Timeout(self.timeout_s, connect=5.0)
            )
        return self._client

    async def start(self) -> None:
        models = await self._models()
        bases = [m["id"] for m in models if not m.get("parent")]
        if not bases:
            raise EngineError(f"vLLM at {self.url} serves no base model")
        self.base_model = bases[0]
        self.max_context = next(m.get("max_model_len") for m in models if m["id"] == self.base_model)
        self._names = [m["id"] for m in models if m.get("parent")]
        for name, path in self._initial.items():
            if name not in self._names:
                await self.add_adapter(name, path)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _models(self) -> list[dict[str, Any]]:
        try:
            r = await self.client.get("/v1/models")
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM at {self.url} is not reachable: {exc!r}") from exc
        return list(r.json().get("data", []))

    async def ready(self) -> bool:
        try:
            r = await self.client.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and self.base_model is not None

    def adapters(self) -> list[str]:
        return list(self._names)

    async def add_adapter(self, name: str, path: Path) -> None:
        if name in self._names:  # vLLM refuses to replace a module in place; unload, then load the new files
            await self.client.post("/v1/unload_lora_adapter", json={"lora_name": name})
            self._names.remove(name)
        r = await self.client.post(
            "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(Path(path).resolve())}
        )
        if r.status_code != 200:
            raise EngineError(
                f"vLLM refused adapter {name!r} from {path}: HTTP {r.status_code} {r.text[:300]} "
                "(is VLLM_ALLOW_RUNTIME_LORA_UPDATING=True set for the server, and the rank "
                "≤ --max-lora-rank?)"
            )
        self._names.append(name)
        log.info("hot-loaded adapter %s into vLLM", name)

    def _body(self, req: GenerationRequest, stream: bool) -> dict[str, Any]:
        if req.adapter is not None and req.adapter not in self._names:
            raise EngineError(f"adapter {req.adapter!r} is not loaded in vLLM (loaded: {self._names})")
        body: dict[str, Any] = {
            "model": req.adapter or self.base_model,
            "prompt": list(req.prompt_ids),
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stop": list(req.stop) or None,
            "seed": req.seed,
            "stream": stream,
            "skip_special_tokens": True,
            "stop_token_ids": self.stop_token_ids or None,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if req.json_schema is not None:
            body["structured_outputs"] = {"json": json.loads(req.json_schema)}
        if req.logprobs is not None:
            body.update(logprobs=req.logprobs, return_tokens_as_token_ids=True)
        if req.frequency_penalty or req.presence_penalty:
            body.update(frequency_penalty=req.frequency_penalty, presence_penalty=req.presence_penalty)
        if req.logit_bias:
            body["logit_bias"] = {str(t): b for t, b in req.logit_bias.items()}
        return body

    def _logprobs(self, req: GenerationRequest, data: dict[str, Any] | None) -> list[TokenLogprob] | None:
        """vLLM's completions logprobs (``token_id:N`` strings) → TokenLogprob; the end-of-turn token that
        ends the answer is left out, as the embedded engine does."""
        if req.logprobs is None or not data:
            return None
        out = []
        for token, lp, top in zip(data["tokens"], data["token_logprobs"], data["top_logprobs"], strict=True):
            token_id = int(token.removeprefix("token_id:"))
            if token_id in self.stop_token_ids:
                continue
            pairs = ((int(t.removeprefix("token_id:")), v) for t, v in (top or {}).items())
            ranked = sorted(pairs, key=_rank)
            out.append(TokenLogprob(token_id, float(lp), tuple(ranked[: req.logprobs])))
        return out

    def _claim(self) -> None:
        if self._active >= self.max_concurrency:
            raise EngineBusy(
                f"{self._active} requests in flight to vLLM (max_concurrency={self.max_concurrency})"
            )
        self._active += 1

    async def generate(self, req: GenerationRequest) -> GenerationResult:
        body = self._body(req, stream=False)
        self._claim()
        try:
            r = await self.client.post("/v1/completions", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM request failed: {exc!r}") from exc
        finally:
            self._active -= 1
        if r.status_code != 200:
            raise EngineError(f"vLLM answered HTTP {r.status_code}: {r.text[:300]}")
        data = r.json()
        choice, usage = data["choices"][0], data.get("usage") or {}
        return GenerationResult(
            choice["text"],
            usage.get("prompt_tokens", len(req.prompt_ids)),
            usage.get("completion_tokens", 0),
            "length" if choice.get("finish_reason") == "length" else "stop",
            self._logprobs(req, choice.get("logprobs")),
        )

    async def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]:
        body = self._body(req, stream=True)
        self._claim()
        text, finish, usage = "", "stop", {}
        logprobs: list[TokenLogprob] | None = [] if req.logprobs is not None else None
        try:
            async with self.client.stream("POST", "/v1/completions", json=body) as r:
                if r.status_code != 200:
                    raise EngineError(f"vLLM answered HTTP {r.status_code}: {(await r.aread())[:300]!r}")
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    data = json.loads(line[6:])
                    usage = data.get("usage") or usage
                    for choice in data.get("choices", []):
                        lps = self._logprobs(req, choice.get("logprobs"))
                        if lps and logprobs is not None:
                            logprobs += lps
                        if choice.get("text"):
                            text += choice["text"]
                            yield StreamDelta(choice["text"], logprobs=lps or None)
                        if choice.get("finish_reason"):
                            finish = "length" if choice["finish_reason"] == "length" else "stop"
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM stream failed: {exc!r}") from exc
        finally:
            self._active -= 1
        yield GenerationResult(
            text,
            usage.get("prompt_tokens", len(req.prompt_ids)),
            usage.get("completion_tokens", 0),
            finish,  # type: ignore[arg-type]
            logprobs,
        )


def _rank(item: tuple[int, float]) -> tuple[float, int]:
    return (-item[1], item[0])


async def wait_ready(url: str, timeout_s: float = 180.0) -> None:
    """Poll ``/v1/models`` until the server answers (vLLM needs 30–60 s on CPU)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            try:
                if (await client.get(f"{url.rstrip('/')}/v1/models")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise EngineError(f"vLLM at {url} did not come up within {timeout_s:.0f} s")
            await asyncio.sleep(1.0)
