"""`tokenlane keys ...` and `tokenlane spend` against a running gateway's admin API."""

from __future__ import annotations

import json

import openai
import pytest

from tokenlane.cli import main

from ..harness import MASTER_KEY
from .support import HELLO, as_key, keyed_stack, quick


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path_factory.mktemp("keys"))) as s:
        yield s


def _run(capsys, gw, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--url", gw.url, "--key", MASTER_KEY])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_spend_rotate_revoke(gw, capsys) -> None:
    code, out, _ = _run(capsys, gw, "keys", "create", "--name", "search", "--model", "m",
                        "--budget-day", "2", "--rpm", "30", "--meta", "team=search",
                        "--scope", "dashboard")
    assert code == 0 and "shown once" in out
    secret = out.split("store it now): ")[1].strip()
    key_id = secret.split("-")[1]
    as_key(gw, secret).chat.completions.create(model="m", messages=HELLO)

    code, out, _ = _run(capsys, gw, "keys", "list")
    assert code == 0 and key_id in out and "search" in out and secret not in out
    code, out, _ = _run(capsys, gw, "keys", "show", key_id, "--json")
    shown = json.loads(out)
    assert shown["metadata"] == {"team": "search"} and shown["budget_usd"]["day"] == 2
    assert shown["rpm"] == 30 and shown["usage"]["spent_usd"]["day"] > 0
    assert shown["scopes"] == ["dashboard"]

    code, out, _ = _run(capsys, gw, "spend", "--key-id", key_id, "--group-by", "model",
                        "--period", "day")
    assert code == 0 and out.startswith("total  $") and "\nm  $" in out and "1 requests" in out

    code, out, _ = _run(capsys, gw, "keys", "update", key_id, "--rpm", "60")
    assert code == 0
    code, out, _ = _run(capsys, gw, "keys", "rotate", key_id)
    new = out.split("store it now): ")[1].strip()
    assert code == 0 and new != secret
    code, out, _ = _run(capsys, gw, "keys", "revoke", key_id)
    assert code == 0 and "revoked" in out
    with pytest.raises(openai.AuthenticationError):
        as_key(gw, new).chat.completions.create(model="m", messages=HELLO)


def test_errors_are_one_line(gw, capsys) -> None:
    code, _, err = _run(capsys, gw, "keys", "show", "000000000000")
    assert code == 1 and err.startswith("tokenlane: HTTP 404: No key")
    code = main(["keys", "list", "--url", gw.url, "--key", "wrong"])
    assert code == 1 and "HTTP 401" in capsys.readouterr().err
