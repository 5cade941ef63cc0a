"""What the library returns: OpenAI-shaped results with typed attribute access (pure).

Results are thin views over the wire dicts (`.raw`, exactly what OpenAI's API would send):
attribute access reads the dict, nothing is copied or validated per chunk, and fields a
provider adds beyond OpenAI's schema are still in `.raw`. With the `openai` package installed,
`to_openai()` gives the SDK's own pydantic model.

Every result also says how it was routed: `decision` (a `RouteInfo`), `deployment`, and, in
process, `observation` (what the attempt measured: TTFT, decode tokens/s, tokens, cost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..stats.observation import Observation
from .route import RouteInfo

if TYPE_CHECKING:
    import openai.types.chat

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "Choice",
    "ChunkChoice",
    "Delta",
    "DeploymentStats",
    "Embeddings",
    "FunctionCall",
    "Message",
    "ModelStats",
    "RouterStats",
    "ToolCall",
    "Usage",
]


class _View:
    """A typed window onto one wire dict."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.raw == self.raw

    __hash__ = None  # type: ignore[assignment]  # views over mutable dicts are not hashable

    def _str(self, key: str) -> str | None:
        value = self.raw.get(key)
        return value if isinstance(value, str) else None


class Usage(_View):
    """Token counts of one request."""

    __slots__ = ()

    @property
    def prompt_tokens(self) -> int:
        """Tokens in the prompt."""
        return int(self.raw.get("prompt_tokens") or 0)

    @property
    def completion_tokens(self) -> int:
        """Tokens generated."""
        return int(self.raw.get("completion_tokens") or 0)

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return int(self.raw.get("total_tokens") or self.prompt_tokens + self.completion_tokens)


class FunctionCall(_View):
    """The function part of a tool call (in a stream: one piece of it)."""

    __slots__ = ()

    @property
    def name(self) -> str | None:
        """The function's name (absent from later stream pieces)."""
        return self._str("name")

    @property
    def arguments(self) -> str:
        """JSON-encoded arguments (in a stream: the next piece of them)."""
        return self._str("arguments") or ""


class ToolCall(_View):
    """A tool call the model made (in a stream: one piece of it, located by `index`)."""

    __slots__ = ()

    @property
    def id(self) -> str | None:
        """The call's id, to answer it with a `tool` message."""
        return self._str("id")

    @property
    def index(self) -> int | None:
        """Position among the message's tool calls (stream pieces only)."""
        value = self.raw.get("index")
        return value if isinstance(value, int) else None

    @property
    def type(self) -> str:
        """Always `function` today."""
        return self._str("type") or "function"

    @property
    def function(self) -> FunctionCall:
        """Name and arguments."""
        return FunctionCall(self.raw.get("function") or {})


class _MessageLike(_View):
    __slots__ = ()

    @property
    def role(self) -> str | None:
        """`assistant` (in a stream: only on the first delta)."""
        return self._str("role")

    @property
    def content(self) -> str | None:
        """Generated text; None when the model only called tools."""
        return self._str("content")

    @property
    def refusal(self) -> str | None:
        """The model's refusal message, if it refused."""
        return self._str("refusal")

    @property
    def reasoning(self) -> str | None:
        """Reasoning text, for providers that send it (`reasoning_content` or `reasoning`)."""
        return self._str("reasoning_content") or self._str("reasoning")

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Tool calls (empty when there are none)."""
        return [ToolCall(c) for c in self.raw.get("tool_calls") or ()]


class Message(_MessageLike):
    """The assistant message of a chat.completion choice."""

    __slots__ = ()


class Delta(_MessageLike):
    """What one chunk adds to a choice's message."""

    __slots__ = ()


class _ChoiceLike(_View):
    __slots__ = ()

    @property
    def index(self) -> int:
        """Position among the choices (`n` > 1)."""
        return int(self.raw.get("index") or 0)

    @property
    def finish_reason(self) -> str | None:
        """`stop`, `length`, `tool_calls`, `content_filter` (in a stream: on the choice's last
        chunk only)."""
        return self._str("finish_reason")


class Choice(_ChoiceLike):
    """One choice of a chat.completion."""

    __slots__ = ()

    @property
    def message(self) -> Message:
        """The generated message."""
        return Message(self.raw.get("message") or {})

    @property
    def logprobs(self) -> dict[str, Any] | None:
        """Log probabilities, when asked for (the raw dict)."""
        value = self.raw.get("logprobs")
        return value if isinstance(value, dict) else None


class ChunkChoice(_ChoiceLike):
    """One choice's part of a chat.completion.chunk."""

    __slots__ = ()

    @property
    def delta(self) -> Delta:
        """What this chunk adds."""
        return Delta(self.raw.get("delta") or {})


class _Answer(_View):
    """An answer of any surface's shape, with how it was routed."""

    __slots__ = ("decision", "deployment", "observation")

    def __init__(
        self,
        raw: dict[str, Any],
        *,
        decision: RouteInfo | None = None,
        deployment: str | None = None,
        observation: Observation | None = None,
    ) -> None:
        super().__init__(raw)
        self.decision = decision
        self.deployment = deployment
        self.observation = observation

    @property
    def id(self) -> str:
        """The answer's id (derived from the upstream's)."""
        return self._str("id") or ""

    @property
    def model(self) -> str:
        """The public model name asked for (not the upstream's id)."""
        return self._str("model") or ""


