"""The knowledge-base domain's errors, each one of ``training.errors``' kinds (HTTP and the CLI map the kind).

    from indexing.errors import KBNotFoundError
    raise KBNotFoundError("no knowledge base 'shop' under ~/.imprint/kb; create it with ...", param="name")

Nothing to run here; ``pytest tests/indexing/test_errors.py`` checks the kinds and codes.

``code`` keeps the machine-readable words the KB routes have always answered with (``kb_not_found``, ...).

Transition: the not-found and conflict errors also derive from :class:`KBError` (their first base sets the
kind: ``KBNotFoundError.kind == "not_found"``), because ``service/cli.py`` still catches ``KBError`` and
would otherwise print a traceback for ``imprint kb stats missing``. Map errors by ``.kind``, never by
``isinstance`` against a kind. Once the CLI catches ``ImprintError``, drop ``KBError`` from those bases and
the ``type: ignore`` that the second kind costs.
"""

from __future__ import annotations

from training.errors import Conflict, InvalidInput, NotFound


class KBError(InvalidInput):
    """A knowledge-base request that cannot be done as asked (bad name, path, filter, mode, settings)."""

    default_code = "kb_error"


class KBNotFoundError(NotFound, KBError):  # type: ignore[misc]  # see the module docstring
    """No knowledge base by that name."""

    default_code = "kb_not_found"


class KBLockedError(Conflict, KBError):  # type: ignore[misc]  # see the module docstring
    """Another writer holds the KB's lock for longer than the caller was willing to wait."""

    default_code = "kb_locked"


class EmbedderMismatchError(Conflict, KBError):  # type: ignore[misc]  # see the module docstring
    """The KB's vectors were made by another embedder (or another dimension) than the one asked for."""

    default_code = "embedder_mismatch"


class ReadError(KBError):
    """A file could not be read; the message names the file (and line) and the fix.

    ``KnowledgeBase.index`` never raises it for a single bad file: it skips the file and lists it in
    ``IndexReport.skipped``. It is raised by the readers, for callers that read one file on purpose.
    """

    default_code = "unreadable_document"
