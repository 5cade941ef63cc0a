"""Three gateway replicas on one real Redis, driven with the openai SDK over loopback in front
of simulated providers: what one replica learns, the others route on.

Delivery crosses real time (each replica's sync loop runs every sync_interval_s, 0.5 s), so
the tests wait for it on a condition with a bounded deadline, and check the bound itself by
counting sync rounds rather than wall seconds (the machine may be heavily loaded): a
slowdown seen by A reaches B within two rounds (A's publication, B's read), i.e. within
about a second; a circuit change arrives by pub/sub, before any round."""

from __future__ import annotations

from tokenlane.clock import ManualClock
from tokenlane.sim import SimProviderSpec

from ..redis_server import RedisServer
from .fleet import Replica, fleet, wait_for

HI = [{"role": "user", "content": "Hello there"}]
SPECS = [SimProviderSpec(name="fast", ttft_s=0.1, tokens_per_s=1000, output_tokens=20),
         SimProviderSpec(name="other", ttft_s=0.3, tokens_per_s=300, output_tokens=20)]
THROUGHPUT = {"provider": {"sort": "throughput"}}


def only(provider: str) -> dict[str, object]:
    return {"provider": {"order": [provider], "allow_fallbacks": False}}


def routed(replica: Replica, **extra: object) -> str:
    raw = replica.openai().chat.completions.with_raw_response.create(
        model="m", messages=HI, extra_body=THROUGHPUT, **extra)
    raw.parse()
    return raw.headers["x-tokenlane-deployment"].split("/")[0]


def test_a_slowdown_measured_by_a_steers_b_within_two_sync_rounds(
        redis_server: RedisServer) -> None:
    with fleet(SPECS, {"m": ["fast", "other"]}, redis_server.url,
               clock=ManualClock(lockstep=True),
               extra={"routing": {"exploration_share": 0.0}}) as f:
        a, b, _ = f.replicas
        for replica in (a, b):  # each knows both providers from its own traffic
            for name in ("fast", "other"):
                for _ in range(3):
                    replica.openai().chat.completions.create(model="m", messages=HI,
                                                             extra_body=only(name))
        assert routed(b) == "fast"  # its own numbers: fast is the one to use
        f.sim.update("fast", tokens_per_s=20)  # 50x slower from now on
        for _ in range(3):
            a.openai().chat.completions.create(model="m", messages=HI, extra_body=only("fast"))
        rounds = {r.url: r.stats()["state"]["synced"] for r in (a, b)}
        fleet_wide = f.sim.counters("fast").requests  # every request fast served, any replica
        # B sent fast nothing since: what it gains is A's; then it holds all the fleet saw.
        wait_for("B holds every sample of fast the fleet took",
                 lambda: b.estimate("m", "fast")["samples"] == fleet_wide)
        took = {r.url: r.stats()["state"]["synced"] - rounds[r.url] for r in (a, b)}
        # (the stats reads above each cost a round at most: one more than the bound each)
        assert took[a.url] <= 3 and took[b.url] <= 3, took
        served_before = f.sim.counters("fast").requests
        assert routed(b) == "other"
        assert f.sim.counters("fast").requests == served_before  # B never asked fast
        assert b.stats()["state"]["peers"] == 2


def test_a_circuit_opened_on_a_is_honoured_on_b(redis_server: RedisServer) -> None:
    with fleet(SPECS, {"m": ["fast", "other"]}, redis_server.url,
               extra={"routing": {"exploration_share": 0.0,
                                  "circuit": {"consecutive_failures": 2, "open_s": 30}}}) as f:
        a, b, c = f.replicas
        f.sim.update("fast", error_rate=1.0)
        for _ in range(2):  # each fails on fast, then is answered by other
            a.openai().chat.completions.create(
                model="m", messages=HI, extra_body={"provider": {"order": ["fast", "other"]}})
        assert a.estimate("m", "fast")["circuit"] == "open"
        rounds = b.stats()["state"]["synced"]
        for replica in (b, c):
            wait_for("the circuit open everywhere",
                     lambda r=replica: r.estimate("m", "fast")["circuit"] == "open")
        # By pub/sub, not by the periodic sync: at most the round in progress passed.
        assert b.stats()["state"]["synced"] - rounds <= 2
        served_before = f.sim.counters("fast").requests
        f.sim.update("fast", error_rate=0.0)
        for replica in (b, c):
            assert routed(replica) == "other"
        assert f.sim.counters("fast").requests == served_before  # nobody tried it again
