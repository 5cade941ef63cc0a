"""Token arithmetic: prompt estimates, generated words, example tool arguments."""

from __future__ import annotations

import json

from tokenlane.sim.tokens import (
    estimate_prompt_tokens,
    example_arguments,
    split_arguments,
    text_pieces,
)


def test_prompt_tokens_are_chars_over_four_plus_three_per_message() -> None:
    body = {
        "messages": [{"role": "system", "content": "x" * 10}, {"role": "user", "content": "y" * 7}]
    }
    assert estimate_prompt_tokens(body) == 5 + 2 * 3  # ceil(17 / 4) + 3 per message


def test_prompt_tokens_count_text_parts_tools_and_earlier_tool_calls() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url"}]}
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]}
    tools = [{"type": "function", "function": {"name": "f"}}]
    plain = estimate_prompt_tokens({"messages": [parts]})
    assert plain == 1 + 3
    with_call = estimate_prompt_tokens({"messages": [parts, call]})
    assert with_call > plain + 3
    assert estimate_prompt_tokens({"messages": [parts], "tools": tools}) > plain


def test_prompt_tokens_tolerate_odd_shapes() -> None:
    assert estimate_prompt_tokens({}) == 0
    assert estimate_prompt_tokens({"messages": ["not a message", {"content": 5}]}) == 6


def test_text_pieces_are_one_word_per_token_and_name_the_provider() -> None:
    pieces = text_pieces("swift", 40)
    assert len(pieces) == 40
    assert all(p.strip() and " " not in p.strip() for p in pieces)
    assert "swift " in pieces
    assert not pieces[-1].endswith(" ")
    assert text_pieces("swift", 40) == pieces  # deterministic


def test_example_arguments_fill_required_properties_by_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "n": {"type": "number"},
            "i": {"type": "integer"},
            "b": {"type": "boolean"},
            "a": {"type": "array", "items": {"type": "string"}},
            "o": {
                "type": "object",
                "properties": {"inner": {"type": "string"}},
                "required": ["inner"],
            },
            "e": {"type": "string", "enum": ["first", "second"]},
            "nullable": {"type": ["null", "integer"]},
            "optional": {"type": "string"},
        },
        "required": ["s", "n", "i", "b", "a", "o", "e", "nullable"],
    }
    assert example_arguments(schema) == {
        "s": "example",
        "n": 1,
        "i": 1,
        "b": True,
        "a": [],
        "o": {"inner": "example"},
        "e": "first",
        "nullable": 1,
    }


def test_example_arguments_without_a_schema_is_an_empty_object() -> None:
    assert example_arguments(None) == {}
    assert example_arguments({"type": "object"}) == {}


def test_example_arguments_stop_at_deep_recursion() -> None:
    schema: dict = {"type": "object", "required": ["next"], "properties": {}}
    node = schema
    for _ in range(20):
        child: dict = {"type": "object", "required": ["next"], "properties": {}}
        node["properties"]["next"] = child
        node = child
    json.dumps(example_arguments(schema))  # finite and serialisable


def test_split_arguments_reassembles() -> None:
    text = json.dumps({"city": "example", "unit": "celsius"})
    fragments = split_arguments(text)
    assert "".join(fragments) == text
    assert all(0 < len(f) <= 4 for f in fragments)
