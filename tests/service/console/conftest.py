"""Fixtures of the console's browser tests: Debian's headless ``chromium`` driven by playwright (never
playwright's own browser download), screenshots kept as test artifacts, and a real KB built by
``imprint index``. A test that needs the browser is skipped where chromium or playwright is missing
(``make test`` installs both)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from tests.indexing.conftest import FAST_EMBEDDER, write_corpus

try:
    from playwright import sync_api
except ImportError:  # the dev extra is not installed
    sync_api = None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"  # git-ignored
KEY = "k-console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if sync_api is None or CHROMIUM is None:
        pytest.skip("needs playwright and Debian's chromium (`make test` installs both)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    """``shots(page, name)``: a full-page screenshot in tmp_path, copied to tests/artifacts/console/."""
    folder = tmp_path / "screenshots"
    folder.mkdir()

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path

    return take


@pytest.fixture
def kb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    docs, home = write_corpus(tmp_path / "docs"), tmp_path / "home"
    monkeypatch.setenv("IMPRINT_HOME", str(home))
    result = CliRunner().invoke(cli, ["index", str(docs), "--kb", "web", "--embedder", FAST_EMBEDDER])
    assert result.exit_code == 0, result.output
    return home


def open_console(browser: Any, url: str, key: str = KEY) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="en-US")
    # Errors the page logs (a script error, a blocked request, a Content-Security-Policy violation).
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    page.goto(url + "/")
    page.wait_for_selector("#key-panel:not([hidden])")
    page.fill("#api-key", key)
    page.click("#key-form button")
    return page
