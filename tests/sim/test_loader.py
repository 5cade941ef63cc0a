"""Settings: the `sim:` section of a config file, and errors that point at the right key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tokenlane.sim import SimConfigError, SimProviderSpec, SimSettings, load_sim_settings

GOOD = """\
server:
  port: 8000          # the gateway's own sections are not the simulator's business
sim:
  port: 9001
  providers:
    - name: swift
      models: [llama-3.3-70b]
      ttft_s: 0.1
      tokens_per_s: 900
    - name: steady
      ttft_s: 0.4
      error_rate: 0.05
      rate_limit_rate: 0.1
      api_key: sk-steady
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokenlane.yaml"
    path.write_text(text)
    return path


def test_loads_the_sim_section(tmp_path: Path) -> None:
    settings = load_sim_settings(write(tmp_path, GOOD))
    assert settings.host == "127.0.0.1" and settings.port == 9001
    assert [p.name for p in settings.providers] == ["swift", "steady"]
    assert settings.providers[0].models == ["llama-3.3-70b"]
    assert settings.providers[1].api_key == "sk-steady"
    assert "sk-steady" not in repr(settings)


def test_bad_value_names_file_line_and_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("tokens_per_s: 900", "tokens_per_s: 0"))
    with pytest.raises(SimConfigError) as caught:
        load_sim_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:9: sim.providers[0].tokens_per_s: ")
    assert "greater than 0" in message


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("      ttft_s: 0.4", "      ttft_s: 0.4\n      speed: 3"))
    with pytest.raises(
        SimConfigError, match=r"tokenlane.yaml:12: sim\.providers\[1\]\.speed: unknown key"
    ):
        load_sim_settings(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server: {}\n", "no top-level 'sim:' section"),
        ("sim: [oops\n", "not valid YAML"),
        ("sim:\n  providers: []\n", "sim.providers: List should have at least 1 item"),
        (
            "sim:\n  providers:\n    - name: a\n    - name: a\n",
            "sim.providers: provider name 'a' is used twice",
        ),
        ("sim:\n  providers:\n    - name: has space\n", "sim.providers[0].name"),
        ("sim:\n  providers:\n    - name: _sim\n", "sim.providers[0].name"),
        ("sim:\n  providers:\n    - {name: a, fault: stall}\n", "unknown fault 'stall'"),
        (
            "sim:\n  providers:\n    - {name: a, error_rate: 0.7, rate_limit_rate: 0.7}\n",
            "must not exceed 1",
        ),
    ],
)
def test_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(
        SimConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")
    ) as caught:
        load_sim_settings(write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "tokenlane.yaml"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match="cannot read"):
        load_sim_settings(tmp_path / "absent.yaml")


def test_specs_are_frozen_and_strict() -> None:
    spec = SimProviderSpec(name="p")
    with pytest.raises(ValidationError):
        spec.ttft_s = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SimProviderSpec(name="p", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SimSettings.model_validate({"providers": [{"name": "p"}], "extra": 1})
