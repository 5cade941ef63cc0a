"""Reading YAML config files with errors that say where to look: file, line, key path.

Shared by the gateway config and the simulator's `sim:` section (the same file). Pure apart
from reading the file. `ConfigError` lives here so both rooms raise one exception tree (the
simulator's `SimConfigError` is a `ConfigError`) that the command line reports the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["ConfigError", "describe_validation_error", "describe_validation_errors",
           "duplicate_keys", "key_path", "line_of", "locate", "read_yaml"]

# Location parts pydantic adds that are not keys in the file: validator frames, dict-key marks.
_NOT_KEYS = ("function-", "[key]")


class ConfigError(ValueError):
    """A config file is unusable. The message is one line: file, key path, what is wrong.

    `problems` lists every problem found, one line each (the message is the first), so that
    `tokenlane check` can report them all in one run."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


def read_yaml(path: str | os.PathLike[str], error: type[Exception], *,
              allow_duplicates: bool = False) -> tuple[Any, str]:
    """(parsed data, text) of a YAML file; `error(one-line message)` when unreadable, or when
    a mapping gives a key twice (unless `allow_duplicates`: the caller reports them)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    # YAML keeps the last of a key given twice, silently: a setting that seems to be there
    # is not. Refused, naming both lines.
    twice = [] if allow_duplicates else [
        f"{source}:{line}: {path}: {what}" for line, path, what in duplicate_keys(text)]
    if twice:
        raise _with_problems(error, twice)
    return data, text


def _with_problems(error: type[Exception], problems: list[str]) -> Exception:
    if issubclass(error, ConfigError):
        return error(problems[0], tuple(problems))
    return error(problems[0])


def duplicate_keys(text: str) -> list[tuple[int, str, str]]:
    """(line, key path, problem) for every key given twice in one mapping of `text`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    found = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack:  # an explicit stack: a deeply nested file cannot exhaust recursion
        node, loc = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key, value in node.value:
                line = key.start_mark.line + 1
                if key.value in first:
                    what = (f"given twice (first on line {first[key.value]}); YAML would keep "
                            "only the last")
                    found.append((line, key_path((*loc, key.value)), what))
                else:
                    first[key.value] = line
                stack.append((value, (*loc, key.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(node.value))
    return sorted(found)


def describe_validation_error(
    exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> tuple[tuple[Any, ...], str]:
    """The first error's full location, and a one-line `key.path: problem` message."""
    first = exc.errors()[0]
    loc = prefix + tuple(first["loc"])
    problem = _problem(first)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return loc, f"{key_path(loc)}: {problem}{more}"


def describe_validation_errors(
    exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> list[tuple[tuple[Any, ...], str]]:
    """Every error's location and one-line `key.path: problem` message."""
    out = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        out.append((loc, f"{key_path(loc)}: {_problem(error)}"))
    return out


def _problem(error: Any) -> str:
    problem = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    # Our own validators' messages are already sentences: drop pydantic's label for them.
    return str(problem).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def locate(source: str, text: str | None, loc: tuple[Any, ...]) -> str:
    """`file:line` when the line of `loc` can be found in `text`, else `file`."""
    line = line_of(text, loc) if text is not None else None
    return f"{source}:{line}" if line else source


def key_path(loc: tuple[Any, ...]) -> str:
    """`("sim", "providers", 0, "tokens_per_s")` -> `sim.providers[0].tokens_per_s`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(_NOT_KEYS):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest YAML node along `loc` (best effort)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
