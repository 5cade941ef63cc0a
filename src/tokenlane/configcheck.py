"""`tokenlane check`: every problem of a config file and the environment it needs, in one run,
each as `file:line: key.path: problem`.

`serve` stops at the first problem (the config is refused either way); a person fixing a file
wants the whole list: every key given twice, every validation error (unknown keys beside
missing fields), every environment variable not set, then the first cross-reference error
that resolving the config finds once those are accounted for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, Settings, parse_settings
from .defaults import default_settings
from .telemetry import check_installed
from .types import Catalog
from .yamlfile import duplicate_keys, line_of, read_yaml

__all__ = ["CheckReport", "check_config"]

_NOT_SET = re.compile(r"environment variable (\S+) is not set")
_KEY_PATH = re.compile(r"([^\s:]+): ")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass
class CheckReport:
    source: str
    problems: list[str] = field(default_factory=list)
    catalog: Catalog | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.catalog is not None


def check_config(path: str | None, env: Mapping[str, str]) -> CheckReport:
    """The file at `path`, or the embedded default `serve` would use (None)."""
    text = None
    if path is None:
        try:
            settings, source = default_settings(env)
        except ConfigError as exc:
            return CheckReport("embedded config", list(exc.problems))
    else:
        source = path
        try:
            data, text = read_yaml(path, ConfigError, allow_duplicates=True)
        except ConfigError as exc:
            return CheckReport(source, list(exc.problems))
        # Keys given twice, then what validation says of the values YAML kept.
        twice = [f"{source}:{line}: {key}: {what}" for line, key, what in duplicate_keys(text)]
        try:
            settings = parse_settings(data, source=source, text=text)
        except ConfigError as exc:
            return CheckReport(source, [*twice, *exc.problems])
        if twice:
            return CheckReport(source, twice)
    report = CheckReport(source)
    report.catalog = _resolve(settings, env, source, text, report.problems)
    for check in (lambda: settings.server.auth.master_keys(env, source=source),
                  lambda: check_installed(settings.telemetry, source=source)):
        try:
            check()
        except ConfigError as exc:
            report.problems.append(_with_line(str(exc), source, text))
    return report


def _resolve(settings: Settings, env: Mapping[str, str], source: str, text: str | None,
             problems: list[str]) -> Catalog | None:
    """Resolve as `serve` does; each variable found missing is noted, then stood in for so the
    next problem shows (bounded: each variable is missing once)."""
    stand_in = dict(env)
    for _ in range(1 + len(settings.providers) * 16):
        try:
            catalog = settings.resolve(stand_in, source=source)
            settings.check_not_serving_itself(catalog, source=source)
        except ConfigError as exc:
            problems.append(_with_line(str(exc), source, text))
            missing = _NOT_SET.search(str(exc))
            if missing is None or missing.group(1) in stand_in:
                return None
            stand_in[missing.group(1)] = "unset-in-check"
        else:
            return None if problems else catalog
    return None


def _with_line(message: str, source: str, text: str | None) -> str:
    """`file: key.path: problem` -> `file:line: key.path: problem` when the key is found."""
    if text is None or not message.startswith(f"{source}: "):
        return message
    rest = message[len(source) + 2:]
    path = _KEY_PATH.match(rest)
    if path is None:
        return message
    loc: list[Any] = [int(i) if i else name for name, i in _PART.findall(path.group(1))]
    line = line_of(text, tuple(loc))
    return f"{source}:{line}: {rest}" if line else message
