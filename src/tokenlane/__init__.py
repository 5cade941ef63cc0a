"""tokenlane: route LLM requests across providers by measured TTFT, decode speed, reliability
and price. As a gateway (`tokenlane serve`) or in-process, as a library:

    from tokenlane import Router

    with Router("config/tokenlane.yaml") as router:
        reply = router.chat(model="llama-3.3-70b",
                            messages=[{"role": "user", "content": "Hello"}],
                            provider={"sort": "throughput"})
        print(reply.text, reply.decision.chosen, reply.observation.ttft_s)

`Client` / `AsyncClient` talk to a running gateway; `openai_extra`, `decision_from` and
`error_from` help the official openai SDK do the same. Every error is a `TokenlaneError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # What `__getattr__` resolves, for type checkers: every name of `tokenlane.client` (the
    # library; `__all__` below picks the ones `from tokenlane import *` takes) and ConfigError.
    from .client import *
    from .config import ConfigError

    __version__: str

__all__ = [
    "AnthropicMessage",
    "AsyncClient",
    "AsyncMessageStream",
    "AsyncStream",
    "Attempt",
    "AuthenticationFailed",
    "BodyTooLarge",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Client",
    "ConfigError",
    "DeploymentStats",
    "GatewayUnreachable",
    "InvalidRequest",
    "MaxPrice",
    "MessageStream",
    "ModelNotFound",
    "ModelStats",
    "NoDeploymentAvailable",
    "Observation",
    "Percentiles",
    "Require",
    "RouteCandidate",
    "RouteInfo",
    "Router",
    "RouterStats",
    "RoutingOptions",
    "Stream",
    "StreamBroken",
    "TokenlaneError",
    "UpstreamRejected",
    "__version__",
    "decision_from",
    "error_from",
    "openai_extra",
    "parse_route_header",
]

# Imported on first use (PEP 562): `tokenlane check` or `import tokenlane.config` should not pay
# for the engine, httpx and aiohttp.
def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value: Any = version("tokenlane")
        except PackageNotFoundError:  # pragma: no cover - a source tree, not installed
            value = "0+unknown"
    elif name == "ConfigError":
        from .config import ConfigError as value
    else:
        client = None if name.startswith("__") else importlib.import_module("tokenlane.client")
        if client is None or name not in client.__all__:
            raise AttributeError(f"module 'tokenlane' has no attribute {name!r}")
        value = getattr(client, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
