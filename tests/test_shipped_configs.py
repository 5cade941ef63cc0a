"""The shipped configs show every section, and every routing setting at its real default, so a
user finds each knob where it lives and reads the value that applies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from tokenlane.config import RoutingSettings, Settings, load_settings

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "config").glob("*.yaml"))


def every_key(model: type[BaseModel], data: dict, path: str = "routing") -> list[str]:
    """The settings of `model` (nested) missing from `data`."""
    missing = []
    for name, field in model.model_fields.items():
        if name not in data:
            missing.append(f"{path}.{name}")
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            missing += every_key(field.annotation, data[name], f"{path}.{name}")
    return missing


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_section_and_routing_setting_is_shown(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    sections = set(Settings.model_fields) - {"sim"}
    assert sections <= set(data), sections - set(data)
    assert every_key(RoutingSettings, data["routing"]) == []
    assert load_settings(path).routing == RoutingSettings()  # the defaults, as they are
