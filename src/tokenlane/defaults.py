"""The embedded default config: real providers whose keys are set, else the simulated demo."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .config import Settings, load_settings, parse_settings
from .presets import PRESETS

__all__ = ["config_file", "default_settings"]


def config_file(name: str) -> Path:
    """A config shipped with tokenlane (wheel: tokenlane/_config; source tree: config/)."""
    packaged = resources.files("tokenlane").joinpath("_config", name)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "config" / name


def default_settings(env: Mapping[str, str]) -> tuple[Settings, str]:
    """Settings and a label saying where they came from.

    With at least one provider key in the environment: the shipped tokenlane.yaml narrowed to
    the providers whose keys are present. Otherwise the demo with simulated providers.
    """
    real = config_file("tokenlane.yaml")
    data = yaml.safe_load(real.read_text(encoding="utf-8"))
    usable = {name for name, spec in data["providers"].items() if _has_key(spec, env)}
    if usable:
        models: dict[str, Any] = {}
        for model, spec in data["models"].items():
            deps = [d for d in spec["deployments"] if d["provider"] in usable]
            if deps:
                models[model] = {**spec, "deployments": deps}
        data["providers"] = {k: v for k, v in data["providers"].items() if k in usable}
        data["models"] = models
        label = f"embedded {real.name} (providers with keys: {', '.join(sorted(usable))})"
        return parse_settings(data, source=str(real)), label
    demo = config_file("demo.yaml")
    return load_settings(demo), f"embedded {demo.name} (simulated providers, no API keys set)"


def _has_key(spec: dict[str, Any], env: Mapping[str, str]) -> bool:
    preset = PRESETS.get(spec.get("preset", ""))
    key_env = spec.get("api_key_env") or (preset.api_key_env if preset else None)
    # Keyless local servers are not evidence the user wants real providers.
    return bool(key_env and env.get(key_env) and (preset is None or preset.key_required))
