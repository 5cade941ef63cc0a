"""The Python library: route in-process, or talk to a running gateway.

- `Router`: the gateway's engine in your process (same config, same routing, no server).
  `chat` / `achat` return OpenAI-shaped results that also say how they were routed
  (`decision`) and what was measured (`observation`); `messages` / `amessages` take and
  return Anthropic's Messages API shapes (`AnthropicMessage`, `MessageStream` of
  `AnthropicEvent`s); `embeddings`; `stats()` gives the live estimates.
- `Client` / `AsyncClient`: a running gateway over HTTP, with typed routing options, the
  decision from the `x-tokenlane-route` header and errors as the same typed exceptions.
- `openai_extra`, `decision_from`, `error_from`: the same with the official openai SDK.

Layout: `_wire` (sans-I/O: bodies, error mapping, SSE), `route` (the decision), `results`,
`anthropic_results` and `streams` (what is returned), `_chat`, `_messages`, `_embeddings` and
`_closing` (the signatures and lifetime the classes share), `_message_events` (an in-process
stream's chunks as Anthropic events), `_runner` (the engine's loop thread), `router`, `gateway` and `openai_compat`.
`build_engine` is the one construction path of an engine, shared with the server.
"""

from ..errors import (
    Attempt,
    AuthenticationFailed,
    BodyTooLarge,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    TokenlaneError,
    UpstreamRejected,
)
from ..routing.build import build_engine, build_prober
from ..routing.options import MaxPrice, Percentiles, Require, RoutingOptions
from ..routing.stream import StreamBroken
from ..stats.observation import Observation
from ._chat import Messages
from ._wire import ProviderArg
from .anthropic_results import AnthropicEvent, AnthropicMessage
from .gateway import AsyncClient, Client, GatewayUnreachable
from .openai_compat import (
    HasHeaders,
    HasResponse,
    OpenAIExtra,
    ResponseLike,
    decision_from,
    error_from,
    openai_extra,
)
from .results import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    DeploymentStats,
    Embeddings,
    FunctionCall,
    Message,
    ModelStats,
    RouterStats,
    ToolCall,
    Usage,
)
from .route import RouteCandidate, RouteInfo, parse_route_header
from .router import ConfigSource, Router
from .streams import AsyncMessageStream, AsyncStream, MessageStream, Stream

__all__ = [
    "AnthropicEvent",
    "AnthropicMessage",
    "AsyncClient",
    "AsyncMessageStream",
    "AsyncStream",
    "Attempt",
    "AuthenticationFailed",
    "BodyTooLarge",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Choice",
    "ChunkChoice",
    "Client",
    "ConfigSource",
    "Delta",
    "DeploymentStats",
    "Embeddings",
    "FunctionCall",
    "GatewayUnreachable",
    "HasHeaders",
    "HasResponse",
    "InvalidRequest",
    "MaxPrice",
    "Message",
    "MessageStream",
    "Messages",
    "ModelNotFound",
    "ModelStats",
    "NoDeploymentAvailable",
    "Observation",
    "OpenAIExtra",
    "Percentiles",
    "ProviderArg",
    "Require",
    "ResponseLike",
    "RouteCandidate",
    "RouteInfo",
    "Router",
    "RouterStats",
    "RoutingOptions",
    "Stream",
    "StreamBroken",
    "TokenlaneError",
    "ToolCall",
    "UpstreamRejected",
    "Usage",
    "build_engine",
    "build_prober",
    "decision_from",
    "error_from",
    "openai_extra",
    "parse_route_header",
]
