"""Gateway authentication: `Authorization: Bearer <master key>`, keys from the environment."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ..config import AuthSettings, ConfigError
from ..errors import AuthenticationFailed

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(self, settings: AuthSettings, env: Mapping[str, str]) -> None:
        self.enabled = settings.enabled
        raw = env.get(settings.master_keys_env, "") if settings.enabled else ""
        self._keys = tuple(k.strip().encode() for k in raw.split(",") if k.strip())
        if self.enabled and not self._keys:
            raise ConfigError(
                f"server.auth.master_keys_env: environment variable {settings.master_keys_env} "
                "is not set (set it, or disable auth explicitly with server.auth.enabled: false)"
            )

    def check(self, authorization: str | None) -> None:
        if not self.enabled:
            return
        if not authorization:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY)."
            )
        scheme, _, token = authorization.partition(" ")
        presented = token.strip().encode()
        # Compare against every key without short-circuit so timing does not tell which.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(presented, key)
        if scheme.lower() != "bearer" or not ok:
            raise AuthenticationFailed("Incorrect API key provided.")
