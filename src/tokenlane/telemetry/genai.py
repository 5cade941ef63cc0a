"""Span attributes from what the gateway already knows: pure functions, no OpenTelemetry import.

Names follow OpenTelemetry's GenAI semantic conventions (`gen_ai.*`, development status: the
latest ones, `gen_ai.provider.name` rather than the older `gen_ai.system`), the stable
`server.*`, `error.type` and `http.*` ones, and ours under `tokenlane.*`. Values come from
request bodies nobody validated for us, so every one is type-checked before it is used: a
span attribute must be a str, bool, int, float or a list of one of those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..presets import PRESETS
from ..request import ChatRequest
from ..routing.decision import Decision
from ..stats.observation import Observation
from ..types import Deployment, Provider

__all__ = ["OPERATIONS", "answer_attributes", "attempt_attributes", "ended_attributes",
           "error_type", "operation_of", "provider_name", "request_attributes",
           "served_attributes"]

Attributes = dict[str, Any]

# Client-facing path -> gen_ai.operation.name. Every translated surface is a chat underneath.
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}

# The conventions' well-known provider names where they differ from our preset's name.
_SEMCONV_NAMES = {"azure-openai": "azure.ai.openai", "gemini": "gcp.gemini"}
# A preset's host names its provider; local servers (vLLM, llama.cpp, Ollama) do not.
_HOSTS = {urlsplit(p.base_url).hostname: _SEMCONV_NAMES.get(name, name)
          for name, p in PRESETS.items()
          if p.base_url and urlsplit(p.base_url).hostname not in ("127.0.0.1", "localhost")}
# Request body fields -> gen_ai.request.* (numbers only: anything else is left out).
_NUMBERS = {"temperature": "gen_ai.request.temperature", "top_p": "gen_ai.request.top_p",
            "frequency_penalty": "gen_ai.request.frequency_penalty",
            "presence_penalty": "gen_ai.request.presence_penalty"}
# Outcomes that say nothing went wrong: a cancelled attempt is a hedge's loser or a client
# that left, not a failure of the deployment (stats/observation.py).
_FINE = frozenset({"ok", "cancelled"})


def operation_of(surface: str) -> str:
    return OPERATIONS.get(surface, "chat")


def provider_name(provider: Provider) -> str:
    """The well-known name for a provider at a well-known address, else its configured name."""
    return _HOSTS.get(urlsplit(provider.base_url).hostname or "", provider.name)


def request_attributes(request: ChatRequest, operation: str) -> Attributes:
    """What the client asked for: the request span's, and (upstream model aside) each
    attempt's."""
    body = request.body
    out: Attributes = {"gen_ai.operation.name": operation,
                       "gen_ai.request.model": request.model,
                       "gen_ai.request.stream": request.stream}
    if request.max_output_tokens is not None:
        out["gen_ai.request.max_tokens"] = request.max_output_tokens
    for field, name in _NUMBERS.items():
        if _is_number(value := body.get(field)):
            out[name] = float(value)
    if _is_int(seed := body.get("seed")):
        out["gen_ai.request.seed"] = seed
    if _is_int(n := body.get("n")) and n != 1:
        out["gen_ai.request.choice.count"] = n
    stop = body.get("stop")
    if isinstance(stop, str):
        out["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        out["gen_ai.request.stop_sequences"] = stop
    return out


def attempt_attributes(deployment: Deployment, request: ChatRequest, decision: Decision, *,
                       hedge: bool, operation: str) -> Attributes:
    """One upstream attempt's, known before it is sent."""
    out = request_attributes(request, operation)
    provider = deployment.provider
    out["gen_ai.provider.name"] = provider_name(provider)
    out["gen_ai.request.model"] = deployment.upstream_model
    parts = urlsplit(provider.base_url)
    if parts.hostname:
        out["server.address"] = parts.hostname
        port = _port(parts)
        if port is not None:
            out["server.port"] = port
    out.update({
        "tokenlane.model": request.model,
        "tokenlane.deployment": deployment.id,
        "tokenlane.provider": provider.name,
        "tokenlane.why": decision.why,
        "tokenlane.policy": decision.policy,
        # Not the plan's first choice: a fallback (another deployment, or another model's).
        "tokenlane.fallback": deployment.id != decision.chosen,
        "tokenlane.hedge": hedge,
    })
    return out


def answer_attributes(chunk: Mapping[str, Any], ttft_s: float | None) -> Attributes:
    """From the chunk that brought an attempt's first token: the answer's id and model."""
    out: Attributes = {}
    if isinstance(answer_id := chunk.get("id"), str) and answer_id:
        out["gen_ai.response.id"] = answer_id
    if isinstance(model := chunk.get("model"), str) and model:
        out["gen_ai.response.model"] = model
    if ttft_s is not None:
        out["gen_ai.response.time_to_first_chunk"] = ttft_s
    return out


def ended_attributes(observation: Observation, finish_reason: str | None) -> Attributes:
    """How an attempt ended, as measured."""
    out: Attributes = {
        "gen_ai.usage.input_tokens": observation.prompt_tokens,
        "gen_ai.usage.output_tokens": observation.output_tokens,
        "tokenlane.outcome": observation.outcome,
        "tokenlane.cost_usd": observation.cost,
        "tokenlane.total_s": observation.total_s,
    }
    if finish_reason:
        out["gen_ai.response.finish_reasons"] = [finish_reason]
    if observation.ttft_s is not None:
        out["tokenlane.ttft_s"] = observation.ttft_s
    if observation.decode_tps is not None:
        out["tokenlane.decode_tps"] = observation.decode_tps
    if observation.status is not None:
        out["http.response.status_code"] = observation.status
    if (kind := error_type(observation)) is not None:
        out["error.type"] = kind
    return out


def error_type(observation: Observation) -> str | None:
    """`error.type` of an attempt that failed (None: it did not): its HTTP status when the
    upstream answered one, else our outcome class (timeout, connect, stall, ...)."""
    if observation.outcome in _FINE:
        return None
    if observation.status is not None and observation.status >= 400:
        return str(observation.status)
    return observation.outcome


def served_attributes(served: Any) -> Attributes:
    """The request span's, once the request ended: who answered and why (the tokens and
    their cost are on the answering attempt's span, so a backend that sums GenAI usage over
    spans counts them once)."""
    out: Attributes = {}
    decision = getattr(served, "decision", None)
    if isinstance(decision, Decision):
        out["tokenlane.why"] = decision.why
        out["tokenlane.policy"] = decision.policy
        out["tokenlane.chosen"] = decision.chosen
    deployment = getattr(served, "deployment", None)
    if isinstance(deployment, Deployment):
        out["tokenlane.deployment"] = deployment.id
    observation = getattr(served, "observation", None)
    if isinstance(observation, Observation):
        out["tokenlane.outcome"] = observation.outcome
        if observation.ttft_s is not None:
            out["tokenlane.ttft_s"] = observation.ttft_s
        if observation.decode_tps is not None:
            out["tokenlane.decode_tps"] = observation.decode_tps
    return out


def _port(parts: Any) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
