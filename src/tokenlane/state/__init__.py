"""Shared state for replicas (DESIGN.md, "Scale"): where estimates, circuit events and probe
leases live when several gateways serve one fleet. `local` (the default) keeps everything
in-process; `redis` shares it through one Redis, off the request path, and falls back to
local whenever Redis is down or slow (`health`), never failing a request for it."""
