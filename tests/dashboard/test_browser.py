"""The dashboard in a real browser (headless Chromium): signed in through its form, empty at
first, then filled by traffic sent with the openai SDK; its numbers checked against
`/v1/router/stats`, a screenshot kept."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .browser import Console, artifacts_dir, browser
from .support import MASTER_KEY, Demo, demo

UPDATE_TIMEOUT_MS = 15_000
DASH = "—"


@pytest.fixture
def page() -> Any:
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()


def sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/dashboard")
    page.fill("#key", MASTER_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#models section.model", timeout=UPDATE_TIMEOUT_MS)


def updates(page: Any) -> int:
    return int(page.eval_on_selector("#status", "s => Number(s.dataset.updates || 0)"))


def wait_for_updates(page: Any, count: int) -> None:
    """`count` more polls rendered (each a fresh /dashboard/data)."""
    page.wait_for_function("n => Number(document.getElementById('status').dataset.updates) >= n",
                           arg=updates(page) + count, timeout=UPDATE_TIMEOUT_MS)


def table(page: Any) -> dict[str, dict[str, str]]:
    """Deployment id -> field -> the text shown."""
    return page.eval_on_selector_all("tr[data-deployment]", """rows => Object.fromEntries(
        rows.map(r => [r.dataset.deployment, Object.fromEntries(
            [...r.querySelectorAll('td[data-field]')].map(c => [c.dataset.field,
                                                                 c.textContent]))]))""")


def stats(d: Demo) -> dict[str, dict[str, Any]]:
    report = httpx.get(f"{d.url}/v1/router/stats",
                       headers={"authorization": f"Bearer {MASTER_KEY}"}).json()
    return {row["deployment"]: row for m in report["models"].values() for row in m["deployments"]}


def number(text: str) -> float:
    found = re.search(r"[-\d.]+", text)
    assert found, text
    return float(found.group())


def test_empty_then_live_and_matching_the_stats(page: Any) -> None:
    with demo() as d:
        console = Console(page)
        sign_in(page, d.url)
        wait_for_updates(page, 1)
        every = {dep for deps in d.deployments.values() for dep in deps}

        # Empty gateway: every deployment listed, nothing measured, nothing pretended.
        shown = table(page)
        assert set(shown) == every
        for row in shown.values():
            for field in ("decode_tps", "ttft_p50", "ttft_p90", "error_rate", "share",
                          "usd_per_request", "usd_per_m_tokens"):
                assert row[field] == DASH, (field, row)
            assert row["circuit"] == "closed" and row["samples"] == "0"
        assert page.is_visible("#empty") and page.is_visible("#no-decisions")
        assert page.locator("#decisions tbody tr").count() == 0
        # Two uPlot charts per model, each with a legend entry per deployment.
        assert page.locator(".chart .uplot").count() == 2 * len(d.deployments)
        legend = page.eval_on_selector_all(".u-legend .u-label", "ls => ls.map(l => l.textContent)")
        assert every <= {label.removesuffix(" p50").removesuffix(" p90") for label in legend}

        # Traffic while the page is open: it updates without a reload.
        d.traffic(24)
        page.wait_for_function("() => document.querySelectorAll('#decisions tbody tr').length > 0",
                               timeout=UPDATE_TIMEOUT_MS)
        wait_for_updates(page, 2)  # polled after the last request ended
        before = stats(d)
        shown = table(page)
        after = stats(d)
        assert not page.is_visible("#empty") and not page.is_visible("#no-decisions")

        measured = 0
        for dep, row in shown.items():
            est = before[dep]
            # Nothing ran between the two reads: the stats held still while the page was read.
            for key in ("decode_tps_p50", "ttft_p50_s", "ttft_p90_s", "samples", "error_rate"):
                assert est[key] == after[dep][key], key
            assert row["samples"] == str(est["samples"])
            assert row["circuit"] == est["circuit"]
            if est["samples"] == 0:
                assert row["decode_tps"] == DASH
                continue
            measured += 1
            assert abs(number(row["decode_tps"]) - est["decode_tps_p50"]) <= 0.5
            assert abs(number(row["ttft_p50"]) / 1000 - est["ttft_p50_s"]) <= 0.0005
            assert abs(number(row["ttft_p90"]) / 1000 - est["ttft_p90_s"]) <= 0.0005
            assert abs(number(row["error_rate"]) / 100 - est["error_rate"]) <= 0.0005
            assert int(row["attempts"]) > 0 and row["usd_per_request"].startswith("$")
        assert measured >= len(d.chat_models)  # at least one deployment of each model

        # The decisions list: the newest request first, with its why.
        first = page.locator("#decisions tbody tr").first.locator("td").all_text_contents()
        assert first[2] in every and first[3] in {"policy", "explore", "cold", "confirm",
                                                  "recheck", "trial", "only", "order"}
        assert page.locator("#decisions tbody tr").count() == 20  # the page shows the last 20

        shot = artifacts_dir() / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert console.problems == []


def test_wrong_key_stays_signed_out(page: Any) -> None:
    with demo() as d:
        page.goto(f"{d.url}/dashboard")
        page.fill("#key", "not-the-key")
        page.click("button[type=submit]")
        page.wait_for_selector(".message:has-text('not a master key')", timeout=UPDATE_TIMEOUT_MS)
        assert page.locator("#models").count() == 0
        cookies = page.context.cookies()
        assert cookies == []
