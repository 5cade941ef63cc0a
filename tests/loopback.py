"""Run a real ASGI app on a real loopback socket for the duration of a test."""

from tokenlane.sim import serve_in_thread as serve

__all__ = ["serve"]
