"""Failure modes (`SimProviderSpec.fault`): what a client sees of each, over real loopback HTTP.

Raw httpx shows the exact bytes (or the exact transport error); the openai SDK shows what an
application would get. Stalls are timed on a ManualClock, or cut short by a client timeout;
nothing here sleeps, and every wait is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from random import Random
from typing import Any

import httpx
import openai
import pytest

from tests.loopback import serve
from tokenlane.clock import ManualClock
from tokenlane.sim import SimConfigError, SimCounters, SimProviderSpec, Simulator
from tokenlane.sim.faults import FAULTS
from tokenlane.sim.plan import Broken, Completion, Failure, StreamFault, plan_reply
from tokenlane.sim.responses import SimulatedReset, reset_connection
from tokenlane.sim.tokens import text_pieces

from .support import HELLO, WEATHER_TOOL, SdkClient, StartSim, instant

MODES = {
    "http_503",
    "http_529",
    "reset_before_headers",
    "reset_after_first_chunk",
    "stall_before_first_token",
    "stall_mid_stream",
    "garbage_sse",
    "error_event",
    "truncate",
    "trickle",
    "flap",
    "bad_json_200",
}
N = 6  # tokens per answer
ERROR_EVENT = (
    'data: {"error": {"message": "simulated upstream failure", "type": "server_error", '
    '"param": null, "code": null}}'
)


def body(stream: bool) -> dict[str, Any]:
    return {"model": "m", "messages": HELLO, "stream": stream}


def url(root: str, name: str = "swift") -> str:
    return f"{root}/{name}/v1/chat/completions"


def faulty(fault: str, **fields: Any) -> SimProviderSpec:
    """A provider in `fault` that answers at once (unless `fields` say otherwise)."""
    return instant(fault=fault, output_tokens=N, **fields)


def timed(fault: str, **fields: Any) -> SimProviderSpec:
    """A provider in `fault` that takes time (`time_scale` 1 unless `fields` say otherwise)."""
    return SimProviderSpec(name="swift", fault=fault, output_tokens=N, **fields)


def read_until_error(response: httpx.Response, seen: list[str]) -> None:
    """Read `response`'s lines into `seen` (kept when the read fails part way)."""
    seen.extend(response.iter_lines())  # list.extend appends each line as it arrives


@contextmanager
def sse(root: str, name: str = "swift", **client: Any) -> Iterator[httpx.Response]:
    with (
        httpx.Client(timeout=client.pop("timeout", 5)) as http,
        http.stream("POST", url(root, name), json=body(True)) as response,
    ):
        yield response


def lines_of(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines() if line]


def content_of(line: str) -> str:
    return json.loads(line.removeprefix("data: "))["choices"][0]["delta"]["content"]


def ended(sim: Simulator, name: str = "swift") -> SimCounters:
    """The counters once every request has ended (the server counts just after the client
    has read the last byte)."""
    return sim.wait_counters(name, lambda c: c.in_flight == 0)


# --- names and fields -----------------------------------------------------------------------


def test_the_modes_are_exactly_these_and_the_fields_validate() -> None:
    assert set(FAULTS) == MODES
    for mode in MODES:
        assert SimProviderSpec(name="p", fault=mode).fault == mode
    spec = SimProviderSpec(name="p")
    assert (spec.fault_after_tokens, spec.stall_s, spec.flap_period) == (1, 3600.0, 3)
    for bad in (
        {"fault": "stall"},
        {"fault_after_tokens": -1},
        {"stall_s": -1},
        {"flap_period": 0},
    ):
        with pytest.raises(ValueError):
            SimProviderSpec.model_validate({"name": "p", **bad})


def test_a_provider_switches_into_a_fault_and_back(start_sim: StartSim) -> None:
    sim, root = start_sim(instant())
    assert httpx.post(url(root), json=body(False)).status_code == 200
    sim.update("swift", fault="http_503")
    assert httpx.post(url(root), json=body(False)).status_code == 503
    with pytest.raises(SimConfigError, match="unknown fault"):
        sim.update("swift", fault="nope")
    sim.update("swift", fault=None)
    assert httpx.post(url(root), json=body(False)).status_code == 200
    changed = httpx.post(f"{root}/_sim/providers/swift", json={"fault": "bad_json_200"})
    assert changed.json()["fault"] == "bad_json_200"  # also over the control route
    assert httpx.post(url(root), json=body(False)).text.startswith('{"id": "chatcmpl-broken"')


# --- outages --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_http_503(start_sim: StartSim, sdk: SdkClient, stream: bool) -> None:
    sim, root = start_sim(faulty("http_503"))
    response = httpx.post(url(root), json=body(stream))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert "retry-after" not in response.headers
    assert response.json()["error"]["type"] == "server_error"
    with pytest.raises(openai.InternalServerError) as err:
        sdk(root).chat.completions.create(model="m", messages=HELLO, stream=stream)
    assert err.value.status_code == 503
    assert ended(sim).errors == 2


