"""Reading the `sim:` section of a config file, with errors that say where to look.

The gateway's config file and the simulator's are the same file: the gateway reads its
sections, `tokenlane sim --config FILE` reads `sim:`. Every problem is a `SimConfigError`
whose one-line message names the file, the line when known, and the key path
(`config/demo.yaml:12: sim.providers[0].tokens_per_s: Input should be greater than 0`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .spec import SimSettings

__all__ = ["SimConfigError", "describe_validation_error", "load_sim_settings", "parse_sim_settings"]


class SimConfigError(ValueError):
    """Simulator settings are unusable; the message says where and why in one line."""


def load_sim_settings(path: str | os.PathLike[str]) -> SimSettings:
    """Read a YAML file and validate its top-level `sim:` section."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SimConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise SimConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or "sim" not in data:
        raise SimConfigError(f"{source}: no top-level 'sim:' section")
    return parse_sim_settings(data["sim"], source=source, text=text, prefix=("sim",))


def parse_sim_settings(
    data: object,
    *,
    source: str = "<sim settings>",
    text: str | None = None,
    prefix: tuple[str | int, ...] = (),
) -> SimSettings:
    """Validate already-loaded settings; `prefix` is where `data` sits in the file's keys."""
    try:
        return SimSettings.model_validate(data)
    except ValidationError as exc:
        loc, message = describe_validation_error(exc, prefix)
        line = _line_of(text, loc) if text is not None else None
        where = f"{source}:{line}" if line else source
        raise SimConfigError(f"{where}: {message}") from None


def describe_validation_error(
    exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> tuple[tuple[Any, ...], str]:
    """The first error's full location, and a one-line `key.path: problem` message."""
    first = exc.errors()[0]
    loc = prefix + tuple(first["loc"])
    problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return loc, f"{key_path(loc)}: {problem}{more}"


def key_path(loc: tuple[Any, ...]) -> str:
    """`("sim", "providers", 0, "tokens_per_s")` -> `sim.providers[0].tokens_per_s`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-"):  # pydantic's validator frames
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
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
