"""The official openai SDK against a tokenlane gateway: routing options in, the decision out,
failures as typed exceptions with every attempt.

    pip install openai
    python examples/openai_sdk.py

Nothing to change in code written for the SDK but its `base_url`; tokenlane's helpers only
build the extra arguments and read the extra header.
"""

from __future__ import annotations

import openai
from _support import MODEL, gateway
from openai.types.chat import ChatCompletionMessageParam

from tokenlane import NoDeploymentAvailable, RoutingOptions, decision_from, error_from, openai_extra
from tokenlane.client import HasHeaders

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello!"}]


def routed(response: HasHeaders) -> str:
    """`planned -> served`: the decision's first choice, and the deployment that answered
    (they differ when the first choice failed before its first token and another took over)."""
    route = decision_from(response)
    assert route is not None, "not a tokenlane gateway"
    served = response.headers["x-tokenlane-deployment"]
    return route.chosen if served == route.chosen else f"{route.chosen} failed, {served} answered"


def show(client: openai.OpenAI) -> None:
    """Routing options in, decisions out, typed errors, with the SDK pointed at a gateway."""
    # Routing options: the body's `provider` object (OpenRouter-compatible)...
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES,
        **openai_extra(RoutingOptions(sort="throughput")))
    completion = raw.parse()
    route = decision_from(raw)
    assert route is not None
    print(f"sort=throughput -> {routed(raw)} (why={route.why}): "
          f"{completion.choices[0].message.content}")

    # ... or a header, for code that cannot add body fields.
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, **openai_extra({"only": ["swift"]}, via="header"))
    print(f"only=swift      -> {routed(raw)}")

    # Streaming: the decision is in the response headers, before the first chunk.
    with client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=MESSAGES, stream=True,
            **openai_extra({"sort": "latency"})) as response:
        print(f"sort=latency    -> {routed(response)}: ", end="")
        chunks = response.parse()
        assert isinstance(chunks, openai.Stream)
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()

    # Falling back: budget fails, the next deployment in the plan answers.
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, **openai_extra({"order": ["budget", "swift"]}))
    print(f"budget first    -> {routed(raw)}")

    # When nothing can answer: the SDK raises; error_from gives the typed error.
    try:
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES,
            **openai_extra({"only": ["budget"]}))
    except openai.APIStatusError as exc:
        typed = error_from(exc)
        assert isinstance(typed, NoDeploymentAvailable)
        print(f"only=budget     -> HTTP {typed.status} {typed.code}, attempts:")
        for attempt in typed.attempts:
            print(f"    {attempt.deployment}: {attempt.outcome} {attempt.status} "
                  f"({attempt.reason})")


def main() -> None:
    # budget fails every request: requests that try it fall back, invisibly to the client.
    with (gateway(budget={"error_rate": 1.0}) as (_, url),
          openai.OpenAI(base_url=f"{url}/v1", api_key="unused-in-demo",
                        max_retries=0) as client):
        show(client)


if __name__ == "__main__":
    main()
