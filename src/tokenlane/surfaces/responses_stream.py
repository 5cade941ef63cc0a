"""OpenAI chat.completion.chunk stream -> Responses semantic events (pure).

The order OpenAI's Responses API streams in, every event numbered by `sequence_number`:

    response.created, response.in_progress           status in_progress, no output yet
    response.output_item.added (reasoning)           a reasoning model's thinking, if any:
    response.reasoning_text.delta ... .done, response.output_item.done
    response.output_item.added                       a message item (or a function_call item)
    response.content_part.added                      an empty output_text part
    response.output_text.delta ...
    response.output_text.done, response.content_part.done, response.output_item.done
    response.output_item.added (function_call)
    response.function_call_arguments.delta ...
    response.function_call_arguments.done, response.output_item.done
    response.completed                               (response.incomplete at the token limit)

A stream that breaks after output reached the client ends with an `error` event and
`response.failed`.
"""

from __future__ import annotations

from typing import Any

from .chunks import ChunkWalk, Event
from .responses_reply import (
    ResponseEcho,
    function_call_item,
    item_id,
    message_item,
    output_text,
    reasoning_item,
    response_id,
    response_object,
    status_of,
    usage_of,
)

__all__ = ["ResponsesStream"]


class _Item:
    """One output item under construction."""

    __slots__ = ("arguments", "call_id", "kind", "name", "text")

    def __init__(self, kind: str, call_id: str = "", name: str = "") -> None:
        self.kind = kind  # "reasoning", "message" or "function_call"
        self.call_id = call_id
        self.name = name
        self.text: list[str] = []
        self.arguments: list[str] = []


class ResponsesStream(ChunkWalk):
    """Feed chunks with `add`, then `finish()` or `failed(...)`; each returns events."""

    def __init__(self, echo: ResponseEcho, created_at: float) -> None:
        self._echo = echo
        self._created_at = created_at
        super().__init__()
        self._seq = 0
        self._id = response_id(None)
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._tool_items: dict[int, int] = {}  # chat tool-call index -> output index
        self._done: list[dict[str, Any]] = []  # finished items, by output index

    def finish(self) -> list[Event]:
        events = self.opening() + self._close()
        status, reason = status_of(self.finish_reason)
        response = response_object(self._echo, self._id, self._created_at, status,
                                   list(self._done), usage_of(self.usage), reason)
        name = "response.completed" if status == "completed" else "response.incomplete"
        events.append(self._event(name, {"response": response}))
        return events

    def failed(self, code: str, message: str) -> list[Event]:
        events = self.opening()
        events.append(self._event("error", {"code": code, "message": message, "param": None}))
        response = response_object(self._echo, self._id, self._created_at, "failed",
                                   list(self._done), usage_of(self.usage))
        response["error"] = {"code": "server_error", "message": message}
        events.append(self._event("response.failed", {"response": response}))
        return events

    # -- items ------------------------------------------------------------------------------

    def begin(self, chunk: dict[str, Any]) -> list[Event]:
        self._id = response_id(chunk.get("id"))
        shell = response_object(self._echo, self._id, self._created_at, "in_progress", [])
        return [self._event("response.created", {"response": shell}),
                self._event("response.in_progress", {"response": shell})]

    def reasoning(self, text: str) -> list[Event]:
        events: list[Event] = []
        item = self._open
        if item is None or item.kind != "reasoning":
            events += self._close()
            item = self._open_item(_Item("reasoning"))
            events.append(self._event("response.output_item.added", {
                "output_index": len(self._items) - 1,
                "item": reasoning_item(self._where("rs")["item_id"], None, "in_progress")}))
        item.text.append(text)
        events.append(self._event("response.reasoning_text.delta", {
            **self._where("rs"), "content_index": 0, "delta": text}))
        return events

    def text(self, text: str) -> list[Event]:
        events: list[Event] = []
        item = self._open
        if item is None or item.kind != "message":
            events += self._close()
            item = self._open_item(_Item("message"))
            events.append(self._event("response.output_item.added", {
                "output_index": len(self._items) - 1,
                "item": message_item(self._where()["item_id"], None, "in_progress")}))
            events.append(self._event("response.content_part.added", {
                **self._where(), "content_index": 0, "part": output_text("")}))
        item.text.append(text)
        events.append(self._event("response.output_text.delta", {
            **self._where(), "content_index": 0, "delta": text, "logprobs": []}))
        return events

    def tool_piece(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        position = self._tool_items.get(index)
        if position is None:
            events += self._close()
            call_id = call.get("id") or f"call_{self._id}_{index}"
            item = self._open_item(_Item("function_call", call_id, function.get("name") or ""))
            position = self._tool_items[index] = len(self._items) - 1
            events.append(self._event("response.output_item.added", {
                "output_index": position,
                "item": function_call_item(call_id, item.name, "", "in_progress")}))
        item = self._items[position]
        if function.get("arguments"):
            item.arguments.append(function["arguments"])
            events.append(self._event("response.function_call_arguments.delta", {
                "item_id": "fc_" + item.call_id, "output_index": position,
                "delta": function["arguments"]}))
        return events

    def _open_item(self, item: _Item) -> _Item:
        self._items.append(item)
        self._open = item
        return item

    def _where(self, prefix: str = "msg") -> dict[str, Any]:
        """Where the newest item is (the open one): its id and output index."""
        index = len(self._items) - 1
        return {"item_id": item_id(prefix, self._id, index), "output_index": index}

    def _close(self) -> list[Event]:
        item = self._open
        if item is None:
            return []
        self._open = None
        index = self._items.index(item)
        if item.kind == "message":
            text = "".join(item.text)
            where = self._where()
            done = message_item(where["item_id"], text, "completed")
            events = [
                self._event("response.output_text.done", {
                    **where, "content_index": 0, "text": text, "logprobs": []}),
                self._event("response.content_part.done", {
                    **where, "content_index": 0, "part": output_text(text)}),
            ]
        elif item.kind == "reasoning":
            text = "".join(item.text)
            where = self._where("rs")
            done = reasoning_item(where["item_id"], text, "completed")
            events = [self._event("response.reasoning_text.done", {
                **where, "content_index": 0, "text": text})]
        else:
            arguments = "".join(item.arguments)
            done = function_call_item(item.call_id, item.name, arguments, "completed")
            events = [self._event("response.function_call_arguments.done", {
                "item_id": done["id"], "output_index": index, "name": item.name,
                "arguments": arguments})]
        self._done.append(done)
        events.append(self._event("response.output_item.done",
                                  {"output_index": index, "item": done}))
        return events

    def _event(self, name: str, fields: dict[str, Any]) -> Event:
        event = {"type": name, "sequence_number": self._seq, **fields}
        self._seq += 1
        return name, event
