"""The admin API over loopback: create shows the secret once, master keys only, revoke and
rotate take effect on the next request, bad specs are OpenAI-shaped 400s."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..harness import MASTER_KEY
from ..loopback import serve
from .support import HELLO, admin, as_key, create_key, keyed_stack, quick


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    with keyed_stack([quick("a"), quick("b")], {"m": ["a"], "other": ["b"]},
                     str(tmp_path_factory.mktemp("keys"))) as s:
        yield s


def test_create_shows_the_secret_once_and_never_again(gw) -> None:
    with admin(gw) as client:
        created = client.post("/admin/keys", json={
            "name": "team-a", "models": ["m"], "budget_usd": {"day": 5}, "rpm": 100,
            "metadata": {"team": "a", "owner": "ana"}})
        assert created.status_code == 201
        body = created.json()
        secret, key_id = body["secret"], body["id"]
        assert secret.startswith(f"tlk-{key_id}-") and len(secret) > 40
        assert body["prefix"] == secret[:21] + "..."  # the id and four characters
        assert body["budget_usd"]["day"] == 5 and body["metadata"]["owner"] == "ana"
        assert body["usage"]["spent_usd"]["day"] == 0
        listed = client.get("/admin/keys")
        shown = client.get(f"/admin/keys/{key_id}")
    assert listed.status_code == shown.status_code == 200
    assert key_id in [k["id"] for k in listed.json()["data"]]
    for text in (listed.text, shown.text):
        assert secret not in text and secret[len(f"tlk-{key_id}-"):] not in text
        assert "secret" not in text and "hash" not in text
    reply = as_key(gw, secret).chat.completions.create(model="m", messages=HELLO)
    assert reply.choices[0].message.content


def test_admin_api_needs_a_master_key(gw) -> None:
    _, secret = create_key(gw)
    with admin(gw, secret) as client:
        refused = client.get("/admin/keys")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    with admin(gw, "not-a-key") as client:
        assert client.get("/admin/keys").status_code == 401
        assert client.post("/admin/keys", json={}).status_code == 401
    # The SDK sees the same as any OpenAI 403.
    sdk = openai.OpenAI(base_url=f"{gw.url}/admin", api_key=secret, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        sdk.get("/keys", cast_to=object)


def test_revoked_key_is_refused_at_once(gw) -> None:
    key_id, secret = create_key(gw, name="short-lived")
    client = as_key(gw, secret)
    client.chat.completions.create(model="m", messages=HELLO)
    with admin(gw) as a:
        revoked = a.post(f"/admin/keys/{key_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    before = gw.sim.counters("a").requests
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="m", messages=HELLO)
    assert err.value.code == "invalid_api_key" and "revoked" in err.value.message
    assert gw.sim.counters("a").requests == before
    with admin(gw) as a:  # and it stays revoked: no rotation back to life
        assert a.post(f"/admin/keys/{key_id}/rotate").status_code == 400


def test_rotate_replaces_the_secret_and_keeps_the_key(gw) -> None:
    key_id, old = create_key(gw, name="rotating", budget_usd={"total": 1})
    as_key(gw, old).chat.completions.create(model="m", messages=HELLO)
    with admin(gw) as a:
        rotated = a.post(f"/admin/keys/{key_id}/rotate").json()
    new = rotated["secret"]
    assert rotated["id"] == key_id and new != old
    assert rotated["usage"]["spent_usd"]["total"] > 0  # spend carries over
    with pytest.raises(openai.AuthenticationError):
        as_key(gw, old).chat.completions.create(model="m", messages=HELLO)
    assert as_key(gw, new).chat.completions.create(model="m", messages=HELLO).choices


def test_update_changes_limits_and_validates(gw) -> None:
    key_id, secret = create_key(gw, models=["m"])
    with pytest.raises(openai.NotFoundError):
        as_key(gw, secret).chat.completions.create(model="other", messages=HELLO)
    with admin(gw) as a:
        updated = a.patch(f"/admin/keys/{key_id}", json={"models": ["m", "other"]})
        assert updated.status_code == 200 and updated.json()["models"] == ["m", "other"]
        bad = [a.patch(f"/admin/keys/{key_id}", json={"rpm": 0}),
               a.patch(f"/admin/keys/{key_id}", json={"colour": "red"}),
               a.post("/admin/keys", json={"models": ["nope"]}),
               a.post("/admin/keys", json={"default_options": {"sort": "fastest"}}),
               a.post("/admin/keys", content=b"[1", headers={"content-type": "application/json"}),
               a.get("/admin/keys/000000000000"),
               a.get("/admin/spend", params={"group_by": "colour"})]
    assert [r.status_code for r in bad] == [400, 400, 400, 400, 400, 404, 400]
    for response in bad:
        error = response.json()["error"]
        assert set(error) >= {"message", "type", "param", "code"} and error["message"]
    assert bad[0].json()["error"]["param"] == "rpm"
    assert "colour" in bad[1].json()["error"]["message"]
    assert as_key(gw, secret).chat.completions.create(model="other", messages=HELLO).choices


def test_master_key_still_serves_everything(gw) -> None:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)
    assert client.chat.completions.create(model="other", messages=HELLO).choices


def test_admin_api_on_its_own_port(tmp_path) -> None:
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path), keys={"admin_port": 1}) as s:
        with admin(s) as on_api_port:
            assert on_api_port.get("/admin/keys").status_code == 404
        with serve(s.app.state.admin_app) as admin_url:
            client = httpx.Client(base_url=admin_url, timeout=30,
                                  headers={"authorization": f"Bearer {MASTER_KEY}"})
            with client:
                created = client.post("/admin/keys", json={"models": ["m"]})
                assert created.status_code == 201
                assert client.get("/admin/keys").json()["data"][0]["id"] == created.json()["id"]
                assert client.get("/admin/keys/000000000000").json()["error"]["code"] == (
                    "key_not_found")
                assert client.get("/v1/models").status_code == 404  # the admin API only
        reply = as_key(s, created.json()["secret"]).chat.completions.create(
            model="m", messages=HELLO)
    assert reply.choices
