"""The public surface: explicit sorted `__all__`, a docstring on every public name, typed."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import tokenlane

MODULES = ["tokenlane", "tokenlane.client", "tokenlane.client.anthropic_results",
           "tokenlane.client.gateway",
           "tokenlane.client.openai_compat", "tokenlane.client.results",
           "tokenlane.client.route", "tokenlane.client.router", "tokenlane.client.streams"]


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then everything else, each sorted."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", [*MODULES, "tokenlane.client._chat", "tokenlane.client._messages",
                                  "tokenlane.client._closing", "tokenlane.client._wire"])
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    assert module.__all__ == sorted(module.__all__, key=_isort_key)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"


def _documented(obj: object) -> bool:
    return bool(inspect.getdoc(obj))


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_has_a_docstring(name: str) -> None:
    module = importlib.import_module(name)
    missing = []
    for attr in module.__all__:
        obj = getattr(module, attr)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not obj.__module__.startswith("tokenlane.client"):
            continue  # re-exported from the rooms that own them
        if not _documented(obj):
            missing.append(attr)
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_") or not (callable(value)
                                                  or isinstance(value, property)):
                    continue
                if not _documented(value):
                    missing.append(f"{attr}.{member}")
    assert not missing, f"no docstring: {missing}"


def test_the_package_is_typed_and_imports_lazily() -> None:
    assert (Path(tokenlane.__file__).parent / "py.typed").is_file()
    script = ("import sys, tokenlane, tokenlane.config; "
              "print(sorted({'tokenlane.client', 'httpx'} & set(sys.modules)))")
    light = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True)
    assert light.stdout.strip() == "[]"
    assert tokenlane.Choice.__module__ == "tokenlane.client.results"  # not in __all__, typed
    assert tokenlane.Router.__module__ == "tokenlane.client.router"
    assert isinstance(tokenlane.__version__, str)
    with pytest.raises(AttributeError):
        tokenlane.NoSuchThing  # noqa: B018
