"""The knowledge-base domain's errors, each one of ``training.errors``' kinds (HTTP and the CLI map the kind).

    from indexing.errors import KBNotFoundError
    raise KBNotFoundError("no knowledge base 'shop' under ~/.imprint/kb; create it with ...", param="name")

Nothing to run here; ``pytest tests/indexing/test_errors.py`` checks the kinds and codes.

``code`` keeps the machine-readable words the KB routes have always answered with (``kb_not_found``, ...).
Callers map errors by ``.kind`` (``service/errors.py``, the CLI), never by ``isinstance`` against a kind.
"""

from __future__ import annotations

from training.errors import Conflict, InvalidInput, NotFound


class KBError(InvalidInput):
    """A knowledge-base request that cannot be done as asked (bad name, path, filter, mode, settings)."""

    default_code = "kb_error"


class KBNotFoundError(NotFound):
    """No knowledge base by that name."""

    default_code = "kb_not_found"


class KBLockedError(Conflict):
    """Another writer holds the KB's lock for longer than the caller was willing to wait."""

    default_code = "kb_locked"


class EmbedderMismatchError(Conflict):
    """The KB's vectors were made by another embedder (or another dimension) than the one asked for."""

    default_code = "embedder_mismatch"


class ReadError(KBError):
    """A file could not be read; the message names the file (and line) and the fix.

    ``KnowledgeBase.index`` never raises it for a single bad file: it skips the file and lists it in
    ``IndexReport.skipped``. It is raised by the readers, for callers that read one file on purpose.
    """

    default_code = "unreadable_document"
