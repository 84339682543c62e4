"""What every OpenAI chat parameter does in Imprint — decided here, in one table, so none is silently ignored.

- HONOURED: ``messages`` (text parts), ``model``, ``max_tokens``/``max_completion_tokens``, ``temperature``,
  ``top_p`` (0 = greedy), ``stop``, ``seed``, ``stream``/``stream_options``, ``n`` (1 only),
  ``response_format`` (``text``, ``json_object``, ``json_schema`` — constrained decoding on both engines),
  ``logprobs``/``top_logprobs``, ``frequency_penalty``/``presence_penalty``, ``logit_bias``, ``tools`` with a
  FORCED ``tool_choice`` (``"required"`` or a named function: the arguments are constrained to the function's
  JSON Schema, as vLLM does for forced calls) or ``tool_choice: "none"``.
- ACCEPTED AS METADATA (they never change an answer, at OpenAI either): ``user``, ``metadata``,
  ``safety_identifier``, ``prompt_cache_key``, ``prompt_cache_retention``, ``service_tier``,
  ``parallel_tool_calls`` (one forced call is one call), ``store`` (false only: nothing is stored).
- VENDOR EXTRAS accepted: ``imprint`` (Imprint's namespace, reserved for request options; must be an object).
- REFUSED with a 400 whose ``param`` names the field and whose message says what to do: image/audio/file
  content parts (``messages[i].content[j]``), tool results in the conversation, ``n > 1``, ``tool_choice``
  ``"auto"`` (Imprint's models have no tool-calling template: force the call), ``audio``, ``modalities``
  other than text, ``prediction``, ``reasoning_effort``, ``verbosity``, ``web_search_options``, the
  deprecated ``functions``/``function_call`` — and any field nobody documents, as OpenAI itself answers
  ("Unrecognized request argument supplied").

    spec = check_request(req, vocab_size=len(tokenizer))   # raises InvalidInput(param=...) or → OutputSpec
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from service.schema import TEXT_PARTS, ChatCompletionRequest
from training.errors import InvalidInput
from training.generation import JSON_OBJECT_SCHEMA

METADATA = frozenset(
    {
        "user",
        "metadata",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
        "parallel_tool_calls",
        "store",
    }
)
VENDOR_EXTRAS = frozenset({"imprint"})
# Documented OpenAI fields Imprint cannot honour → what to do instead.
REFUSED = {
    "audio": "Imprint answers text only: remove 'audio'",
    "prediction": "predicted outputs are not supported: remove 'prediction'",
    "reasoning_effort": "Imprint's models do not reason in hidden steps: remove 'reasoning_effort'",
    "verbosity": "remove 'verbosity' and say how long the answer should be in the prompt",
    "web_search_options": "Imprint searches its own knowledge base, not the web: remove 'web_search_options'",
    "functions": "'functions' is deprecated: send 'tools' with a forced 'tool_choice'",
    "function_call": "'function_call' is deprecated: send 'tools' with a forced 'tool_choice'",
}


@dataclass(frozen=True)
class OutputSpec:
    """How the answer is shaped: plain text, JSON under a schema (``response_format``), or a forced tool
    call whose arguments are JSON under the function's parameters schema."""

    kind: Literal["text", "json", "tool"] = "text"
    json_schema: str | None = None  # what constrained decoding enforces
    tool: str | None = None  # the forced function's name; None with kind "tool": the output names it


def _refuse(param: str, message: str) -> InvalidInput:
    return InvalidInput(f"{param}: {message}", param=param, code="unsupported_parameter")


def check_fields(req: ChatCompletionRequest) -> None:
    for name, value in req.unknown_fields.items():
        if name in METADATA or value is None:
            continue
        if name in VENDOR_EXTRAS:
            if not isinstance(value, dict):
                raise _refuse(name, "Imprint's request extras must be an object")
            continue
        if name in REFUSED:
            raise _refuse(name, REFUSED[name])
        if name == "modalities":
            if value != ["text"]:
                raise _refuse(name, 'Imprint answers text only: send ["text"] or leave it out')
            continue
        raise InvalidInput(
            f"Unrecognized request argument supplied: {name} — remove it (README, 'OpenAI compatibility', "
            "lists what each parameter does here)",
            param=name,
            code="unknown_parameter",
        )
    if req.unknown_fields.get("store"):
        raise _refuse("store", "Imprint does not store completions: send store=false or leave it out")
    if req.n not in (None, 1):
        raise _refuse("n", "only one choice per request: send n=1 and repeat the request for more answers")