def test_http_529_is_anthropics_overloaded_on_both_routes(start_sim: StartSim) -> None:
    sim, root = start_sim(faulty("http_529"))
    response = httpx.post(url(root), json=body(False))
    assert response.status_code == 529 and response.json()["error"]["type"] == "overloaded_error"
    messages = httpx.post(url(root).replace("/chat/completions", "/messages"), json={
        "model": "m", "max_tokens": 5, "messages": HELLO})
    assert messages.status_code == 529
    assert messages.json() == {"type": "error", "error": {"type": "overloaded_error",
                                                          "message": "Overloaded"}}
    assert ended(sim).errors == 2


def test_http_503_even_for_a_request_the_provider_would_refuse(start_sim: StartSim) -> None:
    _, root = start_sim(faulty("http_503"))
    assert httpx.post(url(root), json={"model": "m"}).status_code == 503  # no messages


@pytest.mark.parametrize("stream", [False, True])
def test_reset_before_headers(start_sim: StartSim, sdk: SdkClient, stream: bool) -> None:
    sim, root = start_sim(faulty("reset_before_headers"))
    with pytest.raises(httpx.TransportError) as err:
        httpx.post(url(root), json=body(stream), timeout=5)
    # A real RST (ECONNRESET): httpx.ReadError, not a timeout or a clean close.
    assert isinstance(err.value, httpx.ReadError)
    with pytest.raises(openai.APIConnectionError):
        sdk(root).chat.completions.create(model="m", messages=HELLO, stream=stream)
    counters = ended(sim)
    assert (counters.errors, counters.completed, counters.disconnected) == (2, 0, 0)


def test_flap_alternates_by_request_count(start_sim: StartSim) -> None:
    sim, root = start_sim(faulty("flap", flap_period=2))
    with httpx.Client(timeout=5) as http:

        def statuses(n: int) -> list[int]:
            return [http.post(url(root), json=body(False)).status_code for _ in range(n)]

        assert statuses(9) == [200, 200, 503, 503, 200, 200, 503, 503, 200]
        sim.update("swift", fault="flap")  # setting the mode again starts it afresh
        assert statuses(3) == [200, 200, 503]
        sim.update("swift", ttft_s=1.0)  # other changes keep the schedule going
        assert statuses(1) == [503]
        sim.update("swift", fault=None)
        assert statuses(4) == [200] * 4
        sim.update("swift", fault="flap", flap_period=1)
        assert statuses(4) == [200, 503, 200, 503]
    counters = ended(sim)
    assert (counters.completed, counters.errors) == (13, 8)


@pytest.mark.parametrize("stream", [False, True])
def test_bad_json_200(start_sim: StartSim, sdk: SdkClient, stream: bool) -> None:
    sim, root = start_sim(faulty("bad_json_200"))
    response = httpx.post(url(root), json=body(stream))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"id": "chatcmpl-broken", "choices": ['
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert ended(sim).errors == 1


def test_bad_json_200_through_the_sdk(start_sim: StartSim, sdk: SdkClient) -> None:
    _, root = start_sim(faulty("bad_json_200"))
    with pytest.raises(json.JSONDecodeError):  # the SDK does not wrap a body it cannot parse
        sdk(root).chat.completions.create(model="m", messages=HELLO)
    # Streamed, the SDK finds no `data:` line in the JSON body and yields nothing at all.
    assert list(sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True)) == []


# --- mid-stream -----------------------------------------------------------------------------


@pytest.mark.parametrize("after", [0, 2])
def test_reset_after_first_chunk(start_sim: StartSim, after: int) -> None:
    sim, root = start_sim(faulty("reset_after_first_chunk", fault_after_tokens=after))
    seen: list[str] = []
    with sse(root) as response, pytest.raises(httpx.TransportError) as err:
        assert response.status_code == 200
        read_until_error(response, seen)
    assert isinstance(err.value, httpx.ReadError)  # RST mid-body
    events = [line for line in seen if line]
    assert '"role":"assistant"' in events[0]
    assert [content_of(e) for e in events[1:]] == text_pieces("swift", N)[:after]
    assert ended(sim).errors == 1


