"""tokenlane: a self-hosted LLM gateway that routes each request by measured speed and price."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn

from .config import ConfigError, Settings
from .defaults import default_settings
from .heap import settle_heap
from .keys.commands import add_commands as add_key_commands
from .telemetry import otlp_endpoint
from .types import Catalog

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:  # the gateway's and the simulator's (SimConfigError) alike
        print(f"tokenlane: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every upstream request at INFO: noise at our request rates.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


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
    serve.add_argument("--workers", type=_at_least_one, default=1, metavar="N",
                       help="processes serving the port, each with its own app built from "
                            "the config (share state with state.backend: redis; "
                            "default: %(default)s)")
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


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


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
    settings, source = _serve_settings(args.config, args.host, args.port)
    catalog = _validate(settings, source)
    if args.workers > 1:
        return _serve_workers(args, settings, source)
    app = _gateway_app(settings, source, catalog)
    gateway = _gateway_server(app, settings, args.log_level)
    sim_server = _sim_server(settings, args.log_level)
    admin_server = _admin_server(app, settings)
    _banner(settings, source)
    settle_heap()  # the collector finds nothing in a request's objects: heap.py
    with _runner() as runner:
        runner.run(_serve_all(gateway, sim_server, admin_server))
    return 0


def _serve_settings(path: str | None, host: str | None, port: int | None) -> tuple[Settings, str]:
    settings, source = _load(path)
    server_settings = settings.server.model_copy(update={
        k: v for k, v in (("host", host), ("port", port)) if v is not None
    })
    return settings.model_copy(update={"server": server_settings}), source


def _use_log_format(settings: Settings) -> None:
    from .logformat import use_json_lines

    if settings.logging.format == "json":
        use_json_lines(logging.getLogger())  # the handler main()'s basicConfig installed


def _gateway_app(settings: Settings, source: str, catalog: Catalog) -> Any:
    from .server import create_app

    _use_log_format(settings)
    return create_app(settings, source=source, catalog=catalog)


def _gateway_server(app: Any, settings: Settings, log_level: str, *,
                    quiet: bool = False) -> uvicorn.Server:
    from .server.drain import DrainingServer, draining_server
    from .server.protocol import GatewayHttpProtocol

    # Streams in flight get drain_timeout_s to finish, then end with an error event (drain.py).
    return draining_server(
        app, host=settings.server.host, port=settings.server.port, http=GatewayHttpProtocol,
        log_level=log_level, access_log=False,
        server_header=False,  # no need to tell the world which server version runs here
        server_class=_quiet_draining_server() if quiet else DrainingServer,
    )


@dataclass(frozen=True)
class _WorkerPlan:
    """What a worker process needs to build its own gateway (sent to it pickled)."""

    config: str | None
    host: str
    port: int
    admin_port: int | None
    log_level: str


def _serve_workers(args: argparse.Namespace, settings: Settings, source: str) -> int:
    """`serve --workers N`: the supervisor (workers.py) with the simulated providers, if any,
    in this process: one simulator for all the workers, up until the last has drained."""
    from .workers import Supervisor, reserve_port, workers_warning

    host = settings.server.host
    admin_port = settings.keys.admin_port if settings.keys.enabled else None
    held: list[socket.socket] = []
    for wanted in (settings.server.port, admin_port):
        if wanted is None:
            continue
        try:
            held.append(reserve_port(host, wanted))
        except OSError as exc:
            for sock in held:
                sock.close()
            print(f"tokenlane: cannot listen on {host}:{wanted}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 1
    port = held[0].getsockname()[1]
    settings = settings.model_copy(update={"server": settings.server.model_copy(
        update={"port": port})})
    plan = _WorkerPlan(args.config, host, port, admin_port, args.log_level)
    _use_log_format(settings)  # the supervisor's own lines, like the workers'
    warning = workers_warning(settings.state.backend, args.workers)
    if warning is not None:
        print(f"tokenlane: {warning}", file=sys.stderr, flush=True)
    _banner(settings, source, workers=args.workers)
    sim_server = _sim_server(settings, args.log_level)

    async def supervise() -> int:
        sim = asyncio.create_task(sim_server.serve()) if sim_server is not None else None
        try:
            if sim_server is not None and not await _started([sim_server]):
                return 1
            return await Supervisor(_serve_worker, plan, args.workers).run(_print_ready)
        finally:
            if sim is not None and sim_server is not None:
                sim_server.should_exit = True
                await sim

    try:
        with _runner() as runner:
            return runner.run(supervise())
    finally:
        for sock in held:
            sock.close()


def _serve_worker(plan: _WorkerPlan, worker: Any) -> int:
    """One worker of `serve --workers N` (runs in its own process): its own app from the
    config, on its own SO_REUSEPORT sockets, every response naming the worker."""
    from .server.worker_header import with_worker_header

    _configure_logging(plan.log_level)
    settings, source = _serve_settings(plan.config, plan.host, plan.port)
    app = _gateway_app(settings, source, _validate(settings, source))
    app.entry = with_worker_header(app.entry, worker.label)  # outermost: every response
    gateway = _gateway_server(app, settings, plan.log_level, quiet=True)
    admin_server = _admin_server(app, settings)
    sockets = {id(gateway): [worker.listen_socket(plan.host, plan.port)]}
    if admin_server is not None and plan.admin_port is not None:
        sockets[id(admin_server)] = [worker.listen_socket(plan.host, plan.admin_port)]

    def stop() -> None:
        if gateway.should_exit:  # a second signal: cut the drain short
            gateway.force_exit = True
        gateway.should_exit = True

    async def serve() -> None:
        worker.stop_on_signals(stop)
        await _serve_all(gateway, admin_server, sockets=sockets, on_ready=worker.ready)

    settle_heap()
    with _runner() as runner:
        runner.run(serve())
    return 0


class _QuietServer(uvicorn.Server):
    """A server that leaves signal handling to its sibling, so one Ctrl-C stops both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _quiet_draining_server() -> type[Any]:
    """The gateway's server in a worker, where the worker's own handler takes the signals
    (workers.Worker.stop_on_signals): uvicorn's would re-raise SIGTERM once it has drained,
    and the worker would exit killed rather than with 0. Built here, as drain.py is imported
    only when serving."""
    from .server.drain import DrainingServer

    return type("QuietDrainingServer", (_QuietServer, DrainingServer), {})


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


