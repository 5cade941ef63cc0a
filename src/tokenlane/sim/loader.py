"""Reading the `sim:` section of a config file, with errors that say where to look.

The gateway's config file and the simulator's are the same file: the gateway reads its
sections, `tokenlane sim --config FILE` reads `sim:`. Every problem is a `SimConfigError`
whose one-line message names the file, the line when known, and the key path
(`config/demo.yaml:12: sim.providers[0].tokens_per_s: Input should be greater than 0`).
"""

from __future__ import annotations

import os

from pydantic import ValidationError

from ..yamlfile import ConfigError, describe_validation_error, locate, read_yaml
from .spec import SimSettings

__all__ = ["SimConfigError", "load_sim_settings", "parse_sim_settings"]


class SimConfigError(ConfigError):
    """Simulator settings are unusable; the message says where and why in one line. A
    `ConfigError`, so `tokenlane sim` reports it as the gateway reports its own config errors."""


def load_sim_settings(path: str | os.PathLike[str]) -> SimSettings:
    """Read a YAML file and validate its top-level `sim:` section."""
    data, text = read_yaml(path, SimConfigError)
    if not isinstance(data, dict) or "sim" not in data:
        raise SimConfigError(f"{path}: no top-level 'sim:' section")
    return parse_sim_settings(data["sim"], source=str(path), text=text, prefix=("sim",))


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
        raise SimConfigError(f"{locate(source, text, loc)}: {message}") from None
