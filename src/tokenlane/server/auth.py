"""Gateway authentication: `Authorization: Bearer <master key>` (or `x-api-key`), keys from the
environment."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ..config import AuthSettings
from ..errors import AuthenticationFailed

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(
        self, settings: AuthSettings, env: Mapping[str, str], *, source: str = "<config>"
    ) -> None:
        """ConfigError naming `source` when auth is on and no key is set. `tokenlane check` and
        `serve` run the same check (`AuthSettings.master_keys`) with the file's name first."""
        self.enabled = settings.enabled
        self._keys = tuple(k.encode() for k in settings.master_keys(env, source=source))

    def check(self, authorization: str | None, x_api_key: str | None = None) -> None:
        """`Authorization: Bearer <key>`, or Anthropic's `x-api-key: <key>` (what its SDKs and
        Claude Code send with an API key); either one carrying a master key is enough."""
        if not self.enabled:
            return
        if not authorization and not x_api_key:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY) or the x-api-key header."
            )
        presented = []
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented.append(token.strip().encode())
        if x_api_key:
            presented.append(x_api_key.strip().encode())
        # Compare against every key without short-circuit so timing does not tell which.
        ok = False
        for candidate in presented:
            for key in self._keys:
                ok |= hmac.compare_digest(candidate, key)
        if not ok:
            raise AuthenticationFailed("Incorrect API key provided.")
