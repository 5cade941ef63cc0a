"""The garbage collector, set for a long-running gateway process.

A gateway request makes no reference cycles (benchmarks/overhead.py checks none reach
`gc.garbage`), so everything it allocates is freed by reference counting; the cyclic collector
finds nothing, yet CPython still runs it every 700 net container allocations, and every
collection of the oldest generation walks every object alive. Measured in `tokenlane serve`
(issue 17: thread CPU time inside gc callbacks, 3 s runs): ~20% of the gateway's CPU at 256
requests in flight, growing with what is in flight, collecting nothing.

So, once the app is built: `gc.freeze()` moves what start-up made (modules, config, the app,
~80k objects) out of the collector's sight for good, and generation 0 collects every 50,000
net allocations instead of 700. A cycle made on some rare path (an error kept with its
traceback) is still collected, later; at ~100 bytes an object that is a few MB at most.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "settle_heap"]

GEN0_THRESHOLD = 50_000


def settle_heap() -> None:
    """Call once, after start-up and before serving."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
