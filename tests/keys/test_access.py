"""What a key may use: models, deployments, capped routing options; every surface alike."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from ..harness import MASTER_KEY
from .support import HELLO, admin, as_key, create_key, keyed_stack, quick, reservation


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    with keyed_stack([quick("a"), quick("b"), quick("down", error_rate=1.0)],
                     {"m": ["a", "b"], "flaky": ["down", "b"], "private": ["a"]},
                     str(tmp_path_factory.mktemp("keys")),
                     model_extra={"policy": "order"}) as s:
        yield s


def test_a_model_the_key_may_not_use_is_not_found(gw) -> None:
    _, secret = create_key(gw, models=["m"])
    client = as_key(gw, secret)
    before = gw.sim.counters("a").requests
    for model in ("private", "no-such-model"):
        with pytest.raises(openai.NotFoundError) as err:
            client.chat.completions.create(model=model, messages=HELLO)
        assert err.value.code == "model_not_found" and err.value.body["param"] == "model"
        assert "do not have access" in err.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="private", messages=HELLO, stream=True)
    assert gw.sim.counters("a").requests == before
    assert client.chat.completions.create(model="m", messages=HELLO).choices


def test_deployments_restrict_routing(gw) -> None:
    _, secret = create_key(gw, deployments=["b"])
    client = as_key(gw, secret)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert raw.headers["x-tokenlane-deployment"] == "b/b-m"  # `a` is first in order
    with pytest.raises(openai.NotFoundError):  # asking for one it may not use
        client.chat.completions.create(model="m", messages=HELLO,
                                       extra_body={"provider": {"only": ["a"]}})
    with pytest.raises(openai.NotFoundError):  # a model with none of its deployments
        client.chat.completions.create(model="private", messages=HELLO)


def test_option_caps_cannot_be_raised(gw) -> None:
    _, secret = create_key(gw, max_options={"max_attempts": 1})
    before = gw.sim.counters("b").requests
    with pytest.raises(openai.APIStatusError) as err:
        as_key(gw, secret).chat.completions.create(
            model="flaky", messages=HELLO, extra_body={"provider": {"max_attempts": 5}})
    assert err.value.status_code >= 500
    assert gw.sim.counters("b").requests == before  # no second attempt
    master = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)
    assert master.chat.completions.create(model="flaky", messages=HELLO).choices  # falls back


def test_default_options_apply_unless_the_request_sets_them(gw) -> None:
    _, secret = create_key(gw, default_options={"only": ["b"]})
    client = as_key(gw, secret)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert raw.headers["x-tokenlane-deployment"] == "b/b-m"
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=HELLO, extra_body={"provider": {"only": ["a"]}})
    assert raw.headers["x-tokenlane-deployment"] == "a/a-m"


def test_the_anthropic_surface_is_under_the_same_limits(gw) -> None:
    _, secret = create_key(gw, models=["m"], budget_usd={"total": 0})
    client = anthropic.Anthropic(base_url=gw.url, api_key=secret, max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="private", max_tokens=10,
                               messages=[{"role": "user", "content": "Hi"}])
    before = gw.sim.counters("a").requests
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="m", max_tokens=10,
                               messages=[{"role": "user", "content": "Hi"}])
    assert gw.sim.counters("a").requests == before


def test_the_responses_surface_is_under_the_same_limits(gw) -> None:
    _, secret = create_key(gw, budget_usd={"total": 0})
    with pytest.raises(openai.RateLimitError) as err:
        as_key(gw, secret).responses.create(model="m", input="Hi")
    assert err.value.body["code"] == "budget_exceeded"


def test_an_expired_key_is_refused(gw) -> None:
    key_id, secret = create_key(gw, expires_at=time.time() + 3600)
    client = as_key(gw, secret)
    assert client.chat.completions.create(model="m", messages=HELLO).choices
    with admin(gw) as a:
        assert a.patch(f"/admin/keys/{key_id}", json={"expires_at": time.time() - 1}
                       ).status_code == 200
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="m", messages=HELLO)
    assert "expired" in err.value.message


def test_each_choice_is_reserved(gw) -> None:
    # Between what one choice of 10 tokens reserves and what three do.
    _, secret = create_key(gw, budget_usd={"total": reservation(HELLO, 20)})
    client = as_key(gw, secret)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="m", messages=HELLO, max_tokens=10, n=3)
    assert err.value.body["code"] == "budget_exceeded"
    assert client.chat.completions.create(model="m", messages=HELLO, max_tokens=10).choices


def test_fleet_wide_numbers_are_for_master_keys_only(gw) -> None:
    """Every deployment's estimates and every key's spend (/metrics carries spend by key) are
    the operator's: one tenant's key must not read the others'."""
    _, secret = create_key(gw, name="tenant")
    with admin(gw, secret) as tenant, admin(gw) as operator:
        for path in ("/v1/router/stats", "/metrics"):
            refused = tenant.get(path)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["error"]["message"]
            assert operator.get(path).status_code == 200, path
        assert tenant.get("/v1/models").status_code == 200  # a tenant may list models
