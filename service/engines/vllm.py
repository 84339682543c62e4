"""vLLM engine: a vLLM OpenAI server over HTTP (httpx, async). An adapter is a vLLM LoRA module selected by
``model``; adapters the server does not have yet are hot-loaded with ``POST /v1/load_lora_adapter`` (the
server needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). Prompts go to ``/v1/completions`` as the token ids
the app rendered with the adapter's chat template, so vLLM and the embedded engine see exactly the same
input.

The OpenAI sampling parameters travel as vLLM's ``/v1/completions`` takes them: a JSON Schema as
``structured_outputs: {"json": schema}`` (vLLM's xgrammar backend — the same grammar the embedded engine
compiles), ``frequency_penalty``/``presence_penalty``/``logit_bias``, and ``logprobs: k`` with
``return_tokens_as_token_ids`` so tokens come back as ids (``token_id:N``) and map onto ``TokenLogprob``.

Hot-swap is load-then-switch: a new version is loaded under a NEW vLLM name (``family@v2``), probed with a
one-token completion, and only then does the served name point at it; the old version is unloaded once no
request uses it. A refused or failing load answers 400 (``param: "path"``) and changes nothing. A request
that is given up (client gone, timeout, shutdown) closes its HTTP request, which makes vLLM abort it.

    engine = VLLMEngine("http://127.0.0.1:8000", adapters={"family": Path("adapters/family")})
    await engine.start()
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from service.engines.base import AdapterLoadFailed, EngineBusy, EngineError, StreamDelta
from service.engines.peft_swap import UNCHANGED, WEIGHTS, check_fits, skeleton, weight_shapes
from training.errors import InvalidInput
from training.generation import GenerationRequest, GenerationResult, TokenLogprob

log = logging.getLogger("imprint.engine.vllm")
VERSION_MARK = "@v"  # vLLM name of a hot-loaded version: "<served name>@v<n>"


def served_name(vllm_name: str) -> tuple[str, int]:
    """("family", 3) for "family@v3"; ("family", 0) for a module vLLM was started with."""
    name, mark, n = vllm_name.rpartition(VERSION_MARK)
    return (name, int(n)) if mark and n.isdigit() else (vllm_name, 0)


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
        base_model_dir: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # End-of-turn tokens (Gemma's <end_of_turn>) need not be the model's EOS for vLLM; without them
        # generation runs on past the answer, unlike the embedded engine.
        self.stop_token_ids = list(stop_token_ids or [])
        self._initial = dict(adapters or {})
        # The served base model's folder: hot-loads are checked against its modules before vLLM sees them.
        self.base_model_dir = base_model_dir
        self._skeleton: Any = None
        self._served: dict[str, str] = {}  # served adapter name → the vLLM LoRA name answering it
        self._inflight: Counter[str] = Counter()  # vLLM LoRA name → requests using it
        self._version = 0
        self._retiring: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected mid-wait
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
        # A module vLLM started with serves its own name; a version an earlier Imprint hot-loaded
        # ("family@v3") serves "family", the newest version winning.
        loras = [m["id"] for m in models if m.get("parent")]
        for vllm_name in sorted(loras, key=lambda n: served_name(n)[1]):
            name, version = served_name(vllm_name)
            self._served[name] = vllm_name
            self._version = max(self._version, version)
        for name, path in self._initial.items():
            if name not in self._served:
                await self.add_adapter(name, path)

    async def close(self) -> None:
        for task in list(self._retiring):  # the server may unload them itself; nothing waits any more
            task.cancel()
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
        return list(self._served)

    def vllm_name(self, name: str) -> str | None:
        """The vLLM model name now answering for the served adapter ``name`` (``family@v3``)."""
        return self._served.get(name)

    async def add_adapter(self, name: str, path: Path) -> None:
        """Load ``path`` beside the serving version, probe it, switch ``name`` to it, retire the old one."""
        await asyncio.to_thread(self._check, name, Path(path))
        self._version += 1
        new = f"{name}{VERSION_MARK}{self._version}"
        await self._load(new, name, path)
        try:
            await self._probe(new)
        except Exception:
            await self._unload(new)
            raise
        old = self._served.get(name)
        self._served[name] = new  # the switch: requests from now on use the new version
        if old is not None:
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        log.info("hot-loaded adapter %s into vLLM as %s (replacing %s)", name, new, old)

    def _check(self, name: str, path: Path) -> None:
        """Unreadable weights, or modules/shapes the base model does not have: a 400 before vLLM sees them."""
        try:
            if self.base_model_dir is None:
                weight_shapes(path / WEIGHTS, name)
                return
            if self._skeleton is None:
                self._skeleton = skeleton(self.base_model_dir)
            check_fits(self._skeleton, path, name)
        except InvalidInput as exc:
            raise type(exc)(f"{exc.message}; {UNCHANGED}", param="path") from exc

    async def _load(self, vllm_name: str, name: str, path: Path) -> None:
        try:
            r = await self.client.post(
                "/v1/load_lora_adapter", json={"lora_name": vllm_name, "lora_path": str(Path(path).resolve())}
            )
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM at {self.url} is not reachable: {exc!r}") from exc
        if r.status_code == 200:
            return
        # vLLM answers 500 for an adapter it cannot load, too: if it is otherwise healthy, blame the adapter.
        if r.status_code >= 500 and not await self.ready():
            raise EngineError(f"vLLM failed loading adapter {name!r}: HTTP {r.status_code} {r.text[:300]}")
        raise AdapterLoadFailed(
            f"vLLM refused adapter {name!r}: HTTP {r.status_code} {r.text[:300]} (was it trained on the "
            "served base model, with rank ≤ --max-lora-rank? VLLM_ALLOW_RUNTIME_LORA_UPDATING=True must be "
            f"set for the server); {UNCHANGED}",
            param="path",
        )

    async def _probe(self, vllm_name: str) -> None:
        body = {"model": vllm_name, "prompt": [0], "max_tokens": 1, "temperature": 0}
        try:
            r = await self.client.post("/v1/completions", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM did not answer the probe of {vllm_name!r}: {exc!r}") from exc
        if r.status_code != 200:
            raise AdapterLoadFailed(
                f"the new adapter version does not answer a probe (HTTP {r.status_code} "
                f"{r.text[:300]}); {UNCHANGED}",
                param="path",
            )

    async def _unload(self, vllm_name: str) -> None:
        try:
            await self.client.post("/v1/unload_lora_adapter", json={"lora_name": vllm_name})
        except httpx.HTTPError as exc:
            log.warning("could not unload %s from vLLM: %r", vllm_name, exc)

    async def _retire(self, vllm_name: str) -> None:
        """Unload a replaced version once no request uses it (at most ``timeout_s`` later)."""
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while self._inflight[vllm_name] and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if vllm_name not in self._served.values():
            await self._unload(vllm_name)

    def _body(self, req: GenerationRequest, stream: bool) -> dict[str, Any]:
        if req.adapter is not None and req.adapter not in self._served:
            raise EngineError(f"adapter {req.adapter!r} is not loaded in vLLM (loaded: {list(self._served)})")
        body: dict[str, Any] = {
            "model": self._served[req.adapter] if req.adapter is not None else self.base_model,
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

    def _claim(self, model: str) -> None:
        if self._active >= self.max_concurrency:
            raise EngineBusy(
                f"{self._active} requests in flight to vLLM (max_concurrency={self.max_concurrency})"
            )
        self._active += 1
        self._inflight[model] += 1

    def _release(self, model: str) -> None:
        self._active -= 1
        self._inflight[model] -= 1

    async def generate(self, req: GenerationRequest) -> GenerationResult:
        body = self._body(req, stream=False)
        self._claim(body["model"])
        try:  # a cancelled caller closes this request, and vLLM aborts the generation
            r = await self.client.post("/v1/completions", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"vLLM request failed: {exc!r}") from exc
        finally:
            self._release(body["model"])
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
        self._claim(body["model"])
        text, finish, usage = "", "stop", {}
        logprobs: list[TokenLogprob] | None = [] if req.logprobs is not None else None
        try:  # leaving this block early (consumer gone) closes the stream, and vLLM aborts the request
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
            self._release(body["model"])
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