async def _serve_all(gateway: uvicorn.Server, *siblings: uvicorn.Server | None,
                     sockets: dict[int, list[socket.socket]] | None = None,
                     on_ready: Callable[[], None] | None = None) -> None:
    """The gateway and its sibling servers (simulator, admin API); they stop with it.
    `sockets`: by id() of a server, the sockets it serves on instead of binding its own."""
    sockets = sockets or {}
    others = [s for s in siblings if s is not None]
    tasks = [asyncio.create_task(s.serve(sockets.get(id(s)))) for s in others]
    ready = asyncio.create_task(_announce_ready([gateway, *others], on_ready or _print_ready))
    try:
        await gateway.serve(sockets.get(id(gateway)))
    finally:
        ready.cancel()
        for server in others:
            server.should_exit = True
        await asyncio.gather(*tasks)


async def _announce_ready(servers: list[uvicorn.Server], on_ready: Callable[[], None]) -> None:
    if await _started(servers):
        on_ready()


async def _started(servers: list[uvicorn.Server]) -> bool:
    """True once every server listens; False if one is told to stop first."""
    # uvicorn flips `started` once its sockets listen; it offers nothing to await.
    while not all(s.started for s in servers):
        if any(s.should_exit for s in servers):
            return False
        await asyncio.sleep(0.01)
    return True


def _print_ready() -> None:
    print("tokenlane: ready", flush=True)  # scripts and tests wait for this line


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


def _banner(settings: Settings, source: str, workers: int = 1) -> None:
    s = settings.server
    url = f"http://{s.host}:{s.port}"
    processes = f"   workers: {workers}" if workers > 1 else ""
    model = next(iter(settings.models))
    auth = (f"Authorization: Bearer ${s.auth.master_keys_env}" if s.auth.enabled
            else "no auth (demo)")
    print(f"""
tokenlane gateway on {url}   config: {source}{processes}
  models: {', '.join(settings.models)}     auth: {auth}
  dashboard: {url}/dashboard   (live speed, TTFT, errors, cost and routing decisions)
{_tracing_line(settings)}  try it:
    curl -s {url}/v1/chat/completions -H 'content-type: application/json' \\
      -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}'
  or with the openai SDK:
    OpenAI(base_url="{url}/v1", api_key="...").chat.completions.create(model="{model}", ...)
""", flush=True)


def _tracing_line(settings: Settings) -> str:
    """Where spans go, when tracing is on ("" when it is off)."""
    t = settings.telemetry
    if not t.otel:
        return ""
    where = {"otlp": f"OTLP to {otlp_endpoint(t, os.environ)}",
             "console": "printed to stdout", "none": "propagated, not exported"}[t.exporter]
    return f"  tracing: OpenTelemetry, {where}\n"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
