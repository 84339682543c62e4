"""Who may do what: a bearer key becomes a ``Principal`` (full access, or what its ``ScopedKey`` grants);
which knowledge bases the ``/v1/kb`` routes reach; where ``POST /v1/adapters`` may load from. Pure
functions over ``ServeConfig``; ``service.deps`` turns them into FastAPI dependencies.

    principal = authenticate(settings, request.headers.get("authorization"))
    principal.require_read("shop")                    # Forbidden (403) naming the KB it may not read
    require_exposed_kb(settings, "other")             # NotFound (404) unless the operator exposed it
    path = resolve_adapter_path(settings, "family-v2")  # inside an adapter root, else Forbidden (param path)

Keys from ``api_keys`` have full access; ``scoped_keys`` have only what they list. With no key configured
at all the server is open (``ServeConfig`` allows that on loopback only). An empty key is never a key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from service.config import ScopedKey, ServeConfig
from training.errors import Forbidden, InvalidInput, NotFound, Unauthorized

Action = Literal["reindex", "load_adapters", "jobs"]
ACTION_NAMES: dict[Action, str] = {
    "reindex": "re-index knowledge bases",
    "load_adapters": "load adapters",
    "jobs": "run jobs",
}
# Linux limits (PATH_MAX, NAME_MAX); longer input is refused before the filesystem sees it.
MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class Principal:
    """What the caller's key allows. ``kbs=None``: every KB the server exposes."""

    kbs: frozenset[str] | None = None
    reindex: bool = True
    load_adapters: bool = True
    jobs: bool = True

    @classmethod
    def of(cls, scoped: ScopedKey) -> Principal:
        kbs = None if "*" in scoped.kbs else frozenset(scoped.kbs)
        return cls(kbs, scoped.reindex, scoped.load_adapters, scoped.jobs)

    def may_read(self, kb: str) -> bool:
        return self.kbs is None or kb in self.kbs

    def require_read(self, kb: str, *, param: str | None = "name") -> None:
        if not self.may_read(kb):
            raise Forbidden(
                f"this API key may not read knowledge base {kb!r} (it may read: "
                f"{sorted(self.kbs or []) or 'none'}); ask the operator to add it to the key's kbs",
                param=param,
                code="kb_not_allowed",
            )

    def require(self, action: Action) -> None:
        if not getattr(self, action):
            raise Forbidden(
                f"this API key may not {ACTION_NAMES[action]}; ask the operator for a key with "
                f"'{action}: true' (scoped_keys)",
                code=f"{action}_not_allowed",
            )


FULL_ACCESS = Principal()


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(settings: ServeConfig, authorization: str | None) -> Principal:
    """The caller's rights from its ``Authorization`` header; Unauthorized (401) for a missing/bad key."""
    if not settings.keyed:
        return FULL_ACCESS
    token = bearer_token(authorization)
    # Every configured key is compared (constant time each), so timing does not tell which kind matched.
    full = any(secrets.compare_digest(token, k) for k in settings.api_keys if k)
    scoped = [s for s in settings.scoped_keys if s.key and secrets.compare_digest(token, s.key)]
    if token and full:
        return FULL_ACCESS
    if token and scoped:
        return Principal.of(scoped[0])
    raise Unauthorized(
        "missing or invalid API key: send 'Authorization: Bearer <key>' with a key the operator configured "
        "(api_keys / IMPRINT_API_KEYS)"
    )


def kb_exposed(settings: ServeConfig, name: str) -> bool:
    return name == settings.kb or "*" in settings.exposed_kbs or name in settings.exposed_kbs


def require_exposed_kb(settings: ServeConfig, name: str) -> None:
    """Only the served KB (and those the operator lists in ``exposed_kbs``) are reachable over HTTP."""
    if not kb_exposed(settings, name):
        served = f"it serves {settings.kb!r}" if settings.kb else "it serves no knowledge base"
        raise NotFound(
            f"knowledge base {name!r} is not available on this server ({served}); the operator can make "
            "more reachable with exposed_kbs",
            param="name",
            code="kb_not_found",
        )


def check_path_length(raw: str, param: str = "path") -> None:
    if len(raw) > MAX_PATH_CHARS or any(len(part) > MAX_NAME_CHARS for part in raw.split("/")):
        raise InvalidInput(
            f"{param}: too long ({len(raw)} characters; at most {MAX_PATH_CHARS}, "
            f"{MAX_NAME_CHARS} per folder name)",
            param=param,
            code="path_too_long",
        )


def resolve_adapter_path(settings: ServeConfig, raw: str) -> Path:
    """The adapter folder ``raw`` names, inside one of the allowed adapter roots (a relative ``raw`` is
    taken inside the first root). Symlinks and ``..`` are resolved first, so they cannot lead outside."""
    check_path_length(raw)
    if "\x00" in raw:
        raise InvalidInput("path: contains a NUL character", param="path", code="invalid_path")
    roots = settings.allowed_adapter_roots()
    given = Path(raw)
    try:
        path = (given if given.is_absolute() else roots[0] / given).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise InvalidInput(f"path: cannot be resolved ({type(exc).__name__})", param="path") from None
    if not any(path.is_relative_to(root) for root in roots):
        raise Forbidden(
            "path: adapters can only be loaded from the server's adapter folders (adapter_roots, default "
            "$IMPRINT_HOME/adapters); pass a folder inside one, e.g. a name like 'family-v2'",
            param="path",
            code="path_not_allowed",
        )
    return path
