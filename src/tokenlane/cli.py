"""tokenlane: a self-hosted LLM gateway that routes each request by measured speed and price."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn

from .config import ConfigError, Settings
from .defaults import default_settings
from .keys.commands import add_commands as add_key_commands
from .types import Catalog

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every upstream request at INFO: noise at our request rates.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:  # the gateway's and the simulator's (SimConfigError) alike
        print(f"tokenlane: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


_DEFAULT_CONFIG = "YAML config; default: embedded (the demo when no provider API keys are set)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenlane", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tokenlane {_version()}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND",
                                title="commands (tokenlane COMMAND --help for each)")

    serve = sub.add_parser("serve", help="run the gateway (and its simulated providers, if any)")
    serve.add_argument("--config", help=_DEFAULT_CONFIG)
    serve.add_argument("--host", help="address to listen on (default: the config's server.host)")
    serve.add_argument("--port", type=int, help="port (default: the config's server.port)")
    serve.set_defaults(run=_serve)

    sim = sub.add_parser("sim", help="serve the simulated providers of a config's `sim:` section")
    sim.add_argument("--config", required=True, help="YAML config with a `sim:` section")
    sim.set_defaults(run=_sim)

    stats = sub.add_parser("stats", help="print a running gateway's live routing estimates")
    stats.add_argument("--url", default="http://127.0.0.1:8000",
                       help="the gateway (default: %(default)s)")
    stats.add_argument("--key", default=os.environ.get("TOKENLANE_API_KEY"),
                       help="gateway key (default: $TOKENLANE_API_KEY)")
    stats.add_argument("--json", action="store_true", help="print the raw JSON")
    stats.set_defaults(run=_stats)

    check = sub.add_parser("check", help="list every problem of a config and the environment "
                                         "it needs (file:line: key: problem)")
    check.add_argument("--config", help=_DEFAULT_CONFIG)
    check.set_defaults(run=_check)
    add_key_commands(sub)  # keys ..., spend: the admin API of a running gateway
    # Accepted before the command or after it (`tokenlane serve --log-level debug`).
    _everywhere(parser, "--log-level", default="info",
                choices=["debug", "info", "warning", "error"], help="default: %(default)s")
    return parser


def _everywhere(parser: argparse.ArgumentParser, *names: str, **options: Any) -> None:
    """Add an option to `parser` and every (sub)command under it. Below the top, its default is
    SUPPRESS, so a value given before the command is not overwritten by the command's default."""
    parser.add_argument(*names, **options)
    seen: set[int] = set()
    pending = [parser]
    while pending:
        for action in pending.pop()._actions:
            # argparse keeps subcommands in this (private, long-stable) action type.
            if isinstance(action, argparse._SubParsersAction):
                for command in action.choices.values():
                    if id(command) not in seen:  # aliases share one parser
                        seen.add(id(command))
                        command.add_argument(*names, **{**options, "default": argparse.SUPPRESS})
                        pending.append(command)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenlane")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree, uninstalled
        return "unknown"


def _load(path: str | None) -> tuple[Settings, str]:
    from .config import load_settings

    if path is None:
        return default_settings(os.environ)
    return load_settings(path), path


def _validate(settings: Settings, source: str) -> Catalog:
    """Everything `serve` needs from the settings and the environment, checked the same way
    by `check`: cross-references, provider keys, and the gateway's own master keys."""
    catalog = settings.resolve(os.environ, source=source)
    settings.check_not_serving_itself(catalog, source=source)
    settings.server.auth.master_keys(os.environ, source=source)
    return catalog


def _check(args: argparse.Namespace) -> int:
    from .configcheck import check_config

    report = check_config(args.config, os.environ)
    if report.catalog is None or report.problems:
        for problem in report.problems:
            print(f"tokenlane: config error: {problem}", file=sys.stderr)
        if len(report.problems) > 1:
            print(f"tokenlane: {len(report.problems)} problems", file=sys.stderr)
        return 2
    catalog = report.catalog
    deployments = sum(len(m.deployments) for m in catalog.models.values())
    print(f"{report.source}: ok ({len(catalog.models)} models, {deployments} deployments)")
    return 0


