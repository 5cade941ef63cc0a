"""The request log (`logging.requests`): one structured line per request, on the
`tokenlane.requests` logger at INFO, with or without virtual keys.

A line is the request's ledger row (tokens, cached and reasoning tokens, cost over every
billed attempt, TTFT, decode speed, outcome, attempts), who asked (a virtual key's id, name
and metadata, `master`, or `anonymous` when auth is off; never a secret) and the routing
decision's summary. With `logging.content` it also carries the prompt and the answer's text
per choice, streamed or not (a stream keeps its text only then: `ChatRequest.keep_text`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from .keys.records import VirtualKey
from .keys.store import LedgerRow
from .request import ChatRequest

__all__ = ["RequestLog", "log_fields"]

log = logging.getLogger("tokenlane.requests")

# Where each surface's body carries its prompt (chat and the surfaces translated onto it,
# completions, embeddings).
_PROMPT_FIELDS = ("messages", "prompt", "input")


class RequestLog:
    def __init__(self, *, content: bool = False, auth_enabled: bool = True) -> None:
        self.content = content  # logging.content: prompts and answers in the lines
        # Who a request without a virtual key is: a master key's holder, or nobody known.
        self._keyless = "master" if auth_enabled else "anonymous"

    def write(self, row: LedgerRow, key: VirtualKey | None, served: Any,
              chat: ChatRequest) -> None:
        """One line for a request that has ended (`served`: what answered it, or None)."""
        if not log.isEnabledFor(logging.INFO):
            return
        fields = log_fields(row, key, served, chat if self.content else None, self._keyless)
        log.info("%s", orjson.dumps(fields).decode(), extra={"fields": fields})


def log_fields(row: LedgerRow, key: VirtualKey | None, served: Any,
               content: ChatRequest | None = None, keyless: str = "master") -> dict[str, Any]:
    """The request log's fields: the ledger row, who asked (`keyless` when no virtual key;
    never the secret), and why that deployment; with `content` the prompt it sent and the
    answer's text."""
    line = row.to_dict()
    line["client"] = keyless if key is None else {
        "key_id": key.id, "name": key.spec.name, "metadata": key.spec.metadata}
    decision = getattr(served, "decision", None)
    line["decision"] = decision.header() if decision is not None else None
    if content is not None:
        body = content.body
        line["prompt"] = {k: body[k] for k in _PROMPT_FIELDS if k in body}
        line["answer"] = answer_text(served)
    return line


def answer_text(served: Any) -> list[str | None] | None:
    """Each choice's text: from a finished answer's body, or what a stream sent, assembled
    (`kept`); None when nothing answered."""
    kept = getattr(served, "kept", None)
    body = kept.result() if kept is not None else getattr(served, "body", None)
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        return None
    texts: list[str | None] = []
    for choice in choices:
        if not isinstance(choice, dict):
            texts.append(None)
            continue
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        texts.append(text if isinstance(text, str) else None)
    return texts
