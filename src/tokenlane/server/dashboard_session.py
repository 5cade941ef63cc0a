"""Signing in to the dashboard without the master key in a URL, a log line or a cookie.

A person types the master key once into the sign-in form (a POST body, which access logs do not
record); the gateway answers with a cookie holding an expiry and an HMAC of it under that master
key. Nothing is stored server-side, so every worker and replica that shares the master keys
accepts the cookie, and rotating a key away ends the sessions signed with it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

__all__ = ["COOKIE", "DashboardSessions"]

COOKIE = "tokenlane_dashboard"
_CONTEXT = b"tokenlane-dashboard-session\x00"


class DashboardSessions:
    def __init__(self, master_keys: Sequence[str], *, ttl_s: float = 12 * 3600,
                 wall: Callable[[], float] = time.time) -> None:
        """`wall`: Unix time (cookies outlive a process, so not the engine's monotonic clock)."""
        self._keys = tuple(k.encode() for k in master_keys)
        self.ttl_s = ttl_s
        self._wall = wall

    def is_master_key(self, presented: str) -> bool:
        ok = False
        for key in self._keys:  # every one, so timing does not tell which matched
            ok |= hmac.compare_digest(presented.encode(), key)
        return ok

    def issue(self) -> str:
        """A cookie value signed with the first master key (the current one)."""
        expires = int(self._wall() + self.ttl_s)
        return f"{expires}.{_sign(self._keys[0], expires)}"

    def valid(self, cookie: str | None) -> bool:
        if not cookie or not self._keys:
            return False
        expires, _, mac = cookie.partition(".")
        if not expires.isdigit() or int(expires) <= self._wall():
            return False
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(mac, _sign(key, int(expires)))
        return ok


def _sign(key: bytes, expires: int) -> str:
    return hmac.new(key, _CONTEXT + str(expires).encode(), hashlib.sha256).hexdigest()
