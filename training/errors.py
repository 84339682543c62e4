"""Imprint's error contract: every domain error is an ``ImprintError`` of one KIND; only HTTP maps kinds to
statuses (``service/errors.py``) and only the CLI maps them to exit codes (``service/cli``).

A message says what is wrong and how to fix it; ``param`` names the field (OpenAI's ``error.param``), ``code``
is a stable machine-readable word. Domain code never speaks HTTP:

    from training.errors import InvalidInput
    raise InvalidInput("n_epochs: -1 is outside 1..100 — use a number in range or auto", param="n_epochs")

Kinds (and the HTTP status ``service/errors.py`` gives them): invalid (400), auth (401), forbidden (403),
not_found (404), conflict (409), too_large (413), busy (429), upstream (502), unavailable (503),
timeout (504).
"""

from __future__ import annotations

from typing import ClassVar, Literal

Kind = Literal[
    "invalid",
    "auth",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "busy",
    "upstream",
    "unavailable",
    "timeout",
]


class ImprintError(Exception):
    """Base of every error Imprint raises on purpose; anything else is a bug."""

    kind: ClassVar[Kind] = "invalid"
    default_code: ClassVar[str] = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code


class InvalidInput(ImprintError):
    kind = "invalid"
    default_code = "invalid_request"


class Unauthorized(ImprintError):
    kind = "auth"
    default_code = "invalid_api_key"


class Forbidden(ImprintError):
    kind = "forbidden"
    default_code = "forbidden"


class NotFound(ImprintError):
    kind = "not_found"
    default_code = "not_found"


class Conflict(ImprintError):
    kind = "conflict"
    default_code = "conflict"


class TooLarge(ImprintError):
    kind = "too_large"
    default_code = "request_too_large"


class Busy(ImprintError):
    kind = "busy"
    default_code = "too_many_requests"


class UpstreamFailed(ImprintError):
    kind = "upstream"
    default_code = "engine_error"


class Unavailable(ImprintError):
    kind = "unavailable"
    default_code = "unavailable"


class TimedOut(ImprintError):
    kind = "timeout"
    default_code = "timeout"
