"""Debian's Chromium driven headless by Playwright (which cannot download its own browser here).

Skips when either is missing, as on a user's clone; `.ci/run` installs both."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# As the machine notes say Chromium needs here: no sandbox as root, no GPU, and none of its
# background connections (this machine's closed network refuses them, noisily).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """$TOKENLANE_CHROMIUM, else Debian's chromium; None when that file is not there."""
    wanted = os.environ.get("TOKENLANE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return wanted if Path(wanted).is_file() else None


def artifacts_dir() -> Path:
    """Where screenshots go: $TOKENLANE_TEST_ARTIFACTS, else test-artifacts/ (gitignored)."""
    path = Path(os.environ.get("TOKENLANE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Console:
    """Everything a page said went wrong: console errors, uncaught exceptions, failed loads."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"console: {m.text}"))
        page.on("pageerror", lambda exc: self.problems.append(f"exception: {exc}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"HTTP {r.status}: {r.url}"))
