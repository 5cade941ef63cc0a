"""The `state:` section: local by default; redis needs a URL without a password; errors name
the file, the line and the key."""

from pathlib import Path

import pytest

from tokenlane.config import ConfigError, StateSettings, load_settings

MODELS = """\
models:
  m:
    deployments:
      - {provider: p, model: x}
"""


def load(tmp_path: Path, state: str) -> StateSettings:
    path = tmp_path / "gw.yaml"
    path.write_text(MODELS + state)
    return load_settings(path).state


def test_local_is_the_default(tmp_path: Path) -> None:
    state = load(tmp_path, "")
    assert state.backend == "local" and state.url is None
    assert state.timeout_s == 0.25


def test_redis_with_a_url(tmp_path: Path) -> None:
    state = load(tmp_path, "state: {backend: redis, url: 'redis://10.0.0.5:6380/2', "
                           "timeout_s: 0.1, prefix: fleet-a}\n")
    assert (state.backend, state.url, state.timeout_s, state.prefix) == (
        "redis", "redis://10.0.0.5:6380/2", 0.1, "fleet-a")


@pytest.mark.parametrize(("state", "line", "message"), [
    ("state:\n  backend: redis\n", 5, "state: backend redis needs url"),
    ("state:\n  backend: redis\n  url: http://h:6379\n", 7,
     "state.url: 'http://h:6379' is not a redis://, rediss:// or unix:// URL"),
    ("state:\n  backend: redis\n  url: 'redis://:hunter2@h:6379'\n", 7,
     "state.url: the URL carries a password"),
    ("state:\n  backend: memcached\n", 6, "state.backend: Input should be 'local' or 'redis'"),
    ("state:\n  timeout_s: 0\n", 6, "state.timeout_s: Input should be greater than 0"),
    ("state:\n  sync_interval_s: 2\n  peer_stale_s: 1\n", 5,
     "state: peer_stale_s must be longer than sync_interval_s"),
    ("state:\n  redis_url: redis://h\n", 6, "state.redis_url: unknown key"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, state: str, line: int,
                                       message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, state)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'gw.yaml'}:{line}: {message}")
    assert "hunter2" not in text


def test_password_comes_from_the_environment(tmp_path: Path) -> None:
    state = load(tmp_path, "state: {backend: redis, url: 'redis://h', "
                           "password_env: REDIS_PW}\n")
    assert state.password({"REDIS_PW": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="state.password_env: environment variable REDIS_PW"):
        state.password({}, source="gw.yaml")
