"""deploy/ names real things: the image runs a real `tokenlane` command with real options, its
healthcheck asks a real route, the compose file's services, mounts and ports fit together, the
config it mounts passes `tokenlane check`, and nginx points at the gateways. Nothing is built
and nothing needs the network or docker."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tokenlane import cli
from tokenlane.config import load_settings
from tokenlane.server import create_app
from tokenlane.sim import load_sim_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
ENV = {"TOKENLANE_MASTER_KEYS": "tl-deploy-test-key"}  # what compose requires to be set


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions per build stage, `(INSTRUCTION, arguments)`, continuations joined."""
    stages: list[list[tuple[str, str]]] = []
    logical, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    for line in logical:
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def last(stage: list[tuple[str, str]], instruction: str) -> str:
    found = [rest for name, rest in stage if name == instruction]
    assert found, f"no {instruction} in the image's stage"
    return found[-1]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture(scope="module")
def image() -> list[tuple[str, str]]:
    stages = dockerfile_stages((DEPLOY / "Dockerfile").read_text())
    assert len(stages) >= 1
    return stages[-1]  # what runs


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def gateways(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items()
            if s.get("command", [None])[0] == "serve"}


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the file on this side, for the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        out[target] = (DEPLOY / source).resolve()
    return out


def test_the_image_runs_a_real_tokenlane_command(image: list[tuple[str, str]]) -> None:
    base = last(image, "FROM").split()[0]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["tokenlane"] == "tokenlane.cli:main"
    entrypoint = json.loads(last(image, "ENTRYPOINT"))
    command = json.loads(last(image, "CMD"))
    assert entrypoint == ["tokenlane"]
    args = cli._parser().parse_args(command)  # SystemExit on an unknown command or option
    assert args.run is cli._serve and args.host == "0.0.0.0"
    # Installed with the Redis extra, which the package declares.
    installs = [rest for name, rest in image if name == "RUN" and "pip install" in rest]
    assert any('"tokenlane[redis]"' in rest for rest in installs), installs
    assert "redis" in pyproject["project"]["optional-dependencies"]


def test_the_image_runs_as_a_user_it_creates(image: list[tuple[str, str]]) -> None:
    user = last(image, "USER")
    assert user not in ("root", "0")
    created = [rest for name, rest in image if name == "RUN" and "useradd" in rest]
    assert any(re.search(rf"useradd\b.*\s{re.escape(user)}(\s|$)", rest) for rest in created)
    # USER comes before what runs.
    names = [name for name, _ in image]
    assert names.index("USER") < names.index("CMD")


def test_the_build_stage_copies_files_that_exist_and_the_context_lets_through() -> None:
    build = dockerfile_stages((DEPLOY / "Dockerfile").read_text())[0]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for name, rest in build:
        if name == "COPY" and not rest.startswith("--from"):
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, source


async def test_the_healthcheck_asks_a_real_route_on_the_served_port(
        image: list[tuple[str, str]]) -> None:
    check = last(image, "HEALTHCHECK")
    probe = json.loads(check[check.index("CMD ") + 4:])
    assert probe[:2] == ["python", "-c"]
    url = urlsplit(re.search(r"'(http://[^']+)'", probe[2]).group(1))
    assert url.port == int(option(json.loads(last(image, "CMD")), "--port"))
    settings = load_settings(DEPLOY / "tokenlane.yaml")
    app = create_app(settings, env=ENV)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as client:
        answer = await client.get(url.path)  # no key: the container's own probe sends none
    assert answer.status_code == 200, answer.text


def test_every_gateway_replica_serves_the_mounted_config_that_passes_check(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    replicas = gateways(compose)
    assert len(replicas) == 2
    dockerfile = (DEPLOY / compose["x-image"]["build"]["context"]
                  / compose["x-image"]["build"]["dockerfile"]).resolve()
    assert dockerfile == (DEPLOY / "Dockerfile").resolve()
    for service in replicas.values():
        assert service["build"] == compose["x-image"]["build"]
        args = cli._parser().parse_args(service["command"])
        assert args.run is cli._serve and args.workers >= 1 and args.port == 8000
        config = mounts(service)[args.config]
        assert config.is_file()
        for name, value in ENV.items():  # compose refuses to start without it (`${NAME:?}`)
            assert service["environment"][name].startswith(f"${{{name}:?")
            monkeypatch.setenv(name, value)
        assert cli.main(["check", "--config", str(config)]) == 0, capsys.readouterr().err
        assert load_settings(config).server.auth.master_keys_env in ENV


def args_list(replicas: dict[str, dict[str, Any]]) -> list[str]:
    commands = [s["command"] for s in replicas.values()]
    assert all(c == commands[0] for c in commands)
    return list(commands[0])


def test_the_config_points_at_the_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    settings = load_settings(DEPLOY / "tokenlane.yaml")
    state = urlsplit(settings.state.url)
    assert settings.state.backend == "redis"
    assert (state.hostname, state.port) == ("redis", 6379)  # redis-server's default port
    assert services["redis"]["image"].startswith("redis:")
    sim = services["sim"]
    args = cli._parser().parse_args(sim["command"])
    assert args.run is cli._sim
    simulated = load_sim_settings(str(mounts(sim)[args.config]))
    names = {p.name for p in simulated.providers}
    for name, provider in settings.providers.items():
        url = urlsplit(provider.base_url)
        assert (url.hostname, url.port) == ("sim", simulated.port), name
        assert url.path == f"/{name}/v1" and name in names


def test_nginx_sends_to_every_replica_unbuffered(compose: dict[str, Any]) -> None:
    lb = compose["services"]["lb"]
    assert lb["image"].startswith("nginx:")
    conf = mounts(lb)["/etc/nginx/nginx.conf"].read_text()
    port = int(option(args_list(gateways(compose)), "--port"))
    upstream = re.search(r"upstream (\w+) \{(.*?)\}", conf, re.DOTALL)
    assert upstream is not None
    servers = set(re.findall(r"^\s*server ([\w.-]+:\d+)", upstream.group(2), re.MULTILINE))
    assert servers == {f"{name}:{port}" for name in gateways(compose)}
    assert f"proxy_pass http://{upstream.group(1)};" in conf
    listen = re.search(r"listen (\d+);", conf).group(1)
    assert [p.split(":")[-1] for p in lb["ports"]] == [listen]
    # SSE: nothing held back, no read timeout shorter than a stream's gap between tokens.
    assert "proxy_buffering off;" in conf and "proxy_http_version 1.1;" in conf
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    stall = load_settings(DEPLOY / "tokenlane.yaml").routing.failover.stall_timeout_s
    assert read_timeout > stall
    for name in gateways(compose):
        assert lb["depends_on"][name]["condition"] == "service_healthy"
