"""A virtual key with the `dashboard` scope may see the dashboard (Bearer or signed in); one
without it may not, and revoking the key ends its sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tokenlane.server.dashboard_session import COOKIE

from ..contract import validate_error
from ..harness import Stack
from ..keys.support import admin, create_key, keyed_stack, quick


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Stack]:
    with keyed_stack([quick("fast")], {"m": ["fast"]}, str(tmp_path)) as s:
        yield s


def data(s: Stack, **kwargs: object) -> httpx.Response:
    return httpx.get(f"{s.url}/dashboard/data", **kwargs)  # type: ignore[arg-type]


def test_a_scoped_key_sees_the_feed_an_unscoped_one_does_not(gw: Stack) -> None:
    _, viewer = create_key(gw, name="ops", scopes=["dashboard"])
    _, tenant = create_key(gw, name="tenant")
    seen = data(gw, headers={"authorization": f"Bearer {viewer}"})
    assert seen.status_code == 200 and "m" in seen.json()["stats"]["models"]
    for secret in (tenant, viewer + "x"):
        refused = data(gw, headers={"authorization": f"Bearer {secret}"})
        assert refused.status_code == 401
        validate_error(refused.json())


def test_a_scoped_key_signs_in_and_revoking_it_ends_the_session(gw: Stack) -> None:
    key_id, viewer = create_key(gw, scopes=["dashboard"])
    _, tenant = create_key(gw)
    refused = httpx.post(f"{gw.url}/dashboard/login", data={"key": tenant})
    assert refused.status_code == 401 and COOKIE not in refused.cookies
    answer = httpx.post(f"{gw.url}/dashboard/login", data={"key": viewer})
    assert answer.status_code == 303
    cookie = answer.cookies[COOKIE]
    assert viewer not in cookie and key_id in cookie
    assert data(gw, cookies={COOKIE: cookie}).status_code == 200
    with admin(gw) as client:
        assert client.post(f"/admin/keys/{key_id}/revoke").status_code == 200
    assert data(gw, cookies={COOKIE: cookie}).status_code == 401


def test_a_forged_key_id_in_a_cookie_is_refused(gw: Stack) -> None:
    key_id, viewer = create_key(gw, scopes=["dashboard"])
    other_id, _ = create_key(gw, scopes=["dashboard"])
    cookie = httpx.post(f"{gw.url}/dashboard/login", data={"key": viewer}).cookies[COOKIE]
    forged = cookie.replace(key_id, other_id)
    assert data(gw, cookies={COOKIE: forged}).status_code == 401


def test_scopes_are_validated(gw: Stack) -> None:
    with admin(gw) as client:
        answer = client.post("/admin/keys", json={"scopes": ["root"]})
    assert answer.status_code == 400
    validate_error(answer.json())
