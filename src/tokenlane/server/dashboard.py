"""`/dashboard`: a live page of what the gateway measured, and its data feed.

    GET  /dashboard                 the page (or, signed out, the sign-in form)
    POST /dashboard/login           the master key in a form body -> a signed session cookie
    POST /dashboard/logout          the cookie cleared
    GET  /dashboard/data            the feed the page polls (dashboard_feed.py); also takes
                                    `Authorization: Bearer <master key>` for scripts
    GET  /dashboard/static/<file>   the page's assets, shipped in the package (uPlot included)

Master keys, and virtual keys given the `dashboard` scope (a virtual key is a tenant, and the
page shows every tenant's traffic, so a key has it only when an admin says so). A scoped key's
session ends when the key is revoked, expires or loses the scope. With auth off (the demo) the
page is open, like every other endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import AuthenticationFailed, BodyTooLarge, UnsupportedMediaType, error_body
from ..keys import KeyNotFound, KeyService
from ..keys.records import VirtualKey
from ..routing.engine import Engine
from .dashboard_feed import build_feed
from .dashboard_session import COOKIE, DashboardSessions
from .served import DecisionLog
from .traffic import TrafficWindow

__all__ = ["DASHBOARD_PATH", "Dashboard", "dashboard_router"]

DASHBOARD_PATH = "/dashboard"
_LOGIN_BODY_LIMIT = 4096
_SCOPE = "dashboard"
_WHO = "a master key, or a virtual key with the dashboard scope"

# name -> content type: only these files are served, whatever the URL says.
_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
}
# Everything the page needs comes from this origin; no inline script can run.
_PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class Dashboard:
    """What the page shows beyond the live estimates, and who may see it.

    `traffic` and `decisions` are fed by the app (the engine's observation callback, and
    `served.RequestTap` once per client request)."""

    def __init__(self, engine: Engine, traffic: TrafficWindow, *, auth_enabled: bool,
                 master_keys: Sequence[str], decisions: int = 50,
                 wall: Callable[[], float] = time.time, keys: KeyService | None = None
                 ) -> None:
        self.engine = engine
        self.traffic = traffic
        self.decisions = DecisionLog(decisions)
        self.sessions = DashboardSessions(master_keys, wall=wall)
        self.auth_enabled = auth_enabled
        self._keys = keys  # virtual keys (None: keys off, master keys only)
        static = resources.files(__package__) / "static"
        self._assets = {name: (static / name).read_bytes() for name in _ASSETS}
        self._page = (static / "dashboard.html").read_bytes()
        self._login = (static / "login.html").read_text(encoding="utf-8")

    def feed(self) -> dict[str, Any]:
        now = self.engine.clock.now()
        return build_feed(self.engine.stats_report(), self.traffic.view(now),
                          self.decisions.view(now), now=now, window_s=self.traffic.span_s,
                          bucket_s=self.traffic.bucket_s)

    def signed_in(self, request: Request) -> bool:
        if not self.auth_enabled:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.viewer(token.strip()) is not None:
            return True
        holder = self.sessions.holder(request.cookies.get(COOKIE))
        if holder is None or holder == "":
            return holder == ""
        # A virtual key's session lasts only while the key is live and keeps the scope.
        try:
            return self._keys is not None and _may_see(self._keys.get(holder), self._keys.now())
        except KeyNotFound:
            return False

    def viewer(self, secret: str) -> str | None:
        """Who `secret` lets see the dashboard: "" for a master key, a scoped virtual key's
        id, or None."""
        if self.sessions.is_master_key(secret):
            return ""
        if self._keys is None or not secret:
            return None
        try:
            key = self._keys.authenticate(secret)
        except AuthenticationFailed:  # revoked or expired
            return None
        return key.id if key is not None and _may_see(key, self._keys.now()) else None

    def login_page(self, status: int = 200, message: str = "") -> Response:
        # `message` is one of ours, never the client's input: no escaping needed.
        body = self._login.replace("{{message}}", message)
        return Response(body, status, _PAGE_HEADERS, media_type="text/html; charset=utf-8")

    def page(self) -> Response:
        return Response(self._page, 200, _PAGE_HEADERS, media_type="text/html; charset=utf-8")

    def asset(self, name: str) -> Response | None:
        if name not in self._assets:
            return None
        return Response(self._assets[name], 200, {"cache-control": "max-age=300",
                                                   "x-content-type-options": "nosniff"},
                        media_type=_ASSETS[name])


dashboard_router = APIRouter()


def _dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard  # type: ignore[no-any-return]


@dashboard_router.get(DASHBOARD_PATH)
async def dashboard_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    return dashboard.page() if dashboard.signed_in(request) else dashboard.login_page()


@dashboard_router.get(DASHBOARD_PATH + "/data")
async def dashboard_data(request: Request) -> Response:
    dashboard = _dashboard(request)
    if not dashboard.signed_in(request):
        raise AuthenticationFailed(f"Sign in at /dashboard, or send {_WHO} as "
                                   "Authorization: Bearer YOUR_KEY.")
    return Response(orjson.dumps(dashboard.feed()), 200, {"cache-control": "no-store"},
                    media_type="application/json")


@dashboard_router.post(DASHBOARD_PATH + "/login")
async def dashboard_login(request: Request) -> Response:
    dashboard = _dashboard(request)
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("Sign in with the form at /dashboard.")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > _LOGIN_BODY_LIMIT:
            raise BodyTooLarge(f"Sign-in body is larger than {_LOGIN_BODY_LIMIT} bytes.")
    key = parse_qs(body.decode("utf-8", "replace")).get("key", [""])[0].strip()
    if not dashboard.auth_enabled:
        return _redirect(DASHBOARD_PATH)
    viewer = dashboard.viewer(key) if key else None
    if viewer is None:
        return dashboard.login_page(401, "That is not a master key of this gateway, nor a "
                                         "virtual key with the dashboard scope.")
    response = _redirect(DASHBOARD_PATH)
    response.set_cookie(COOKIE, dashboard.sessions.issue(viewer),
                        max_age=int(dashboard.sessions.ttl_s),
                        path=DASHBOARD_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@dashboard_router.post(DASHBOARD_PATH + "/logout")
async def dashboard_logout(request: Request) -> Response:
    response = _redirect(DASHBOARD_PATH)
    response.delete_cookie(COOKIE, path=DASHBOARD_PATH, httponly=True, samesite="strict")
    return response


@dashboard_router.get(DASHBOARD_PATH + "/static/{name}")
async def dashboard_asset(request: Request, name: str) -> Response:
    found = _dashboard(request).asset(name)
    if found is None:
        body = error_body(f"GET {request.url.path}: Not Found", "invalid_request_error", None,
                          "not_found")
        return Response(orjson.dumps(body), 404, media_type="application/json")
    return found


def _may_see(key: VirtualKey, now: float) -> bool:
    return key.revoked_at is None and not key.expired(now) and _SCOPE in key.spec.scopes


def _redirect(location: str) -> Response:
    # 303: the browser follows with a GET, so a reload does not post the form again.
    return Response(b"", 303, {"location": location, "cache-control": "no-store"})
