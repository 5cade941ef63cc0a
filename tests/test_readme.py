"""The README's two commands are the ones that work: the second is exactly what CI runs, and the
first installs tokenlane and starts the gateway."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps(command: str) -> list[list[str]]:
    """`a -x && b 'y z'` -> [["a", "-x"], ["b", "y z"]]: what the shell runs, quoting undone."""
    return [shlex.split(step) for step in command.split("&&")]


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README has no bash block"
    return [line for line in block.group(1).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def ci_commands() -> list[str]:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return [line for line in script.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_readme_opens_with_exactly_two_commands() -> None:
    assert len(readme_commands()) == 2


def test_ci_runs_the_readme_test_command() -> None:
    _serve, test = readme_commands()
    ci = [steps(line) for line in ci_commands() if "pytest" in line]
    assert ci == [steps(test)]
    *install, run = steps(test)
    assert ["python3", "-m", "venv", ".venv"] in install
    assert any(s[:2] == [".venv/bin/pip", "install"] and ".[test]" in s for s in install)
    assert run[:3] == [".venv/bin/python", "-m", "pytest"]


def test_first_command_installs_and_starts_the_gateway() -> None:
    serve, _test = readme_commands()
    *install, run = steps(serve)
    assert ["python3", "-m", "venv", ".venv"] in install
    assert any(s[:2] == [".venv/bin/pip", "install"] and "." in s for s in install)
    assert run == [".venv/bin/tokenlane", "serve"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["tokenlane"] == "tokenlane.cli:main"
