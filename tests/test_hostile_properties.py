"""Property tests (hypothesis) for what hostile input reaches first: the SSE decoder, chunk
validation, request and routing-option parsing. Each says what must hold for *any* input."""

from __future__ import annotations

import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenlane.errors import InvalidRequest
from tokenlane.providers.base import UpstreamBadResponse
from tokenlane.providers.openai import _parse_chunk
from tokenlane.providers.sse import SSEDecoder
from tokenlane.request import parse_chat_request
from tokenlane.routing.options import parse_options

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
                                                                           allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(["content", "role", "refusal", "tool_calls", "function_call",
                               "reasoning", "index", "delta", "choices", "usage", "id",
                               "finish_reason", "logprobs", "created", "x"])
chunkish = st.recursive(
    json_values, lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(field_names, inner, max_size=4), max_leaves=25)

texts = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                max_size=30)


def _events(datas: list[str]) -> bytes:
    return b"".join(b"data: " + d.encode() + b"\n\n" for d in datas) + b"data: [DONE]\n\n"


def _feed(data: bytes, cuts: list[int]) -> list[Any]:
    decoder = SSEDecoder()
    out, last = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        out += decoder.feed(data[last:cut])
        last = cut
    return out


@FAST
@given(st.lists(texts, max_size=8), st.lists(st.integers(0, 10_000), max_size=12),
       st.booleans())
def test_any_split_of_a_valid_stream_decodes_the_same(datas, cuts, crlf) -> None:
    data = _events(datas)
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    whole = SSEDecoder().feed(data)
    assert _feed(data, cuts) == whole
    assert [e.data for e in whole] == [d.encode() for d in datas] + [b"[DONE]"]


@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(0, 5000), max_size=8))
def test_arbitrary_bytes_never_raise_anything_but_a_bad_answer(data, cuts) -> None:
    decoder = SSEDecoder(max_event_bytes=1024)
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        for event in decoder.feed(data[last:cut]):
            try:
                _parse_chunk(event.data, event.event)
            except UpstreamBadResponse:
                pass
        last = cut
    decoder.pending()


def test_decoding_time_is_linear_in_size() -> None:
    def seconds(n_events: int) -> float:
        data = b"".join(b'data: {"i":%d}\n\n' % i for i in range(n_events))
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            _feed(data, list(range(0, len(data), 7)))  # tiny pieces: the worst case
            best = min(best, time.perf_counter() - start)
        return best

    assert seconds(40_000) < 8 * seconds(10_000) + 0.01


@FAST
@given(chunkish)
def test_a_chunk_that_passes_validation_is_safe_to_read(value) -> None:
    """Whatever passes is shaped as the openai SDK and the assembler read it; nothing else
    than a bad answer is ever raised."""
    try:
        chunk = _parse_chunk(orjson.dumps(value), None)
    except UpstreamBadResponse:
        return
    assert isinstance(chunk["choices"], list)
    for choice in chunk["choices"]:
        delta = choice.get("delta") or {}
        for key in ("content", "role", "refusal"):
            assert delta.get(key) is None or isinstance(delta[key], str)
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            assert all(fn.get(k) is None or isinstance(fn[k], str) for k in ("name", "arguments"))
    usage = chunk.get("usage") or {}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert usage.get(key) is None or type(usage[key]) is int


@FAST
@given(st.dictionaries(st.sampled_from(["model", "messages", "stream", "stream_options",
                                        "max_tokens", "provider", "tools", "n"]),
                       json_values, max_size=6))
def test_request_parsing_raises_only_invalid_request(body) -> None:
    try:
        parse_chat_request(orjson.dumps(body))
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message


@FAST
@given(st.binary(max_size=200))
def test_request_parsing_of_arbitrary_bytes(raw) -> None:
    try:
        parse_chat_request(raw)
    except InvalidRequest:
        pass


@FAST
@given(json_values, st.none() | st.text(max_size=60))
def test_option_parsing_raises_only_invalid_request(body_value, header) -> None:
    try:
        parse_options(body_value, header)
    except InvalidRequest as exc:
        assert exc.status == 400
