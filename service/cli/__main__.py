"""``python -m service.cli ARGS`` — the same as the ``imprint`` console script (subprocess tests use it, so
they run this checkout's code)."""

from service.cli import app

app()
