"""Config: validated once, errors name the file, the key path and the line."""

from pathlib import Path

import pytest

from tokenlane.config import ConfigError, load_settings, parse_settings
from tokenlane.defaults import config_file, default_settings

MINIMAL = """\
providers:
  cerebras: {preset: cerebras}
models:
  llama:
    deployments:
      - provider: cerebras
        model: llama-3.3-70b
        price: {input: 0.85, output: 1.2}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    return path


def test_preset_fills_base_url_and_key(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    catalog = settings.resolve({"CEREBRAS_API_KEY": "sk-test"})
    provider = catalog.providers["cerebras"]
    assert provider.base_url == "https://api.cerebras.ai/v1"
    assert provider.api_key == "sk-test"
    assert "sk-test" not in repr(provider)
    (deployment,) = catalog.models["llama"].deployments
    assert deployment.id == "cerebras/llama-3.3-70b"
    assert deployment.price.cost(1_000_000, 1_000_000) == pytest.approx(2.05)


def test_preset_fields_can_be_overridden(tmp_path: Path) -> None:
    text = MINIMAL.replace("{preset: cerebras}",
                           "{preset: cerebras, base_url: 'http://proxy/v1', api_key_env: MY_KEY}")
    catalog = load_settings(write(tmp_path, text)).resolve({"MY_KEY": "k"})
    assert catalog.providers["cerebras"].base_url == "http://proxy/v1"
    assert catalog.providers["cerebras"].api_key == "k"


def test_missing_env_var_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as err:
        load_settings(path).resolve({}, source=str(path))
    message = str(err.value)
    assert str(path) in message
    assert "providers.cerebras.api_key_env" in message
    assert "CEREBRAS_API_KEY" in message
    assert "\n" not in message


def test_unknown_key_names_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("        model: llama-3.3-70b\n",
                                           "        model: llama-3.3-70b\n        speed: 9\n"))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}:8: models.llama.deployments[0].speed: unknown key"


def test_unknown_provider_reference(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("provider: cerebras", "provider: nowhere"))
    with pytest.raises(ConfigError, match=r"models\.llama\.deployments\[0\]\.provider: unknown "
                                          r"provider 'nowhere' \(known: cerebras\)"):
        load_settings(path).resolve({}, source=str(path))


def test_unknown_preset_and_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="providers.cerebras: .*unknown preset 'cerebrus'"):
        load_settings(write(tmp_path, MINIMAL.replace("preset: cerebras", "preset: cerebrus")))
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.price\.input: .*greater than or equal"):
        load_settings(write(tmp_path, MINIMAL.replace("input: 0.85", "input: -1")))


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gw\.yaml:\d+: not valid YAML"):
        load_settings(write(tmp_path, "models: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_settings(["not", "a", "mapping"])


def test_local_presets_need_no_key(tmp_path: Path) -> None:
    text = "server: {port: 9000}\n" + MINIMAL.replace("{preset: cerebras}", "{preset: vllm}")
    catalog = load_settings(write(tmp_path, text)).resolve({})
    assert catalog.providers["cerebras"].api_key is None
    # vLLM's own default port, kept even though the gateway's default is the same.
    assert catalog.providers["cerebras"].base_url == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(("server", "provider"), [
    ("{}", "{preset: vllm}"),  # both defaults: 127.0.0.1:8000
    ("{host: 0.0.0.0, port: 8100}", "{base_url: 'http://localhost:8100/v1'}"),
    ("{host: 127.0.0.1, port: 8080}", "{preset: llamacpp}"),
])
def test_provider_pointing_at_the_gateway_itself_fails(
    tmp_path: Path, server: str, provider: str
) -> None:
    path = write(tmp_path, f"server: {server}\n" + MINIMAL.replace("{preset: cerebras}", provider))
    settings = load_settings(path)
    catalog = settings.resolve({}, source=str(path))  # the in-process Router listens nowhere
    with pytest.raises(ConfigError) as err:
        settings.check_not_serving_itself(catalog, source=str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: providers.cerebras.base_url: ")
    assert "points at this gateway itself" in message and "\n" not in message


def test_provider_on_another_port_or_host_is_not_the_gateway(tmp_path: Path) -> None:
    for server, base_url in [("{port: 8000}", "http://127.0.0.1:8001/v1"),
                             ("{host: 127.0.0.1, port: 80}", "http://example.com/v1"),
                             ("{port: 0}", "http://127.0.0.1:0/v1")]:
        text = f"server: {server}\n" + MINIMAL.replace(
            "{preset: cerebras}", f"{{base_url: '{base_url}'}}")
        settings = load_settings(write(tmp_path, text))
        settings.check_not_serving_itself(settings.resolve({}))


def test_deepinfra_preset_uses_the_documented_token_variable(tmp_path: Path) -> None:
    # DeepInfra's docs (docs.deepinfra.com/chat/overview) call the key DEEPINFRA_TOKEN.
    path = write(tmp_path, MINIMAL.replace("{preset: cerebras}", "{preset: deepinfra}"))
    catalog = load_settings(path).resolve({"DEEPINFRA_TOKEN": "di-key"})
    assert catalog.providers["cerebras"].api_key == "di-key"
    assert catalog.providers["cerebras"].base_url == "https://api.deepinfra.com/v1/openai"
    with pytest.raises(ConfigError, match="DEEPINFRA_TOKEN is not set"):
        load_settings(path).resolve({"DEEPINFRA_API_KEY": "di-key"})


@pytest.mark.parametrize("header", [
    "Authorization", "proxy-authorization", "X-Api-Key", "api-key", "X-Goog-API-KEY",
    "X-Auth-Token", "X-Client-Secret",
])
def test_credential_headers_in_the_file_are_refused(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, MINIMAL.replace(
        "{preset: cerebras}", f"{{preset: cerebras, headers: {{{header}: 'Bearer sk-live-123'}}}}"))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}:2: providers.cerebras.headers.{header}: ")
    assert "api_key_env" in message and "headers_env" in message
    assert "sk-live-123" not in message and "\n" not in message


def test_plain_headers_pass_and_secret_headers_come_from_env(tmp_path: Path) -> None:
    text = MINIMAL.replace("{preset: cerebras}", "{preset: cerebras, headers: {X-Title: demo}, "
                                                 "headers_env: {X-Org-Key: ORG_KEY}}")
    path = write(tmp_path, text)
    settings = load_settings(path)
    provider = settings.resolve({"CEREBRAS_API_KEY": "k", "ORG_KEY": "org-secret-9"},
                                source=str(path)).providers["cerebras"]
    assert dict(provider.headers) == {"X-Title": "demo", "X-Org-Key": "org-secret-9"}
    assert "org-secret-9" not in repr(provider)
    with pytest.raises(ConfigError) as err:
        settings.resolve({"CEREBRAS_API_KEY": "k"}, source=str(path))
    assert str(err.value) == (
        f"{path}: providers.cerebras.headers_env.X-Org-Key: environment variable ORG_KEY is not "
        "set (provider 'cerebras' is used by a model)")


def test_master_keys_env_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    auth = load_settings(path).server.auth
    assert auth.master_keys({"TOKENLANE_MASTER_KEYS": " a, b ,"}) == ("a", "b")
    with pytest.raises(ConfigError) as err:
        auth.master_keys({}, source=str(path))
    assert str(err.value).startswith(
        f"{path}: server.auth.master_keys_env: environment variable TOKENLANE_MASTER_KEYS is not set")


def test_shipped_configs_are_valid() -> None:
    demo = load_settings(config_file("demo.yaml"))
    assert demo.sim is not None and len(demo.sim.providers) >= 3
    demo.resolve({})
    real = load_settings(config_file("tokenlane.yaml"))
    keys = {"CEREBRAS_API_KEY", "GROQ_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY",
            "DEEPINFRA_TOKEN", "OPENROUTER_API_KEY"}
    real.resolve({k: "x" for k in keys})


def test_default_is_demo_without_keys_and_real_with_them() -> None:
    settings, label = default_settings({})
    assert settings.sim is not None and "simulated" in label
    settings, label = default_settings({"GROQ_API_KEY": "g"})
    assert settings.sim is None and "groq" in label
    assert set(settings.providers) == {"groq"}
    catalog = settings.resolve({"GROQ_API_KEY": "g"})
    assert [d.id for d in catalog.models["gpt-oss-120b"].deployments] == [
        "groq/openai/gpt-oss-120b"]
