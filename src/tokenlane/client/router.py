"""`Router`: the gateway's routing engine in your own process, no server in between.

    with Router("config/tokenlane.yaml") as router:
        reply = router.chat(model="llama-3.3-70b", messages=[{"role": "user", "content": "Hi"}],
                            provider={"sort": "throughput"})
        print(reply.text, reply.decision.chosen, reply.observation.ttft_s)

Same config file, same engine (`tokenlane.routing.engine.Engine`, built by `build_engine` as
the gateway builds its own), same request parsing: what the gateway would do with a request,
the router does. The engine runs on a private event loop in a background thread (see
`_runner`), so `chat` works from plain threads and `achat` from any event loop, concurrently.
`messages` / `amessages` take Anthropic's Messages API instead, translated as the gateway's
`POST /v1/messages` translates it; `embeddings` / `aembeddings` route embeddings.
"""

from __future__ import annotations

import os
import random
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..config import Settings, load_settings, parse_settings
from ..request import ChatRequest, chat_request_from_body
from ..routing.build import build_engine, build_prober
from ..routing.engine import Completion
from ..routing.passthrough import Passthrough, PassthroughAnswer
from ..routing.stream import ChatStream
from ..stats.observation import Observation
from ..surfaces.messages_reply import message_from_completion
from ..surfaces.messages_request import chat_body_from_messages
from ..surfaces.passthrough import passthrough_request
from ..types import Catalog
from . import _chat, _embeddings, _messages
from ._closing import AsyncClosing, Closing
from ._message_events import AsyncMessageEvents, MessageEvents
from ._runner import AsyncQueueSource, EngineRunner, ThreadQueueSource
from .anthropic_results import AnthropicMessage
from .results import ChatCompletion, Embeddings, RouterStats
from .route import RouteInfo
from .streams import AsyncMessageStream, AsyncStream, MessageStream, Stream

__all__ = ["ConfigSource", "Router"]

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | Settings
"""A YAML file's path, the same structure as a dict, or validated `Settings`."""


class Router(Closing, AsyncClosing):
    """Route chat requests across providers by measured speed, reliability and price,
    in-process.

    `config` is what `tokenlane serve --config` takes (a YAML path), the same as a dict, or
    `Settings`. Provider keys are read from `env` (default: `os.environ`); a missing one is a
    `ConfigError` now, not at the first request. A `sim:` section is ignored: start simulated
    providers yourself (`tokenlane.sim.Simulator`). `clock` and `rng` are for tests;
    `on_observation` is called, on the router's thread, with what every attempt measured.

    `settings` and `catalog` are what the config validated and resolved to.

    Thread-safe; use `chat`/`stats`/`close` from threads and `achat`/`astats`/`aclose` from
    async code, or both. Close it (or use `with`/`async with`) to release upstream connections.
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        on_observation: Callable[[Observation], None] | None = None,
    ) -> None:
        self.settings, self.catalog = _load(config, os.environ if env is None else env)
        engine = build_engine(self.settings, self.catalog, clock=clock, rng=rng,
                              on_observation=on_observation)
        self._runner = EngineRunner(engine, build_prober(self.settings, engine))
        self._passthrough = Passthrough(engine)  # embeddings, on the same engine
        # Never closed: close when collected, or at interpreter exit at the latest.
        weakref.finalize(self, _close_abandoned, self._runner)

    @property
    def closed(self) -> bool:
        """True once `close()`/`aclose()` was called."""
        return self._runner.closed

    def models(self) -> list[str]:
        """The public model names this router serves."""
        return list(self.catalog.models)

    # -- chat -------------------------------------------------------------------------------

    chat = _chat.chat
    achat = _chat.achat

    def _create(self, body: dict[str, Any]) -> ChatCompletion | Stream:
        request = chat_request_from_body(body)
        runner = self._runner
        if not request.stream:
            return _completion(runner.call(lambda: runner.engine.complete(request)))
        source = ThreadQueueSource(runner, owner=self)
        opened = runner.call(lambda: runner.open_stream(request, source))
        return Stream(source, decision=_decision(opened), deployment=opened.deployment.id)

    async def _acreate(self, body: dict[str, Any]) -> ChatCompletion | AsyncStream:
        request = chat_request_from_body(body)
        runner = self._runner
        if not request.stream:
            return _completion(await runner.acall(lambda: runner.engine.complete(request)))
        source = AsyncQueueSource(runner, owner=self)
        opened = await runner.acall(lambda: runner.open_stream(request, source))
        return AsyncStream(source, decision=_decision(opened), deployment=opened.deployment.id)

    # -- messages (Anthropic's API, translated as the gateway's /v1/messages does) ----------

    messages = _messages.messages
    amessages = _messages.amessages

    def _message(self, body: dict[str, Any], betas: Sequence[str]
                 ) -> AnthropicMessage | MessageStream:
        request = _messages_request(body, betas)
        runner = self._runner
        if not request.stream:
            done = runner.call(lambda: runner.engine.complete(request))
            return _message_of(done, request)
        source = ThreadQueueSource(runner, owner=self)
        opened = runner.call(lambda: runner.open_stream(request, source))
        return MessageStream(MessageEvents(source, request.model, request.prompt_tokens),
                             decision=_decision(opened), deployment=opened.deployment.id)

    async def _amessage(self, body: dict[str, Any], betas: Sequence[str]
                        ) -> AnthropicMessage | AsyncMessageStream:
        request = _messages_request(body, betas)
        runner = self._runner
        if not request.stream:
            return _message_of(await runner.acall(lambda: runner.engine.complete(request)),
                               request)
        source = AsyncQueueSource(runner, owner=self)
        opened = await runner.acall(lambda: runner.open_stream(request, source))
        return AsyncMessageStream(
            AsyncMessageEvents(source, request.model, request.prompt_tokens),
            decision=_decision(opened), deployment=opened.deployment.id)

    # -- embeddings -------------------------------------------------------------------------

    embeddings = _embeddings.embeddings
    aembeddings = _embeddings.aembeddings

    def _embed(self, body: dict[str, Any]) -> Embeddings:
        request = passthrough_request("embeddings", body)
        return _embedded(self._runner.call(lambda: self._passthrough.embed(request)))

    async def _aembed(self, body: dict[str, Any]) -> Embeddings:
        request = passthrough_request("embeddings", body)
        return _embedded(await self._runner.acall(lambda: self._passthrough.embed(request)))

    # -- stats ------------------------------------------------------------------------------

    def stats(self) -> RouterStats:
        """The live per-deployment estimates routing runs on (what `/v1/router/stats` serves)."""
        runner = self._runner
        return RouterStats.from_dict(runner.call(_report(runner)))

    async def astats(self) -> RouterStats:
        """`stats()` for async code."""
        runner = self._runner
        return RouterStats.from_dict(await runner.acall(_report(runner)))

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel requests and streams still running, close upstream connections, stop the
        router's thread. Idempotent; later calls to `chat` raise RuntimeError."""
        self._runner.close()

    async def aclose(self) -> None:
        """`close()` for async code (does not block the caller's loop)."""
        await self._runner.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Router {state} models={self.models()}>"


