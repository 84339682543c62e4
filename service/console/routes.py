"""The web console served by ``imprint serve`` at ``/``: upload and preview data, start and watch fine-tuning
jobs, compare and promote adapters, browse knowledge bases, and ask one question of every route side by side.

    imprint serve --kb shop     # then open http://127.0.0.1:8000/ (Chinese or English; asks the key once)

The page (``static/index.html``, ``console.js``, ``console.css``) is plain HTML and JavaScript that calls the
same ``/v1/...`` API as the SDK with the key the user typed (kept in the tab's ``sessionStorage``); the page
and its assets are public, the data behind them is not. Charts use plotly.js from the installed ``plotly``
package: nothing is fetched from a CDN, so the console works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from training.errors import NotFound

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
# The browser itself enforces "offline": the page loads and calls only this server (plotly sets inline
# styles).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}


def plotly_js() -> Path:
    """plotly.js as the ``plotly`` Python package ships it (its offline HTML export uses the same file)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/")
async def index() -> FileResponse:
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=headers)


@router.get("/console/{asset}")
async def asset(asset: str) -> FileResponse:
    if asset not in ASSETS:
        raise NotFound(f"no console asset {asset!r}", code="not_found")
    path = plotly_js() if asset == "plotly.min.js" else STATIC / asset
    return FileResponse(path, media_type=ASSETS[asset], headers={"Cache-Control": "no-cache"})
