"""`logging.format: json`: each log record as one JSON object on one line, for log collectors.

A record may carry structured fields (`extra={"fields": {...}}`: the access log's and the
request log's); they become the object's own keys, so a collector reads them without parsing
the message again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "use_json_lines"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def use_json_lines(logger: logging.Logger) -> None:
    """Every handler of `logger` (the root's, from basicConfig) writes JSON lines."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
