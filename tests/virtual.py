"""Virtual time for tests: the routing benchmark's event loop and in-process transport.

They live beside the benchmark (benchmarks/virtual_time.py, benchmarks/asgi_stream.py), which
is what they were built and tested for (tests/benchmarks_support/); tests that need minutes
of scenario time in milliseconds import them from here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from asgi_stream import StreamingASGITransport
from virtual_time import LoopClock, VirtualTimeLoop, run_virtual

__all__ = ["LoopClock", "StreamingASGITransport", "VirtualTimeLoop", "run_virtual"]
