"""Shared request bodies and spec shortcuts for the simulator's tests."""

from __future__ import annotations

from collections.abc import Callable

import openai
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tokenlane.sim import SimProviderSpec, Simulator

# Shapes of the conftest fixtures, for annotations.
StartSim = Callable[..., tuple[Simulator, str]]
SdkClient = Callable[..., openai.OpenAI]


def instant(name: str = "swift", **fields: object) -> SimProviderSpec:
    """A provider that answers at once (time_scale 0): for wire-format tests."""
    return SimProviderSpec(name=name, time_scale=0, **fields)  # type: ignore[arg-type]


HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]

WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "detailed": {"type": "boolean"},
            },
            "required": ["city", "unit", "days"],
        },
    },
}