def _stats(args: argparse.Namespace) -> int:
    import httpx

    from .stats.table import render_stats

    headers = {"authorization": f"Bearer {args.key}"} if args.key else {}
    try:
        response = httpx.get(f"{args.url.rstrip('/')}/v1/router/stats", headers=headers,
                             timeout=10)
    except httpx.HTTPError as exc:
        print(f"tokenlane: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"tokenlane: {args.url} answered HTTP {response.status_code}: {response.text[:300]}",
              file=sys.stderr)
        return 1
    print(response.text if args.json else render_stats(response.json()), end="")
    return 0


def _sim(args: argparse.Namespace) -> int:
    from .sim import load_sim_settings, run_simulator

    run_simulator(load_sim_settings(args.config))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .logformat import use_json_lines
    from .server import create_app
    from .server.drain import draining_server
    from .server.protocol import GatewayHttpProtocol

    settings, source = _load(args.config)
    server_settings = settings.server.model_copy(update={
        k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None
    })
    settings = settings.model_copy(update={"server": server_settings})
    if settings.logging.format == "json":
        use_json_lines(logging.getLogger())  # the handler main()'s basicConfig installed
    app = create_app(settings, source=source, catalog=_validate(settings, source))
    # Streams in flight get drain_timeout_s to finish, then end with an error event (drain.py).
    gateway = draining_server(
        app, host=server_settings.host, port=server_settings.port, http=GatewayHttpProtocol,
        log_level=args.log_level, access_log=False,
        server_header=False,  # no need to tell the world which server version runs here
    )
    sim_server = _sim_server(settings, args.log_level)
    admin_server = _admin_server(app, settings)
    _banner(settings, source)
    with _runner() as runner:
        runner.run(_serve_all(gateway, sim_server, admin_server))
    return 0


class _QuietServer(uvicorn.Server):
    """A server that leaves signal handling to its sibling, so one Ctrl-C stops both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _sim_server(settings: Settings, log_level: str) -> uvicorn.Server | None:
    if settings.sim is None:
        return None
    from .sim import Simulator

    simulator = Simulator(settings.sim.providers)
    return _QuietServer(uvicorn.Config(
        simulator.app, host=settings.sim.host, port=settings.sim.port, http="httptools",
        log_level="warning", access_log=False,
    ))


def _admin_server(app: Any, settings: Settings) -> uvicorn.Server | None:
    """The admin API on its own port (`keys.admin_port`), when configured."""
    admin = app.state.admin_app
    if admin is None or settings.keys.admin_port is None:
        return None
    return _QuietServer(uvicorn.Config(
        admin, host=settings.server.host, port=settings.keys.admin_port, http="httptools",
        log_level="warning", access_log=False, server_header=False,
    ))


async def _serve_all(gateway: uvicorn.Server, *siblings: uvicorn.Server | None) -> None:
    """The gateway and its sibling servers (simulator, admin API); they stop with it."""
    others = [s for s in siblings if s is not None]
    tasks = [asyncio.create_task(s.serve()) for s in others]
    ready = asyncio.create_task(_announce_ready([gateway, *others]))
    try:
        await gateway.serve()
    finally:
        ready.cancel()
        for server in others:
            server.should_exit = True
        await asyncio.gather(*tasks)


async def _announce_ready(servers: list[uvicorn.Server]) -> None:
    # uvicorn flips `started` once its sockets listen; scripts and tests wait for this line.
    while not all(s.started for s in servers):
        if any(s.should_exit for s in servers):
            return
        await asyncio.sleep(0.01)
    print("tokenlane: ready", flush=True)


@contextlib.contextmanager
def _runner() -> Iterator[asyncio.Runner]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is part of uvicorn[standard]
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        yield runner


def _banner(settings: Settings, source: str) -> None:
    s = settings.server
    url = f"http://{s.host}:{s.port}"
    model = next(iter(settings.models))
    auth = (f"Authorization: Bearer ${s.auth.master_keys_env}" if s.auth.enabled
            else "no auth (demo)")
    print(f"""
tokenlane gateway on {url}   config: {source}
  models: {', '.join(settings.models)}     auth: {auth}
  dashboard: {url}/dashboard   (live speed, TTFT, errors, cost and routing decisions)
  try it:
    curl -s {url}/v1/chat/completions -H 'content-type: application/json' \\
      -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}'
  or with the openai SDK:
    OpenAI(base_url="{url}/v1", api_key="...").chat.completions.create(model="{model}", ...)
""", flush=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
