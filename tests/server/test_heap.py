"""The gateway's requests leave nothing for the cyclic garbage collector.

`tokenlane serve` runs the collector rarely (heap.py) because a request's objects are freed by
reference counting alone; a reference cycle made per request (as tenacity's AsyncRetrying made,
~30 objects each) would bring the collector's cost back, growing with what is in flight.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import types
from typing import Any

from tokenlane.heap import GEN0_THRESHOLD
from tokenlane.sim import SimProviderSpec

from ..harness import stack

MESSAGES = [{"role": "user", "content": "Name three rivers."}]
OURS = ("tokenlane", "tenacity")  # tenacity: what the engine once made cycles with


def _ours(obj: Any) -> bool:
    """An object of our code (or of the retry library the engine used to use)."""
    if isinstance(obj, types.FunctionType | types.CoroutineType | types.AsyncGeneratorType):
        module = getattr(obj, "__module__", None) or ""
        code = getattr(obj, "__code__", None) or getattr(obj, "cr_code", None) \
            or getattr(obj, "ag_code", None)
        return module.startswith(OURS) or (code is not None and "/tokenlane/" in code.co_filename)
    return (type(obj).__module__ or "").startswith(OURS)


def test_chat_requests_stream_and_not_leave_no_cyclic_garbage_of_ours() -> None:
    with stack([SimProviderSpec(name="a", time_scale=0), SimProviderSpec(name="b", time_scale=0)],
               {"m": ["a", "b"]}) as s:
        client = s.openai(timeout=20)

        def requests() -> None:
            client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=8)
            for _ in client.chat.completions.create(model="m", messages=MESSAGES,
                                                    max_tokens=8, stream=True):
                pass

        requests()  # warm: first-request caches are not per-request garbage
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                requests()
            gc.collect()
            ours = sorted({type(o).__qualname__ for o in gc.garbage if _ours(o)})
            seen = len(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert ours == [], f"reference cycles of ours per request ({seen} objects in all): {ours}"


def test_settle_heap_freezes_start_up_and_raises_the_young_threshold() -> None:
    # In a child: the collector's settings are the whole process's.
    code = ("import gc; from tokenlane.heap import settle_heap; before = gc.get_freeze_count(); "
            "settle_heap(); print(before, gc.get_freeze_count(), gc.get_threshold()[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert int(out[0]) == 0 and int(out[1]) > 1000  # start-up's objects, frozen
    assert int(out[2]) == GEN0_THRESHOLD
