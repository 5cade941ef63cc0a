"""The gateway's own sections: `server:` (auth, metrics), `keys:`, `logging:`, `state:`,
`telemetry:`.

How the gateway listens, who may call it, what it logs and traces, and where shared state
lives; none of it changes how a request is routed (config_routing) or where it goes
(config_providers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from .config_base import _absolute_url, _Strict
from .yamlfile import ConfigError


class AuthSettings(_Strict):
    """Gateway auth. Clients send `Authorization: Bearer <one of the master keys>`."""

    enabled: bool = True
    # Comma-separated keys in this env var; several allow rotation without downtime.
    master_keys_env: str = "TOKENLANE_MASTER_KEYS"

    def master_keys(self, env: Mapping[str, str], *, source: str = "<config>") -> tuple[str, ...]:
        """The keys clients may present (none when auth is off); ConfigError when unset."""
        if not self.enabled:
            return ()
        keys = tuple(k.strip() for k in env.get(self.master_keys_env, "").split(",") if k.strip())
        if not keys:
            raise ConfigError(
                f"{source}: server.auth.master_keys_env: environment variable "
                f"{self.master_keys_env} is not set (set it, or disable auth explicitly with "
                "server.auth.enabled: false)"
            )
        return keys


class MetricsSettings(_Strict):
    """`/metrics` shows deployment names, spend and circuit states: it follows auth
    (Prometheus sends `authorization: Bearer`) unless made public explicitly."""

    public: bool = False


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    # On SIGTERM: stop accepting, let streams in flight finish for up to this long.
    drain_timeout_s: float = Field(30.0, ge=0)
    auth: AuthSettings = AuthSettings()
    metrics: MetricsSettings = MetricsSettings()


class KeysSettings(_Strict):
    """Virtual keys, budgets and the spend ledger (tokenlane.keys). Off unless enabled; then
    keys are managed under /admin/ (master keys only) and kept in SQLite in `data_dir`."""

    enabled: bool = False
    store: Literal["sqlite"] = "sqlite"
    data_dir: str = "tokenlane-data"  # relative: from the working directory
    path: str = "keys.sqlite3"  # the SQLite file, inside data_dir unless absolute
    # The most a request may produce when it sets no max_tokens: its budget reservation, and
    # (for a key with a budget) the max_tokens it is sent with, so it cannot spend past it.
    reserve_output_tokens: int = Field(4096, gt=0)
    # The ledger is written off the request path, in batches: this often, or this many rows.
    flush_interval_s: float = Field(0.5, gt=0)
    flush_rows: int = Field(500, gt=0)
    # Serve /admin/ on this port of server.host (`tokenlane serve`) instead of the API's
    # port, e.g. to firewall it apart; unset: on the API's port.
    admin_port: int | None = Field(None, ge=1, le=65535)

    def db_path(self) -> str:
        return os.path.join(self.data_dir, self.path)


class LoggingSettings(_Strict):
    """The gateway's own log lines (`tokenlane serve`), the access log and the request log."""

    format: Literal["json", "text"] = "text"  # json: one JSON object per line, for collectors
    # One line per HTTP request on every route, on the `tokenlane.access` logger at INFO.
    access: bool = True
    # The request log: one line per model request (its ledger fields, the decision, the
    # client) on the `tokenlane.requests` logger at INFO, with or without virtual keys.
    requests: bool = False
    # The request log's lines also carry the prompt and the answer text, streamed or not:
    # off, since prompts may hold what the callers would not want on disk.
    content: bool = False


def _redis_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{url!r} is not a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    if parts.password:
        # Secrets never live in config files: the URL names where, password_env holds the key.
        raise ValueError("the URL carries a password: put it in an environment variable and "
                         "name that with state.password_env")
    return url


class StateSettings(_Strict):
    """Where shared, mutable state lives (tokenlane.state): `local` (in-process, the default)
    or `redis`, where replicas share estimates, circuits and probe leases (and, through
    tokenlane.keys, rate limits and budgets). Redis down or slow never fails a request: the
    replica carries on locally and resyncs when Redis answers again."""

    backend: Literal["local", "redis"] = "local"
    url: Annotated[str, AfterValidator(_redis_url)] | None = None
    password_env: str | None = None  # env var holding the Redis password (AUTH / ACL)
    # Every Redis call is bounded by this (connect and reply): past it the replica goes local.
    timeout_s: float = Field(0.25, gt=0, le=10)
    # Keys and channels start with this, so several fleets can share one Redis.
    prefix: str = Field("tokenlane", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    # Each replica publishes what it measured and takes the others' this often (twice a
    # second: a slowdown one replica sees steers every replica within about a second).
    sync_interval_s: float = Field(0.5, gt=0, le=60)
    # A replica that published nothing for this long drops out of the fleet's view.
    peer_stale_s: float = Field(5.0, gt=0)
    # While Redis is unreachable, it is tried again this often (one line logged per outage).
    retry_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateSettings:
        if self.backend == "redis" and self.url is None:
            raise ValueError("backend redis needs url (e.g. url: redis://127.0.0.1:6379/0)")
        if self.peer_stale_s <= self.sync_interval_s:
            raise ValueError("peer_stale_s must be longer than sync_interval_s, or every "
                             "replica would age out between two of its own publications")
        return self

    def password(self, env: Mapping[str, str], *, source: str = "<config>") -> str | None:
        """The Redis password from `password_env`; ConfigError when that variable is unset."""
        if self.password_env is None:
            return None
        value = env.get(self.password_env)
        if not value:
            raise ConfigError(f"{source}: state.password_env: environment variable "
                              f"{self.password_env} is not set")
        return value


class TelemetrySettings(_Strict):
    """OpenTelemetry tracing (the `tokenlane[otel]` extra): a span per client request and one
    per upstream attempt, W3C trace context continued from the client and sent upstream.
    Off by default; the SDK's OTEL_* environment variables apply (sampler, resource, OTLP
    endpoint and headers, OTEL_SDK_DISABLED)."""

    otel: bool = False
    # null: $OTEL_SERVICE_NAME, else "tokenlane".
    service_name: str | None = None
    # otlp: OTLP over HTTP (protobuf), batched; console: each span printed to stdout as it
    # ends; none: spans made and propagated upstream, exported nowhere.
    exporter: Literal["otlp", "console", "none"] = "otlp"
    # The OTLP traces URL (e.g. http://collector:4318/v1/traces); null:
    # $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318.
    endpoint: Annotated[str, AfterValidator(_absolute_url)] | None = None
