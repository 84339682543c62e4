"""The web console: one page at ``/`` over the public HTTP API (``service.console.routes``)."""
