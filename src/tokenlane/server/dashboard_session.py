"""Signing in to the dashboard without a key in a URL, a log line or a cookie.

A person types a master key (or a virtual key with the `dashboard` scope) once into the sign-in
form (a POST body, which access logs do not record); the gateway answers with a cookie holding
an expiry, the virtual key's id for a virtual key, and an HMAC of both under the current master
key. Nothing is stored server-side, so every worker and replica that shares the master keys
accepts the cookie, and rotating a master key away ends the sessions signed with it. A virtual
key's session is only as good as the key: the caller checks the key is still live and scoped.
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

    def issue(self, key_id: str = "") -> str:
        """A cookie value signed with the first master key (the current one); `key_id`: a
        virtual key's session ("": a master key's)."""
        expires = int(self._wall() + self.ttl_s)
        subject = f"{key_id}." if key_id else ""
        return f"{expires}.{subject}{_sign(self._keys[0], expires, key_id)}"

    def holder(self, cookie: str | None) -> str | None:
        """Who a valid, unexpired cookie was issued to: "" for a master key, else the virtual
        key's id; None when the cookie is not one of ours or has expired."""
        if not cookie or not self._keys:
            return None
        parts = cookie.split(".")
        if len(parts) not in (2, 3):
            return None
        expires, key_id, mac = (parts[0], "", parts[1]) if len(parts) == 2 else parts
        if not expires.isdigit() or int(expires) <= self._wall() or len(parts) == 3 and not key_id:
            return None
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(mac, _sign(key, int(expires), key_id))
        return key_id if ok else None

    def valid(self, cookie: str | None) -> bool:
        """A master key's session, valid and unexpired."""
        return self.holder(cookie) == ""


def _sign(key: bytes, expires: int, key_id: str) -> str:
    # A master key's session signs what it always did, so sessions outlive this change.
    message = _CONTEXT + str(expires).encode() + (b"." + key_id.encode() if key_id else b"")
    return hmac.new(key, message, hashlib.sha256).hexdigest()
