"""The simulator's ASGI app: chat completions straight to their bare handler, the rest to
Starlette routes.

    POST /{provider}/v1/chat/completions   `chat.ChatCompletions` (the hot path)
    POST /{provider}/v1/messages           the same, speaking Anthropic (`anthropic_wire`)
    POST /{provider}/v1/completions        legacy text completions (`completions_wire`)
    POST /{provider}/v1/embeddings         embeddings (`embeddings_wire`)
    anything else                          `routes.build_routes` (models, /_sim control, 404s)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from ..clock import Clock
from .anthropic_wire import ANTHROPIC
from .chat import ChatCompletions
from .completions_wire import COMPLETIONS
from .counters import CounterBoard
from .embeddings_wire import Embeddings
from .provider import ProviderState
from .routes import build_routes

__all__ = ["SimApp", "build_app"]

_CHAT_SUFFIX = "/v1/chat/completions"
_MESSAGES_SUFFIX = "/v1/messages"
# Handlers of one provider's request: (provider name, scope, receive, send).
Handler = Callable[[str, Scope, Receive, Send], Awaitable[None]]


class SimApp:
    """Pure-ASGI front door: one string check picks the hot path, no router on the way."""

    def __init__(self, chat: ChatCompletions, rest: ASGIApp,
                 messages: ChatCompletions | None = None,
                 more: Mapping[str, Handler] | None = None) -> None:
        self._chat = chat
        self._rest = rest
        self._messages = messages
        self._more = tuple((more or {}).items())  # path suffix -> handler, off the hot path

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
            for suffix, handler in self._more:
                name = path[1 : -len(suffix)] if path.endswith(suffix) else ""
                if name and "/" not in name:
                    await handler(name, scope, receive, send)
                    return
        await self._rest(scope, receive, send)


def build_app(providers: Mapping[str, ProviderState], board: CounterBoard, clock: Clock) -> SimApp:
    """The ASGI app serving `providers`, counting into `board`, waiting on `clock`."""
    return SimApp(ChatCompletions(providers, board, clock), build_routes(providers, board),
                  ChatCompletions(providers, board, clock, ANTHROPIC),
                  {"/v1/completions": ChatCompletions(providers, board, clock, COMPLETIONS),
                   "/v1/embeddings": Embeddings(providers, board, clock)})