def _load(config: ConfigSource, env: Mapping[str, str]) -> tuple[Settings, Catalog]:
    if isinstance(config, Settings):
        settings, source = config, "<settings>"
    elif isinstance(config, Mapping):
        settings, source = parse_settings(dict(config), source="<dict>"), "<dict>"
    elif isinstance(config, (str, os.PathLike)):
        settings, source = load_settings(config), str(Path(config))
    else:
        raise TypeError(f"config must be a path, a mapping or Settings, not "
                        f"{type(config).__name__}")
    return settings, settings.resolve(env, source=source)


def _embedded(answer: PassthroughAnswer) -> Embeddings:
    return Embeddings(answer.body, decision=_decision(answer), deployment=answer.deployment.id,
                      observation=answer.observation)


def _decision(stream: ChatStream | Completion | PassthroughAnswer) -> RouteInfo | None:
    decision = stream.decision
    return RouteInfo.from_dict(decision.to_dict()) if decision is not None else None


def _completion(done: Completion) -> ChatCompletion:
    return ChatCompletion(done.body, decision=_decision(done), deployment=done.deployment.id,
                          observation=done.observation)


def _messages_request(body: dict[str, Any], betas: Sequence[str]) -> ChatRequest:
    request = chat_request_from_body(chat_body_from_messages(body))
    request.upstream_headers = _messages.beta_headers(betas)
    return request


def _message_of(done: Completion, request: ChatRequest) -> AnthropicMessage:
    return AnthropicMessage(message_from_completion(done.body, request.model),
                            decision=_decision(done), deployment=done.deployment.id,
                            observation=done.observation)


def _close_abandoned(runner: EngineRunner) -> None:
    if runner.on_loop_thread():  # the last reference went away on the router's own thread
        threading.Thread(target=runner.close, name="tokenlane-router-close").start()
    else:
        runner.close(timeout=5.0)


def _report(runner: EngineRunner) -> Callable[[], Any]:
    async def report() -> dict[str, Any]:
        return runner.engine.stats_report()

    return report