def check_messages(req: ChatCompletionRequest) -> None:
    for i, m in enumerate(req.messages):
        if m.role in ("tool", "function") or m.tool_calls:
            param = f"messages[{i}].tool_calls" if m.tool_calls else f"messages[{i}].role"
            raise _refuse(
                param,
                "tool calls and tool results cannot be rendered with this model's chat template: Imprint "
                "makes forced tool calls (structured extraction) and does not continue a tool conversation",
            )
        if isinstance(m.content, list):
            for j, part in enumerate(m.content):
                if part.type not in TEXT_PARTS:
                    raise _refuse(
                        f"messages[{i}].content[{j}]",
                        f"content part type {part.type!r} is not supported: Imprint's models read text "
                        "only — send the text (e.g. a transcript or a description) as a 'text' part",
                    )


def _schema_text(schema: Any, param: str) -> str:
    from training.logits import check_json_schema

    if not isinstance(schema, dict):
        raise InvalidInput(f"{param}: must be a JSON Schema object", param=param)
    text = json.dumps(schema, ensure_ascii=False)
    try:
        import jsonschema

        jsonschema.validators.validator_for(schema).check_schema(schema)
        check_json_schema(text)
    except Exception as exc:
        reason = getattr(exc, "message", None) or str(exc)
        raise InvalidInput(f"{param}: invalid JSON Schema: {reason}", param=param.split(".")[0]) from exc
    return text


def response_format_spec(fmt: dict[str, Any] | None) -> OutputSpec:
    kind = (fmt or {}).get("type", "text")
    if kind == "text":
        return OutputSpec()
    if kind == "json_object":
        return OutputSpec("json", JSON_OBJECT_SCHEMA)
    if kind == "json_schema":
        spec = (fmt or {}).get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidInput(
                "response_format: json_schema needs {'name': str, 'schema': {...}, 'strict'?: bool}",
                param="response_format",
            )
        schema = spec.get("schema", {"type": "object"})
        return OutputSpec("json", _schema_text(schema, "response_format.json_schema.schema"))
    raise InvalidInput(
        f"response_format: type {kind!r} is not supported: use 'text', 'json_object' or 'json_schema'",
        param="response_format",
    )


def _functions(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        fn = tool.get("function")
        if tool.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _refuse(f"tools[{i}]", "only {'type': 'function', 'function': {'name': ...}} tools exist")
        out[fn["name"]] = fn.get("parameters") or {"type": "object", "properties": {}}
    return out


def tool_spec(req: ChatCompletionRequest) -> OutputSpec | None:
    """The forced tool call, None when tools play no part (none sent, or ``tool_choice: "none"``)."""
    choice = req.tool_choice
    if not req.tools:
        if choice not in (None, "none", "auto"):
            raise InvalidInput("tool_choice: needs 'tools' to choose from", param="tool_choice")
        return None
    functions = _functions(req.tools)
    if choice == "none":
        return None
    if choice in (None, "auto"):
        raise _refuse(
            "tools" if choice is None else "tool_choice",
            "Imprint's models have no tool-calling chat template, so they cannot decide to call a tool: "
            "force the call with tool_choice='required' or {'type': 'function', 'function': {'name': ...}}",
        )
    if choice == "required":
        options = [
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for name, params in functions.items()
        ]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return OutputSpec("tool", _schema_text(schema, "tools"))
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if name not in functions:
        raise InvalidInput(
            f"tool_choice: {name!r} is not one of the tools {sorted(functions)}", param="tool_choice"
        )
    return OutputSpec("tool", _schema_text(functions[name], "tools"), tool=name)


def check_sampling(req: ChatCompletionRequest, vocab_size: int) -> None:
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidInput("top_logprobs: needs logprobs=true", param="top_logprobs")
    for key, bias in (req.logit_bias or {}).items():
        if not key.lstrip("-").isdigit() or not 0 <= int(key) < vocab_size:
            raise InvalidInput(
                f"logit_bias: {key!r} is not a token id of this model (0..{vocab_size - 1})",
                param="logit_bias",
            )
        if not -100 <= bias <= 100:
            raise InvalidInput(f"logit_bias: {bias} for token {key} is outside -100..100", param="logit_bias")


def check_request(req: ChatCompletionRequest, *, vocab_size: int) -> OutputSpec:
    """Refuse what cannot be honoured (InvalidInput naming the parameter); the output shape otherwise."""
    check_fields(req)
    check_messages(req)
    check_sampling(req, vocab_size)
    tool = tool_spec(req)
    fmt = response_format_spec(req.response_format)
    if tool is not None and fmt.kind != "text":
        raise InvalidInput(
            "response_format: a forced tool call already fixes the output's JSON; send one of the two",
            param="response_format",
        )
    return tool or fmt
