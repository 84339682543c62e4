"""The ONE place where errors become HTTP: ``{"error": {"message", "type", "param", "code"}}`` (OpenAI).

Domain code raises ``training.errors.ImprintError`` subclasses (invalid, not_found, conflict, busy, …);
``install_error_handlers(app)`` maps each kind to its status, FastAPI's validation errors to 400 with
``param`` naming the field (``messages.0.role``), and anything unexpected to a 500 without internals. Every
route of the app — chat, models, adapters, knowledge bases — answers errors through here, so the ``openai``
SDK raises the matching ``openai.*Error`` for all of them. Messages never show absolute server paths
(``service.redact``: the app's ``state.redactor`` knows the adapter and document roots).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.redact import PathRedactor
from training.errors import ImprintError, Kind

log = logging.getLogger("imprint.service")

STATUS: dict[Kind, int] = {
    "invalid": 400,
    "auth": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "busy": 429,
    "upstream": 502,
    "unavailable": 503,
    "timeout": 504,
}
# status → (OpenAI error type, default code)
ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("conflict_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "invalid_value"),
    429: ("rate_limit_error", "too_many_requests"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "engine_error"),
    503: ("server_error", "unavailable"),
    504: ("server_error", "timeout"),
}


def status_of(exc: ImprintError) -> int:
    return STATUS[exc.kind]


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    etype, default_code = ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", "error")
    )
    return {"error": {"message": message, "type": etype, "param": param, "code": code or default_code}}


def domain_error_body(exc: ImprintError, redactor: PathRedactor | None = None) -> tuple[int, dict[str, Any]]:
    status = status_of(exc)
    message = (redactor or PathRedactor()).text(exc.message)
    return status, error_body(status, message, param=exc.param, code=exc.code)


def redactor_of(request: Request) -> PathRedactor:
    return getattr(request.app.state, "redactor", None) or PathRedactor()


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, message, param=param, code=code), status_code=status, headers=headers
    )


def _param(loc: tuple[Any, ...]) -> str | None:
    # FastAPI prefixes "body"/"query"; OpenAI names the field itself ("messages.0.role").
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    param = _param(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON: " + str(first.get("msg")), None
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (f"{param}: {msg}{more}" if param else msg + more), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImprintError)
    async def _domain(request: Request, exc: ImprintError) -> JSONResponse:
        status, body = domain_error_body(exc, redactor_of(request))
        headers = {"Retry-After": "1"} if status == 429 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        # OpenAI answers malformed bodies with 400, not 422.
        return error_response(400, redactor_of(request).text(message), param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")
