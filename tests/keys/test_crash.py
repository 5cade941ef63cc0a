"""`kill -9` of a real `tokenlane serve` (its admin API on its own port) in the middle of
traffic: after a restart the ledger is whole (no torn rows), everything committed before the
kill is there, and the key's budget restarts from it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai

from ..test_cli import ROOT, free_port, wait_for_line

CONFIG = """\
server: {{host: 127.0.0.1, port: {port}, auth: {{master_keys_env: TL_CRASH_KEYS}}}}
keys: {{enabled: true, data_dir: "{data}", flush_interval_s: 0.05, admin_port: {admin_port}}}
sim:
  port: {sim_port}
  providers:
    - {{name: a, ttft_s: 0.01, tokens_per_s: 500, output_tokens: 10, usage_details: true}}
providers:
  a: {{base_url: "http://127.0.0.1:{sim_port}/a/v1"}}
models:
  m:
    deployments:
      - {{provider: a, model: m, price: {{input: 1, output: 2}}}}
routing: {{probes: {{enabled: false}}}}
"""
MASTER = "tl-crash-master"


def _serve(config: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenlane.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TL_CRASH_KEYS": MASTER})
    wait_for_line(proc, "tokenlane: ready")
    # It goes on writing (an access line per request): read on, or once the pipe is full
    # the gateway blocks on its next log line and every request hangs.
    threading.Thread(target=_drain, args=(proc,), daemon=True).start()
    return proc


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass


def test_kill_9_mid_traffic_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    ports: set[int] = set()
    while len(ports) < 3:  # each probe socket is closed before the next: the same may come
        ports.add(free_port())
    port, sim_port, admin_port = ports
    config = tmp_path / "crash.yaml"
    config.write_text(CONFIG.format(port=port, sim_port=sim_port, admin_port=admin_port,
                                    data=tmp_path / "data"))
    url, admin_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    admin = {"authorization": f"Bearer {MASTER}"}
    proc = _serve(config)
    try:
        assert httpx.get(f"{url}/admin/keys", headers=admin, timeout=60).status_code == 404
        key = httpx.post(f"{admin_url}/admin/keys", json={"budget_usd": {"total": 1}},
                         headers=admin, timeout=60).json()
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key["secret"], max_retries=0,
                               timeout=60)
        answered = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                try:
                    client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=10)
                    answered.append(1)
                except openai.APIError:  # the gateway is gone: traffic ends
                    return

        workers = [threading.Thread(target=traffic) for _ in range(8)]
        for w in workers:
            w.start()
        for _ in range(40):  # bounded: at least 40 answers before the spend query
            httpx.post(f"{url}/v1/chat/completions", headers=admin, timeout=60, json={
                "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        committed = httpx.get(f"{admin_url}/admin/spend",
                              headers=admin, timeout=60).json()["total"]["requests"]
        os.kill(proc.pid, signal.SIGKILL)  # mid-traffic: requests in flight, rows queued
        proc.wait(timeout=10)
        stop.set()
        for w in workers:
            w.join(timeout=30)
        sent = len(answered) + 40 + 8  # every answer, and at most one in flight per worker
    finally:
        if proc.poll() is None:
            proc.kill()

    db = sqlite3.connect(tmp_path / "data" / "keys.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = db.execute("SELECT cost, prompt_tokens, completion_tokens, outcome FROM ledger "
                      "WHERE key_id = ?", (key["id"],)).fetchall()
    all_rows = db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    key_spend = sum(r[0] for r in rows)
    db.close()
    assert committed <= all_rows <= sent
    assert all(cost > 0 and p > 0 and c > 0 and outcome == "ok" for cost, p, c, outcome in rows), [
        r for r in rows if r[3] != "ok" or not r[0]]

    proc = _serve(config)
    try:
        shown = httpx.get(f"{admin_url}/admin/keys/{key['id']}", headers=admin,
                          timeout=60).json()
        total = httpx.get(f"{admin_url}/admin/spend", headers=admin, timeout=60,
                          params={"key_id": key["id"]}).json()["total"]
        again = openai.OpenAI(base_url=f"{url}/v1", api_key=key["secret"], max_retries=0,
                              timeout=60)
        assert again.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=10).choices
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # The budget restarts from exactly what the ledger holds.
    assert abs(shown["usage"]["spent_usd"]["total"] - key_spend) < 1e-12
    assert total["requests"] == len(rows)
