"""Sans-I/O pieces: error bodies to typed exceptions, SSE to chunks, request bodies."""

from __future__ import annotations

import orjson
import pytest

from tokenlane import (
    Attempt,
    AuthenticationFailed,
    BodyTooLarge,
    InvalidRequest,
    ModelNotFound,
    NoDeploymentAvailable,
    RoutingOptions,
    StreamBroken,
    TokenlaneError,
    UpstreamRejected,
    openai_extra,
)
from tokenlane.client._wire import NEED_DATA, ChunkDecoder, chat_body, error_from_response
from tokenlane.errors import error_body
from tokenlane.routing.options import MaxPrice


def _error(exc: TokenlaneError, headers: dict[str, str] | None = None) -> TokenlaneError:
    """What the gateway sends for `exc`, read back."""
    return error_from_response(exc.status, {**exc.headers(), **(headers or {})},
                               orjson.dumps(exc.to_body()))


@pytest.mark.parametrize("exc", [
    InvalidRequest("bad", param="provider.sortt", code="invalid_routing_option"),
    AuthenticationFailed("no key"),
    ModelNotFound("The model `x` does not exist.", param="model"),
    BodyTooLarge("too big"),
    StreamBroken("upstream a/x failed mid-stream"),
    TokenlaneError("boom"),
])
def test_the_gateways_own_errors_map_back_to_their_class(exc: TokenlaneError) -> None:
    got = _error(exc)
    assert type(got) is type(exc)
    assert (got.message, got.type, got.param, got.code, got.status) == (
        exc.message, exc.type, exc.param, exc.code, exc.status)


def test_all_failed_carries_every_attempt() -> None:
    attempts = (Attempt("a/a-m", "5xx", 500, "HTTP 500: boom (really); twice"),
                Attempt("ollama/llama3:8b", "timeout", None, "no first token within 1.00s"),
                Attempt("c/z", "circuit_open", None, "skipped"))
    sent = NoDeploymentAvailable("All deployments of m failed", attempts, retry_after=7.2)
    got = _error(sent)
    assert isinstance(got, NoDeploymentAvailable)
    assert got.attempts == attempts
    assert got.message == sent.message and got.status == 503 and got.retry_after == 7.0
    assert got.code == "no_deployment_available"


def test_rate_limited_keeps_its_429_shape() -> None:
    sent = NoDeploymentAvailable("All deployments of m are rate limited",
                                 (Attempt("a/x", "429", 429, "HTTP 429: slow down"),),
                                 retry_after=3, rate_limited=True)
    got = _error(sent)
    assert isinstance(got, NoDeploymentAvailable)
    assert (got.status, got.type, got.code, got.retry_after) == (
        429, "requests", "rate_limit_exceeded", 3.0)
    assert got.attempts == sent.attempts


def test_attempts_are_read_from_the_structured_list_only() -> None:
    body = error_body("All deployments of m failed: a/x: 5xx HTTP 500 (boom)",
                      "service_unavailable", None, "no_deployment_available")
    body["error"]["attempts"] = [{"deployment": "a/x", "outcome": "connect", "status": None,
                                  "reason": "refused"}, "junk"]
    got = error_from_response(503, {}, orjson.dumps(body))
    assert isinstance(got, NoDeploymentAvailable)
    assert got.attempts == (Attempt("a/x", "connect", None, "refused"),)
    del body["error"]["attempts"]
    got = error_from_response(503, {}, orjson.dumps(body))
    assert isinstance(got, NoDeploymentAvailable) and got.attempts == ()
    assert got.message == body["error"]["message"]  # not suffixed with the attempts again


def test_a_503_that_is_not_the_gateways_is_not_no_deployment_available() -> None:
    got = error_from_response(503, {}, b"<html>Service Unavailable</html>")
    assert type(got) is TokenlaneError and got.status == 503


def test_upstream_4xx_is_upstream_rejected() -> None:
    body = {"error": {"message": "no such model", "type": "invalid_request_error",
                      "param": None, "code": "model_not_found"}}
    named = error_from_response(404, {"x-tokenlane-deployment": "p/x"}, orjson.dumps(body))
    assert isinstance(named, UpstreamRejected) and named.deployment == "p/x"
    assert (named.status, named.code) == (404, "model_not_found")
    forbidden = error_from_response(403, {}, orjson.dumps(body))
    assert isinstance(forbidden, UpstreamRejected) and forbidden.status == 403


def test_non_json_error_bodies_still_raise_typed() -> None:
    got = error_from_response(502, {}, b"<html>Bad Gateway</html>")
    assert type(got) is TokenlaneError
    assert got.status == 502 and "Bad Gateway" in got.message


def _drain(decoder: ChunkDecoder) -> list[object]:
    """Every chunk `decoder` can give without more bytes, then what it says next."""
    out: list[object] = []
    while isinstance(chunk := decoder.next_chunk(), dict):
        out.append(chunk)
    return [*out, chunk]


def test_chunk_decoder_splits_pieces_and_ends_at_done() -> None:
    chunks = [{"id": "c", "choices": [{"index": 0, "delta": {"content": str(i)}}]}
              for i in range(3)]
    wire = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    decoder = ChunkDecoder()
    assert decoder.next_chunk() is NEED_DATA
    got: list[object] = []
    for i in range(0, len(wire), 7):
        decoder.feed(wire[i:i + 7])
        got += _drain(decoder)[:-1]
    assert got == chunks and decoder.done
    decoder.feed(None)  # EOF after [DONE]: fine
    assert decoder.next_chunk() is None


def test_chunk_decoder_gives_the_chunks_before_a_mid_stream_error_then_raises_it() -> None:
    decoder = ChunkDecoder()
    decoder.feed(b'data: {"choices": []}\n\n'
                 + b"data: " + orjson.dumps(StreamBroken("upstream x failed").to_body())
                 + b'\n\ndata: {"choices": [1]}\n\n')
    assert decoder.next_chunk() == {"choices": []}
    with pytest.raises(StreamBroken) as err:
        decoder.next_chunk()
    assert err.value.code == "upstream_stream_broken" and err.value.status == 502
    assert decoder.next_chunk() is None  # nothing after the error event


@pytest.mark.parametrize("wire", [b"", b'data: {"choices": []}\n\n', b"data: {not json\n\n"])
def test_chunk_decoder_raises_stream_broken_on_early_eof_or_garbage(wire: bytes) -> None:
    decoder = ChunkDecoder()
    decoder.feed(wire)
    decoder.feed(None)
    with pytest.raises(StreamBroken):
        _drain(decoder)
    assert decoder.next_chunk() is None


def test_chat_body_passes_openai_fields_through() -> None:
    body = chat_body("m", [{"role": "user", "content": "hi"}], True,
                     RoutingOptions(sort="price", max_price=MaxPrice(completion=1.0)),
                     {"temperature": 0.2, "stream_options": {"include_usage": True}})
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "temperature": 0.2, "stream_options": {"include_usage": True},
                    "stream": True,
                    "provider": {"sort": "price", "max_price": {"completion": 1.0}}}
    with pytest.raises(TypeError):
        chat_body("m", [], False, None, {"provider": {}})


def test_openai_extra() -> None:
    assert openai_extra() == {}
    assert openai_extra({"sort": "price"}, extra_body={"user": "u"}) == {
        "extra_body": {"user": "u", "provider": {"sort": "price"}}}
    assert openai_extra(RoutingOptions(only=["a"]), via="header") == {
        "extra_headers": {"x-tokenlane-provider": '{"only":["a"]}'}}