def test_reset_after_first_chunk_through_the_sdk(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(faulty("reset_after_first_chunk", fault_after_tokens=3))
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert "".join(filter(None, got)) == "".join(text_pieces("swift", N)[:3])
    # Not streamed: nothing is sent before the end, so the reset comes before any byte.
    with pytest.raises(httpx.ReadError):
        httpx.post(url(root), json=body(False), timeout=5)
    assert ended(sim).errors == 2


def test_fault_after_more_tokens_than_the_answer_has(start_sim: StartSim) -> None:
    _, root = start_sim(faulty("error_event", fault_after_tokens=100))
    with sse(root) as response:
        events = lines_of(response)
    assert len(events) == 1 + N + 1  # every token, then the error instead of the finish chunk
    assert events[-1] == ERROR_EVENT


def test_garbage_sse(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(faulty("garbage_sse", fault_after_tokens=2))
    with sse(root) as response:
        events = lines_of(response)
    assert events[3] == "data: {this is not json"
    assert [content_of(e) for e in events[1:3]] == text_pieces("swift", N)[:2]
    # ... then the rest as planned: the other tokens, the finish chunk and [DONE].
    assert [content_of(e) for e in events[4:-2]] == text_pieces("swift", N)[2:]
    assert '"finish_reason":"stop"' in events[-2] and events[-1] == "data: [DONE]"
    got = []
    with pytest.raises(json.JSONDecodeError):  # the SDK lets the parse error through
        for chunk in sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert "".join(filter(None, got)) == "".join(text_pieces("swift", N)[:2])
    assert ended(sim).errors == 2  # broken bytes went out, whatever the client did next


@pytest.mark.parametrize("fault", ["garbage_sse", "truncate"])
def test_not_streamed_the_json_body_is_cut_after_the_tokens(
    start_sim: StartSim, sdk: SdkClient, fault: str
) -> None:
    sim, root = start_sim(faulty(fault, fault_after_tokens=3))
    response = httpx.post(url(root), json=body(False))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    text = response.text
    assert text.startswith('{"id":"chatcmpl-')
    assert text.endswith('"content":"' + "".join(text_pieces("swift", N)[:3]))
    with pytest.raises(json.JSONDecodeError):
        sdk(root).chat.completions.create(model="m", messages=HELLO)
    assert ended(sim).errors == 2


def test_error_event(start_sim: StartSim, sdk: SdkClient) -> None:
    sim, root = start_sim(faulty("error_event", fault_after_tokens=2))
    with sse(root) as response:
        assert response.status_code == 200
        events = lines_of(response)
    assert len(events) == 1 + 2 + 1 and events[-1] == ERROR_EVENT  # no finish, no [DONE]
    got = []
    with pytest.raises(openai.APIError, match="simulated upstream failure") as err:
        for chunk in sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert not isinstance(err.value, openai.APIStatusError)  # the status was 200
    assert "".join(filter(None, got)) == "".join(text_pieces("swift", N)[:2])
    # Not streamed: a plain 500.
    with pytest.raises(openai.InternalServerError, match="simulated upstream failure"):
        sdk(root).chat.completions.create(model="m", messages=HELLO)
    assert ended(sim).errors == 3


@pytest.mark.parametrize("after", [0, 3])
def test_truncate(start_sim: StartSim, sdk: SdkClient, after: int) -> None:
    sim, root = start_sim(faulty("truncate", fault_after_tokens=after))
    with sse(root) as response:
        events = lines_of(response)  # a clean end of body: no transport error
    assert len(events) == 1 + after
    assert [content_of(e) for e in events[1:]] == text_pieces("swift", N)[:after]
    assert not any('"finish_reason":"' in e for e in events)
    # The SDK just stops iterating: noticing the missing finish is the caller's job.
    chunks = list(sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True))
    assert len(chunks) == 1 + after
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert ended(sim).errors == 2


def test_truncate_cuts_tool_call_arguments_too(start_sim: StartSim) -> None:
    _, root = start_sim(instant(fault="truncate", fault_after_tokens=2))
    request = {
        "model": "m",
        "messages": HELLO,
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
    }
    text = httpx.post(url(root), json=request).text
    assert text.endswith('"arguments":"' + json.dumps('{"city":')[1:-1])  # 2 fragments of 4
    with httpx.stream("POST", url(root), json={**request, "stream": True}) as response:
        events = lines_of(response)
    assert len(events) == 1 + 2 and '"name":"get_weather"' in events[0]


# --- stalls and slowness --------------------------------------------------------------------


def test_stall_before_first_token_is_timed_exactly(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    sim, root = start_sim(
        timed("stall_before_first_token", stall_s=30, ttft_s=0.5, tokens_per_s=10, time_scale=2),
        clock=clock,
    )
    api = sdk(root)
    for stream in (True, False):
        start = clock.now()
        if stream:
            chunks = list(api.chat.completions.create(model="m", messages=HELLO, stream=True))
            assert chunks[-1].choices[0].finish_reason == "stop"  # then continues normally
        else:
            api.chat.completions.create(model="m", messages=HELLO)
        assert clock.now() - start == pytest.approx((30 + 0.5 + N / 10) * 2)
    assert ended(sim).completed == 2


def test_stall_before_first_token_sends_headers_then_nothing(start_sim: StartSim) -> None:
    sim, root = start_sim(timed("stall_before_first_token"))  # an hour
    with sse(root, timeout=httpx.Timeout(5, read=0.2)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        with pytest.raises(httpx.ReadTimeout):
            next(response.iter_lines())
    # The client gave up during the stall: the sim stops and counts it.
    counters = sim.wait_counters("swift", lambda c: c.disconnected == 1)
    assert (counters.completed, counters.errors, counters.in_flight) == (0, 0, 0)


def test_stall_mid_stream_sends_the_tokens_then_nothing(start_sim: StartSim) -> None:
    sim, root = start_sim(
        timed("stall_mid_stream", fault_after_tokens=2, ttft_s=0, tokens_per_s=1e6)
    )
    seen: list[str] = []
    with (
        sse(root, timeout=httpx.Timeout(5, read=0.3)) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        read_until_error(response, seen)
    events = [line for line in seen if line]
    assert [content_of(e) for e in events[1:]] == text_pieces("swift", N)[:2]
    counters = sim.wait_counters("swift", lambda c: c.disconnected == 1)
    assert counters.in_flight == 0


def test_stall_mid_stream_is_timed_exactly(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    sim, root = start_sim(
        timed("stall_mid_stream", stall_s=12, ttft_s=1, tokens_per_s=4, fault_after_tokens=0),
        clock=clock,
    )
    api = sdk(root)
    start = clock.now()
    chunks = list(api.chat.completions.create(model="m", messages=HELLO, stream=True))
    contents = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert contents == text_pieces("swift", N)  # continues normally
    assert clock.now() - start == pytest.approx(12 + 1 + N / 4)
    start = clock.now()
    api.chat.completions.create(model="m", messages=HELLO)
    assert clock.now() - start == pytest.approx(12 + 1 + N / 4)
    assert ended(sim).completed == 2


def test_trickle_decodes_one_token_per_second(start_sim: StartSim, sdk: SdkClient) -> None:
    clock = ManualClock()
    sim, root = start_sim(
        timed("trickle", ttft_s=0.5, tokens_per_s=1000, time_scale=0.1), clock=clock
    )
    start = clock.now()
    chunks = list(sdk(root).chat.completions.create(model="m", messages=HELLO, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    # TTFT as usual; then N steps (N - 1 tokens and the closing one) of 1 s, times 0.1.
    assert clock.now() - start == pytest.approx((0.5 + N * 1.0) * 0.1)
    assert ended(sim).completed == 1


# --- planning and the reset fallback --------------------------------------------------------


def plan(fault: str, stream: bool = True, **fields: Any) -> Any:
    spec = SimProviderSpec(name="p", fault=fault, output_tokens=N, **fields)
    return plan_reply(spec, body(stream), Random(0))


def test_planned_faults() -> None:
    reply = plan("stall_mid_stream", fault_after_tokens=9, stall_s=2, time_scale=0.5)
    assert isinstance(reply, Completion)
    assert reply.fault == StreamFault("stall", after=N, stall=1.0)  # clamped to the answer
    assert reply.total_delay == pytest.approx(sum(reply.delays) + 1.0)
    reset = plan("reset_after_first_chunk", stream=False, ttft_s=2, time_scale=1)
    assert reset.kind == "reset" and reset.delay == pytest.approx(2 + N / 100)  # the whole reply
    assert plan("reset_before_headers") == Broken("reset")
    assert isinstance(plan("error_event", stream=False), Failure)
    # Degradations leave refusals alone; outages replace them.
    refused = plan_reply(SimProviderSpec(name="p", fault="truncate"), {"model": "m"}, Random(0))
    assert isinstance(refused, Failure) and refused.status == 400
    outage = plan_reply(SimProviderSpec(name="p", fault="flap"), {"model": "m"}, Random(0), 3)
    assert isinstance(outage, Failure) and outage.status == 503


async def test_without_a_transport_a_reset_is_an_exception() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:  # a plain function: no server object behind it
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    with pytest.raises(SimulatedReset):
        await reset_connection(send, receive)
    assert sent == []


def test_behind_a_wrapped_send_a_reset_becomes_a_500(sdk: SdkClient) -> None:
    sim = Simulator([faulty("reset_before_headers")])

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def relay(message: Any) -> None:
            await send(message)

        await sim.app(scope, receive, relay)

    with serve(wrapped, log_level="critical") as root:  # uvicorn logs the exception
        response = httpx.post(url(root), json=body(False), timeout=5)
    assert response.status_code == 500
    assert sim.counters("swift").errors == 1
