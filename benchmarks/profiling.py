"""Summaries of py-spy's collapsed stacks: self time by area and by function (pure)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["summarize_folded"]


_AREAS = (
    ("tokenlane/", "tokenlane"),
    ("starlette/", "starlette+fastapi"),
    ("fastapi/", "starlette+fastapi"),
    ("uvicorn/", "uvicorn"),
    ("aiohttp/", "aiohttp (upstream client)"),
    ("httpx_aiohttp/", "httpx (upstream client API)"),
    ("httpx/", "httpx (upstream client API)"),
    ("anyio/", "anyio"),
    ("prometheus_client/", "prometheus_client"),
    ("asyncio/", "asyncio (Python part)"),
)


def _area(frame: str) -> str:
    if frame.startswith("Runner.run (asyncio/runners.py"):
        return "event loop + C code under it (uvloop, sockets)"
    for marker, area in _AREAS:
        if marker in frame:
            return area
    return "other Python"


def _function(frame: str) -> str:
    """`f (pkg/mod.py:123)` → `f (pkg/mod.py)`: one row per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else frame


def summarize_folded(path: Path, requests: int, top: int = 25) -> str:
    """Self time by area and by function from py-spy's collapsed stacks.

    With uvloop, coroutines are resumed from C, so a sample's stack usually starts at the
    resumed coroutine: self time is reliable, "inclusive" time is not (it misses callers).
    """
    self_fn: dict[str, int] = {}
    self_area: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";")
                  if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        fn = _function(leaf)
        self_fn[fn] = self_fn.get(fn, 0) + count
        area = _area(leaf)
        self_area[area] = self_area.get(area, 0) + count
    if not total:
        return "no samples\n"
    lines = [f"samples: {total} (py-spy --nonblocking, 500 Hz; idle time is not sampled)",
             f"requests during the profile: {requests}", "", "self time by area:"]
    for area, c in sorted(self_area.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {c / total * 100:5.1f}%  {area}")
    lines += ["", f"top {top} functions by self time:"]
    for fn, c in sorted(self_fn.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {c / total * 100:5.1f}%  {fn}")
    return "\n".join(lines) + "\n"
