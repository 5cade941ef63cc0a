"""Hostile clients and upstreams against one gateway process (bounded, loopback only).

Thousands of malformed requests (bad JSON, wrong types per field, deep nesting, huge bodies and
numbers, NaN, invalid UTF-8, NUL bytes, odd model names, bad headers and methods, bad auth, raw
malformed HTTP) and models whose first deployment misbehaves (not-a-chunk events, numbers for
text, huge and endless events, garbage, error events, truncation) with a healthy fallback.

Reported, not asserted: 5xx answers, errors not in OpenAI's shape, streamed events that are
neither a chunk nor an error event, latency outliers (and a /healthz probe's worst latency),
gateway RSS growth, tracebacks in the gateway's log. Target: 0 / 0 / 0 / none / flat / 0.

    .venv/bin/python benchmarks/hostile.py            # ~3,000 requests, ~1 min
    .venv/bin/python benchmarks/hostile.py --smoke    # ~200 requests, seconds
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from common import (
    RESULTS,
    finish_machine_info,
    machine_info,
    markdown_table,
    percentile,
    write_results,
)
from stack import MASTER_KEY, PYTHON, Proc, _free_port

from tokenlane.sim import SimProviderSpec, Simulator, serve_in_thread

OUTLIER_S = 1.0  # an answer slower than this (every upstream here answers in milliseconds)
TARGET_RSS_GROWTH_MB = 30.0

# -- misbehaving upstreams: the upstream model id names the misbehaviour -----------------------

HEAD = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x"}


def _event(body: Any) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


def _chunk(delta: dict[str, Any], **extra: Any) -> bytes:
    return _event({**HEAD, "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                   **extra})


ROLE = _chunk({"role": "assistant", "content": ""})
TOKEN = _chunk({"content": "ok"})
BIG = b"x" * 65536
MISBEHAVIOURS: dict[str, list[bytes]] = {
    "not_a_chunk": [ROLE, b'data: {"hello": "world"}\n\n'],
    "number_content": [ROLE, _chunk({"content": 12345})],
    "bad_usage": [ROLE, TOKEN, _event({**HEAD, "choices": [], "usage": {"prompt_tokens": "five"}})],
    "garbage": [ROLE, b"data: {this is not json\n\n"],
    "nul_bytes": [ROLE, b"data: \x00\x00\x00\n\n"],
    "invalid_utf8": [ROLE, b'data: {"choices": "\xff\xfe"}\n\n'],
    "deep_event": [ROLE, b"data: " + b"[" * 3000 + b"]" * 3000 + b"\n\n"],
    "error_mid_stream": [ROLE, TOKEN, _event({"error": {"message": "boom sk-leak-1234567890"}})],
    "truncated": [ROLE, TOKEN],
    "huge_event": [ROLE, b'data: {"choices": "', *[BIG] * 40, b'"}\n\n'],
    "endless_event": [ROLE, b'data: {"choices": "', *[BIG] * 400],  # 26 MB, never ends
    "comments_only": [b": ping\n\n" * 1000],
}


async def _hostile_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    model = orjson.loads(body).get("model", "")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for part in MISBEHAVIOURS.get(model, []):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _gateway_config(port: int, hostile: str, sim: str) -> dict[str, Any]:
    price = {"input": 1, "output": 1}
    good = {"provider": "good", "model": "good", "price": price}
    models: dict[str, Any] = {"m": {"deployments": [good]}}
    for name in MISBEHAVIOURS:
        models[f"bad-{name}"] = {"policy": "order", "deployments": [
            {"provider": "hostile", "model": name, "price": price}, good]}
    return {
        "server": {"host": "127.0.0.1", "port": port, "max_body_bytes": 1024 * 1024,
                   "auth": {"enabled": True, "master_keys_env": "TOKENLANE_MASTER_KEYS"}},
        "providers": {"hostile": {"base_url": f"{hostile}/v1"},
                      "good": {"base_url": Simulator.base_url(sim, "good")}},
        "models": models,
        # Circuits would hide the misbehaviour after a few tries: keep every request honest.
        "routing": {"exploration_share": 0,
                    "failover": {"ttft_timeout_s": 5, "stall_timeout_s": 5, "deadline_s": 20},
                    "circuit": {"consecutive_failures": 1_000_000, "error_rate": 1.0,
                                "min_requests": 1_000_000}},
    }


# -- malformed requests ------------------------------------------------------------------------

AUTH = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
MESSAGES = [{"role": "user", "content": "hi"}]
Case = tuple[str, str, str, dict[str, str], bytes]  # kind, method, path, headers, body


def _nested(depth: int) -> bytes:
    return b'{"model": "m", "messages": [{"role": "user", "content": ' + (
        b"[" * depth + b"]" * depth) + b"}]}"


def _cases(rng: random.Random) -> list[Callable[[], Case]]:
    good = orjson.dumps({"model": "m", "messages": MESSAGES})
    wrong = [("model", 1), ("model", None), ("model", ["m"]), ("messages", "hi"),
             ("messages", []), ("messages", [1, 2]), ("stream", "yes"), ("stream", 1),
             ("max_tokens", "5"), ("max_tokens", -1), ("provider", []), ("provider", "x"),
             ("provider", {"sort": 5}), ("provider", {"order": "a"}), ("stream_options", 3),
             ("tools", {"x": 1}), ("temperature", "hot"), ("n", 2**63 - 1), ("seed", -2**63)]
    odd_models = ["", " ", "m" * 5000, "../../etc/passwd", "m:nitro:floor", ":nitro", "m\u0000",
                  "\u202e\u0645", "m%00", "💥", "m:unknown"]
    chat = "/v1/chat/completions"

    def post(kind: str, body: bytes, headers: dict[str, str] = AUTH) -> Case:
        return kind, "POST", chat, headers, body

    return [
        lambda: post("bad_json", good[:rng.randrange(len(good))]),
        lambda: post("bad_json", rng.randbytes(rng.randrange(1, 300))),
        lambda: post("wrong_type", orjson.dumps(
            {"model": "m", "messages": MESSAGES, **dict([rng.choice(wrong)])})),
        lambda: post("deep_nesting", _nested(rng.choice([300, 1100, 20000]))),
        lambda: post("huge_body", b'{"model": "m", "messages": [{"role": "user", "content": "'
                     + b"x" * (2 * 1024 * 1024) + b'"}]}'),
        lambda: post("huge_number", b'{"model": "m", "messages": [], "max_tokens": 1'
                     + b"0" * rng.choice([30, 400, 5000]) + b"}"),
        lambda: post("nan", b'{"model": "m", "messages": [], "temperature": NaN}'),
        lambda: post("invalid_utf8", b'{"model": "m\xff\xfe", "messages": []}'),
        lambda: post("nul_bytes", b'{"model": "m", "messages": [{"role": "user", '
                     b'"content": "a\\u0000b\x00"}]}'),
        lambda: post("odd_model", orjson.dumps({"model": rng.choice(odd_models),
                                                "messages": MESSAGES})),
        lambda: post("bad_header", good, {**AUTH, "x-tokenlane-provider": rng.choice(
            ["{", "[]", '{"sort": "fastest"}', "x" * 5000, '{"order": [1]}'])}),
        lambda: post("bad_content_type", good, {**AUTH, "content-type": rng.choice(
            ["text/plain", "application/x-www-form-urlencoded", ""])}),
        lambda: (("bad_method", rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS"]),
                  rng.choice([chat, "/v1/models", "/healthz", "/metrics"]), AUTH, good)),
        lambda: post("bad_auth", good, {"content-type": "application/json", **rng.choice(
            [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic dXNlcjpwdw=="},
             {"authorization": "Bearer"}, {"authorization": "bearer  " + MASTER_KEY + "x"}])}),
        lambda: (
            "bad_path", "GET", rng.choice(["/v1/models/" + "x" * 3000, "/v1/../../x", "/%ff",
                                           "/v1/router/stats?x=\u00ff"]), AUTH, b""),
        lambda: post("hostile_upstream", orjson.dumps({
            "model": f"bad-{rng.choice(list(MISBEHAVIOURS))}", "messages": MESSAGES,
            "stream": rng.random() < 0.5})),
    ]


RAW_HTTP = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


# -- checking answers --------------------------------------------------------------------------

def _openai_error(body: bytes) -> bool:
    try:
        err = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    return (isinstance(err, dict) and isinstance(err.get("message"), str)
            and isinstance(err.get("type"), str) and "param" in err and "code" in err)


def _bad_events(body: bytes) -> int:
    """Streamed events that are neither a chat.completion.chunk with a choices list nor an
    OpenAI error event."""
    bad = 0
    for block in body.split(b"\n\n"):
        if not block.startswith(b"data: ") or block == b"data: [DONE]":
            continue
        try:
            event = orjson.loads(block[6:])
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if isinstance(event, dict) and "error" in event:
            bad += not _openai_error(block[6:])
        elif not (isinstance(event, dict) and isinstance(event.get("choices"), list)):
            bad += 1
    return bad


class Tally:
    def __init__(self) -> None:
        self.by_kind: dict[str, dict[str, int]] = {}
        self.latencies: list[float] = []
        self.five_xx: list[str] = []
        self.not_openai: list[str] = []
        self.bad_events = 0

    def add(self, kind: str, status: int, body: bytes, ctype: str, seconds: float) -> None:
        row = self.by_kind.setdefault(kind, {"requests": 0, "5xx": 0, "not_openai": 0})
        row["requests"] += 1
        self.latencies.append(seconds)
        if status >= 500:
            row["5xx"] += 1
            self.five_xx.append(f"{kind}: {status} {body[:120]!r}")
        if status >= 400 and not _openai_error(body):
            row["not_openai"] += 1
            self.not_openai.append(f"{kind}: {status} {body[:120]!r}")
        if ctype.startswith("text/event-stream"):
            self.bad_events += _bad_events(body)


async def _send(http: httpx.AsyncClient, case: Case, tally: Tally) -> None:
    kind, method, path, headers, body = case
    start = time.perf_counter()
    try:
        r = await http.request(method, path, headers=headers, content=body)
        tally.add(kind, r.status_code, r.content, r.headers.get("content-type", ""),
                  time.perf_counter() - start)
    except httpx.HTTPError as exc:
        tally.add(kind, 599, repr(exc).encode(), "", time.perf_counter() - start)


async def _raw(port: int, data: bytes, tally: Tally) -> None:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 599
    tally.add("raw_http", status, body, "", time.perf_counter() - start)


async def _probe(url: str, stop: asyncio.Event) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url) as http:
        while not stop.is_set() and len(out) < 100_000:
            start = time.perf_counter()
            await http.get("/healthz")
            out.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)
    return out


async def _run(url: str, port: int, requests: int, concurrency: int, seed: int,
               rss: Callable[[], float]) -> dict[str, Any]:
    rng = random.Random(seed)
    makers = _cases(rng)
    tally = Tally()
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(rng.choice(makers)())
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(url, stop))
    rss_samples = []

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            await _send(http, queue.get_nowait(), tally)
            if len(tally.latencies) % 100 == 0:
                rss_samples.append(rss())

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        for data in RAW_HTTP:
            await _raw(port, data, tally)
        rss_start = rss()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    stop.set()
    probes = await probe
    return {"tally": tally, "probes": probes, "rss_start": rss_start, "rss_end": rss(),
            "rss_samples": rss_samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="~200 requests, seconds")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    requests = 200 if args.smoke else args.requests
    info = machine_info()
    started = time.perf_counter()
    sim = Simulator([SimProviderSpec(name="good", ttft_s=0, time_scale=0, output_tokens=8)])
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(sim.app) as sim_url, \
            serve_in_thread(_hostile_app) as hostile_url:
        work = Path(tmp)
        port = _free_port()
        cfg = work / "gateway.yaml"
        cfg.write_text(yaml.safe_dump(_gateway_config(port, hostile_url, sim_url)))
        gateway = Proc("gateway", [PYTHON, "-m", "tokenlane.cli", "--log-level", "info",
                                   "serve", "--config", str(cfg)], None, work,
                       env={"TOKENLANE_MASTER_KEYS": MASTER_KEY})
        try:
            gateway.wait_port(port)
            result = asyncio.run(_run(f"http://127.0.0.1:{port}", port, requests,
                                      args.concurrency, args.seed, gateway.rss_mb))
        finally:
            gateway.stop()
        log = gateway.log_path.read_text(errors="replace")
    data = _report(result, log, requests, args, info, time.perf_counter() - started)
    write_results("hostile", data, _markdown(data), args.out)
    print(_markdown(data))
    return 0


def _report(result: dict[str, Any], log: str, requests: int, args: argparse.Namespace,
            info: dict[str, Any], seconds: float) -> dict[str, Any]:
    tally: Tally = result["tally"]
    lat, probes = tally.latencies, result["probes"]
    finish_machine_info(info)
    tracebacks = log.count("Traceback (most recent call last)")
    growth = result["rss_end"] - result["rss_start"]
    summary = {
        "requests": len(lat),
        "5xx": len(tally.five_xx),
        "not_openai_errors": len(tally.not_openai),
        "bad_stream_events": tally.bad_events,
        "latency_p50_ms": 1000 * (percentile(lat, 50) or 0),
        "latency_p99_ms": 1000 * (percentile(lat, 99) or 0),
        "latency_max_ms": 1000 * max(lat, default=0),
        "latency_outliers": sum(1 for x in lat if x > OUTLIER_S),
        "probe_max_ms": 1000 * max(probes, default=0),
        "rss_start_mb": result["rss_start"],
        "rss_end_mb": result["rss_end"],
        "rss_growth_mb": growth,
        "log_tracebacks": tracebacks,
        "log_asgi_exceptions": log.count("Exception in ASGI application"),
    }
    passed = (summary["5xx"] == 0 and summary["not_openai_errors"] == 0
              and summary["bad_stream_events"] == 0 and summary["latency_outliers"] == 0
              and growth < TARGET_RSS_GROWTH_MB and tracebacks == 0)
    return {"machine": info, "config": {"requests": requests, "concurrency": args.concurrency,
                                        "seed": args.seed, "smoke": args.smoke},
            "seconds": seconds, "summary": summary, "passed": passed,
            "by_kind": tally.by_kind, "examples": {"5xx": tally.five_xx[:10],
                                                   "not_openai": tally.not_openai[:10]},
            "rss_samples_mb": result["rss_samples"]}


def _markdown(data: dict[str, Any]) -> str:
    s = data["summary"]
    rows = [[k, v["requests"], v["5xx"], v["not_openai"]] for k, v in sorted(data["by_kind"].items())]
    examples = "\n".join(f"- `{e}`" for e in data["examples"]["5xx"] + data["examples"]["not_openai"])
    return "\n\n".join([
        "# tokenlane hostile benchmark",
        (f"{data['config']['requests']} requests + {len(RAW_HTTP)} raw, concurrency "
         f"{data['config']['concurrency']}, seed {data['config']['seed']}, "
         f"{data['seconds']:.0f} s; nproc={data['machine']['nproc']}"),
        markdown_table(["measure", "value", "target"], [
            ["5xx answers", s["5xx"], 0], ["errors not in OpenAI's shape", s["not_openai_errors"], 0],
            ["streamed events neither chunk nor error", s["bad_stream_events"], 0],
            [f"answers slower than {OUTLIER_S:.0f} s", s["latency_outliers"], 0],
            ["latency p50 / p99 / max ms", (f"{s['latency_p50_ms']:.1f} / "
                                            f"{s['latency_p99_ms']:.1f} / "
                                            f"{s['latency_max_ms']:.1f}"), "–"],
            ["/healthz probe worst ms", f"{s['probe_max_ms']:.1f}", "–"],
            ["gateway RSS start → end MB", f"{s['rss_start_mb']:.0f} → {s['rss_end_mb']:.0f}",
             f"growth < {TARGET_RSS_GROWTH_MB:.0f}"],
            ["tracebacks in the gateway log", s["log_tracebacks"], 0],
            ["passed", "yes" if data["passed"] else "no", "yes"]]),
        markdown_table(["kind", "requests", "5xx", "not OpenAI-shaped"], rows),
        examples or "no failing examples",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
