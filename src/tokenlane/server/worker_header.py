"""`x-tokenlane-worker` on every response of a `tokenlane serve --workers N` worker.

Which process answered is what an operator needs when workers disagree (each keeps its own
`/metrics` and, on the local state backend, its own estimates), and what proves in a test that
the port is really served by N processes. Pure ASGI, so streams pass through unbuffered.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "with_worker_header"]

HEADER = "x-tokenlane-worker"


def with_worker_header(app: ASGIApp, label: str) -> ASGIApp:
    """`app`, with `x-tokenlane-worker: <label>` added to each HTTP response's headers."""
    header = (HEADER.encode(), label.encode("latin-1"))

    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await app(scope, receive, send_labelled)

    return entry
