"""The simulator's ASGI app: chat completions straight to their bare handler, the rest to
Starlette routes.

    POST /{provider}/v1/chat/completions   `chat.ChatCompletions` (the hot path)
    POST /{provider}/v1/messages           the same, speaking Anthropic (`anthropic_wire`)
    anything else                          `routes.build_routes` (models, /_sim control, 404s)
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from ..clock import Clock
from .anthropic_wire import ANTHROPIC
from .chat import ChatCompletions
from .counters import CounterBoard
from .provider import ProviderState
from .routes import build_routes

__all__ = ["SimApp", "build_app"]

_CHAT_SUFFIX = "/v1/chat/completions"
_MESSAGES_SUFFIX = "/v1/messages"


class SimApp:
    """Pure-ASGI front door: one string check picks the hot path, no router on the way."""

    def __init__(self, chat: ChatCompletions, rest: ASGIApp,
                 messages: ChatCompletions | None = None) -> None:
        self._chat = chat
        self._rest = rest
        self._messages = messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.endswith(_CHAT_SUFFIX):
                name = path[1 : -len(_CHAT_SUFFIX)]
                if name and "/" not in name:
                    await self._chat(name, scope, receive, send)
                    return
            elif self._messages is not None and path.endswith(_MESSAGES_SUFFIX):
                name = path[1 : -len(_MESSAGES_SUFFIX)]
                if name and "/" not in name:
                    await self._messages(name, scope, receive, send)
                    return
        await self._rest(scope, receive, send)


def build_app(providers: Mapping[str, ProviderState], board: CounterBoard, clock: Clock) -> SimApp:
    """The ASGI app serving `providers`, counting into `board`, waiting on `clock`."""
    return SimApp(ChatCompletions(providers, board, clock), build_routes(providers, board),
                  ChatCompletions(providers, board, clock, ANTHROPIC))
