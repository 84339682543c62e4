"""Each KB error is one kind of training.errors (what HTTP and the CLI map), with its stable code."""

from __future__ import annotations

import pytest

from indexing.errors import EmbedderMismatchError, KBError, KBLockedError, KBNotFoundError, ReadError
from training.errors import Conflict, ImprintError, InvalidInput, NotFound


@pytest.mark.parametrize(
    ("cls", "kind_cls", "kind", "code"),
    [
        (KBError, InvalidInput, "invalid", "kb_error"),
        (KBNotFoundError, NotFound, "not_found", "kb_not_found"),
        (KBLockedError, Conflict, "conflict", "kb_locked"),
        (EmbedderMismatchError, Conflict, "conflict", "embedder_mismatch"),
        (ReadError, InvalidInput, "invalid", "unreadable_document"),
    ],
)
def test_kinds_codes_and_params(
    cls: type[ImprintError], kind_cls: type[ImprintError], kind: str, code: str
) -> None:
    err = cls("KB 'shop': what is wrong; how to fix it", param="name")
    assert isinstance(err, kind_cls)
    assert (err.kind, err.code, err.param, str(err)) == (
        kind,
        code,
        "name",
        "KB 'shop': what is wrong; how to fix it",
    )
    assert cls("x", code="custom").code == "custom"
