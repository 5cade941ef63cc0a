"""Dashboard sessions: signed, expiring, accepted under any configured master key."""

from __future__ import annotations

from tokenlane.server.dashboard_session import DashboardSessions


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_expires() -> None:
    wall = Wall()
    sessions = DashboardSessions(["k1"], ttl_s=60, wall=wall)
    cookie = sessions.issue()
    assert "k1" not in cookie and sessions.valid(cookie)
    wall.now += 59
    assert sessions.valid(cookie)
    wall.now += 1
    assert not sessions.valid(cookie)


def test_rotation_keeps_sessions_of_keys_still_configured() -> None:
    wall = Wall()
    old = DashboardSessions(["old"], wall=wall).issue()
    assert DashboardSessions(["new", "old"], wall=wall).valid(old)
    assert not DashboardSessions(["new"], wall=wall).valid(old)
    # Another replica with the same keys accepts it: nothing is stored server-side.
    assert DashboardSessions(["old"], wall=wall).valid(old)


def test_master_key_check() -> None:
    sessions = DashboardSessions(["a", "b"])
    assert sessions.is_master_key("a") and sessions.is_master_key("b")
    assert not sessions.is_master_key("") and not sessions.is_master_key("ab")
    assert not DashboardSessions([]).valid("1.2")


def test_a_virtual_keys_session_names_it_and_cannot_be_altered() -> None:
    sessions = DashboardSessions(["k"])
    cookie = sessions.issue("abc123")
    assert sessions.holder(cookie) == "abc123" and not sessions.valid(cookie)
    expires, _, mac = cookie.split(".")
    for altered in (f"{expires}.{mac}", f"{expires}.other.{mac}", f"{expires}..{mac}",
                    f"{expires}.abc123.{mac}.x"):
        assert sessions.holder(altered) is None, altered
    assert sessions.holder(sessions.issue()) == ""