class _Routed(_Answer):
    __slots__ = ()

    @property
    def created(self) -> int:
        """Unix time the upstream created the completion."""
        return int(self.raw.get("created") or 0)

    @property
    def usage(self) -> Usage | None:
        """Token counts (for a stream: on the last chunk, and only if asked for)."""
        value = self.raw.get("usage")
        return Usage(value) if isinstance(value, dict) else None

    def _first_content(self, part: str) -> str:
        # Without building views: `text` is read once per chunk, on the hot path of a stream.
        choices = self.raw.get("choices") or ()
        content = (choices[0].get(part) or {}).get("content") if choices else None
        return content if isinstance(content, str) else ""


class ChatCompletion(_Routed):
    """A `chat.completion`, with how it was routed.

    `decision` is why `deployment` was chosen; `observation` (in-process only; None from the
    gateway) is what the attempt measured: `ttft_s`, `decode_tps`, `output_tokens`, `cost`.
    """

    __slots__ = ()

    @property
    def choices(self) -> list[Choice]:
        """The choices (one unless `n` was set)."""
        return [Choice(c) for c in self.raw.get("choices") or ()]

    @property
    def text(self) -> str:
        """The first choice's text ("" when it only called tools)."""
        return self._first_content("message")

    def to_openai(self) -> openai.types.chat.ChatCompletion:
        """The official SDK's model of this completion (needs the `openai` package)."""
        from openai.types.chat import ChatCompletion as OpenAIChatCompletion

        return OpenAIChatCompletion.model_validate(self.raw)


class Embeddings(_Routed):
    """An embeddings answer (`object: list`), with how it was routed; `observation`
    (in-process only) holds its latency as `ttft_s` and its `cost`."""

    __slots__ = ()

    @property
    def vectors(self) -> list[list[float]]:
        """One vector per input, in input order."""
        data = sorted(self.raw.get("data") or (), key=lambda d: d.get("index", 0))
        return [list(d.get("embedding") or ()) for d in data]

    def to_openai(self) -> openai.types.CreateEmbeddingResponse:
        """The official SDK's model of this answer (needs the `openai` package)."""
        from openai.types import CreateEmbeddingResponse

        return CreateEmbeddingResponse.model_validate(self.raw)


class ChatCompletionChunk(_Routed):
    """One `chat.completion.chunk` of a stream (routing details are on the stream itself)."""

    __slots__ = ()

    @property
    def choices(self) -> list[ChunkChoice]:
        """The choices this chunk adds to (empty on a usage-only last chunk)."""
        return [ChunkChoice(c) for c in self.raw.get("choices") or ()]

    @property
    def text(self) -> str:
        """The text this chunk adds to the first choice ("" when none)."""
        return self._first_content("delta")

    def to_openai(self) -> openai.types.chat.ChatCompletionChunk:
        """The official SDK's model of this chunk (needs the `openai` package)."""
        from openai.types.chat import ChatCompletionChunk as OpenAIChatCompletionChunk

        return OpenAIChatCompletionChunk.model_validate(self.raw)


# -- live estimates ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    """Live estimates for one deployment (a row of `/v1/router/stats`).

    Times in seconds, speeds in decode tokens/s, prices in USD per million tokens. None means
    not measured yet. `circuit` is `closed`, `open` or `half_open`.
    """

    deployment: str
    provider: str = ""
    upstream_model: str = ""
    samples: int = 0
    weight: float = 0.0
    age_s: float | None = None
    stale: bool = False
    circuit: str = "closed"
    ttft_p50_s: float | None = None
    ttft_p90_s: float | None = None
    ttft_per_1k_prompt_s: float = 0.0
    decode_tps_p50: float | None = None
    error_rate: float | None = None
    rate_limit_rate: float | None = None
    usd_per_m_output: float | None = None
    mean_output_tokens: float | None = None
    in_flight: int = 0
    live_decode_tps: float | None = None
    live_wait_s: float | None = None
    ttft_samples: int = 0
    ttft_age_s: float | None = None
    decode_samples: int = 0
    decode_age_s: float | None = None
    price_input: float | None = None
    price_output: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentStats:
        """From one row of the stats report; unknown keys stay in `raw`."""
        known = {f.name for f in fields(cls)} - {"raw"}
        return cls(**{k: v for k, v in data.items() if k in known}, raw=data)


@dataclass(frozen=True, slots=True)
class ModelStats:
    """One public model: its default policy and its deployments' estimates."""

    name: str
    policy: str
    deployments: tuple[DeploymentStats, ...]


@dataclass(frozen=True, slots=True)
class RouterStats:
    """The router's live estimates (`Engine.stats_report()`, `GET /v1/router/stats`)."""

    at: float
    models: Mapping[str, ModelStats]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouterStats:
        """From the stats report dict."""
        models = {
            name: ModelStats(
                name=name,
                policy=str(info.get("policy", "")),
                deployments=tuple(DeploymentStats.from_dict(d)
                                  for d in info.get("deployments") or ()),
            )
            for name, info in (data.get("models") or {}).items()
        }
        return cls(at=float(data.get("at") or 0.0), models=models, raw=data)

    def deployment(self, deployment: str, model: str | None = None) -> DeploymentStats:
        """One deployment's row (of `model`, or the first model that has it); KeyError if none."""
        for name, info in self.models.items():
            if model is not None and name != model:
                continue
            for row in info.deployments:
                if row.deployment == deployment:
                    return row
        raise KeyError(deployment)
